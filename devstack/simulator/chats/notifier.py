"""Publishes chat message changes to the ``/chats/getAllMessages`` subscriptions: one notification per
subscription whose ``changeType`` includes the change, with the message encrypted for that subscription's
certificate when it asked for resource data (and so a validation token for its app in the delivered batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .encryption import encrypt_resource
from .model import Chat, Message, MessageState
from .payloads import notification_resource
from .resource import notification_item

if TYPE_CHECKING:
    from ..subscriptions import Subscriptions


class ChatNotifier:
    def __init__(self, subscriptions: Subscriptions) -> None:
        self.subscriptions = subscriptions

    def __call__(self, chat: Chat, message: Message, state: MessageState) -> None:
        subs = self.subscriptions
        now = subs.clock.now()
        tenant_id = subs.tenant.model.tenant.id
        for sub in list(subs.items.values()):
            if sub.chat is None or sub.expiration <= now or state.change not in sub.change_types:
                continue
            item = notification_item(
                chat,
                message,
                state,
                subscription={"id": sub.id, "clientState": sub.client_state, "expiration": subs.wire_time(sub)},
                tenant_id=tenant_id,
            )
            token = None
            if sub.include_resource_data and sub.certificate is not None:
                item["encryptedContent"] = encrypt_resource(notification_resource(message, state), sub.certificate)
                token = (sub.application_id or "", tenant_id)
            subs.enqueue(sub.notification_url, "notification", item, sub.id, token=token)
