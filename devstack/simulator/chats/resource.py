"""The ``/chats/getAllMessages`` subscription resource: what Graph accepts when an app subscribes to every
chat message of the tenant, and the notifications it then sends.

Sources (microsoft-graph-docs-contrib): teams-changenotifications-chatmessage.md (resource, permission
``Chat.Read.All``, changeType ``created,updated,deleted``, resource data included, the ``model=A|B`` licensing
parameter; "If you request a subscription expirationDateTime that is more than 1 hour in the future, you must
subscribe to lifecycle notifications by including a lifecycleNotificationUrl property … Otherwise your
subscription request will fail with the following error message: lifecycleNotificationUrl is a required
property for subscription creation on this resource when the expirationDateTime value is set to greater than 1
hour."); change-notifications-subscription-lifetime.md (chatMessage: 4,320 minutes);
change-notifications-supported-resources-expanded.md ("Per app and channel or chat combination: 1
subscription", 403 when a limit is exceeded); change-notifications-with-resource-data.md (encryptionCertificate
and encryptionCertificateId required with includeResourceData; RSA 2,048-4,096 bits; encryptionCertificateId
up to 128 characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from ..odata import bad_request
from .model import Chat, Message, MessageState
from .payloads import message_path

CHAT_MESSAGES = "chats/getAllMessages"
PERMISSIONS = ("Chat.Read.All", "Chat.ReadWrite.All")
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
MAX_LIFETIME = timedelta(minutes=4320)
WITHOUT_LIFECYCLE_URL = timedelta(hours=1)
LIFECYCLE_REQUIRED = (
    "lifecycleNotificationUrl is a required property for subscription creation on this resource when the "
    "expirationDateTime value is set to greater than 1 hour."
)
PER_APP_QUOTA = 1


@dataclass(frozen=True)
class ChatMessagesResource:
    """A parsed ``/chats/getAllMessages[?model=A|B]`` subscription resource."""

    model: str | None


def parse_chat_resource(resource: str) -> ChatMessagesResource | None:
    """The chat-messages resource, or None when ``resource`` names something else."""
    path, _, query = resource.strip().lstrip("/").partition("?")
    if path.lower() != CHAT_MESSAGES.lower():
        return None
    params = parse_qs(query, keep_blank_values=True) if query else {}
    unknown = set(params) - {"model"}
    if unknown:
        raise bad_request(f"Unsupported query option(s) on {CHAT_MESSAGES}: {', '.join(sorted(unknown))}.")
    model = params.get("model", [None])[-1]
    if model is not None and model not in ("A", "B"):
        raise bad_request(f"'{model}' is not a licensing and payment model; use model=A or model=B.")
    return ChatMessagesResource(model)


def notification_item(
    chat: Chat, message: Message, state: MessageState, *, subscription: dict[str, Any], tenant_id: str
) -> dict[str, Any]:
    """One item of the ``value`` array (without ``encryptedContent``), as in the documented chat example."""
    path = message_path(chat.id, message.id)
    return {
        "subscriptionId": subscription["id"],
        "changeType": state.change,
        "clientState": subscription["clientState"],
        "subscriptionExpirationDateTime": subscription["expiration"],
        "resource": path,
        "resourceData": {"id": message.id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": path},
        "tenantId": tenant_id,
    }
