"""The chat-messages subscription: one `/chats/getAllMessages` subscription per tenant (Graph allows one per
app), with resource data included, kept alive by the shared Graph subscription keeper
(verbatim/graph/subscriptions.py).

Chat messages subscriptions last at most 4,320 minutes, and more than an hour only with a
lifecycleNotificationUrl (teams-changenotifications-chatmessage.md); both are configured. Graph says
notifications may be lost around each lifecycle event, so every gap the keeper reports (`missed`,
`reauthorizationRequired`, `subscriptionRemoved`, a subscription found gone) asks for a catch-up through the
export API from the last time the flow was known whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from verbatim.contracts.chat import ChatBackfillRequest
from verbatim.graph.subscriptions import Gap, SubscriptionKind
from verbatim.platform.queues import MessageQueue

CHAT_MESSAGES = SubscriptionKind(
    name="chatmessages",
    doc_type="chatSubscription",
    resource="/chats/getAllMessages",
    change_type="created,updated,deleted",
    max_lifetime=timedelta(minutes=4320),
    lifecycle_url_beyond_an_hour=True,
)


def catch_up_on_gaps(backfill: MessageQueue) -> Callable[[str, Gap, str | None], None]:
    """The keeper's gap handler: a back-fill request from when the flow was last whole (the back-fill adds an
    overlap)."""

    def request(tenant_id: str, gap: Gap, since: str | None) -> None:
        backfill.send(ChatBackfillRequest(tenant_id=tenant_id, reason=gap, since=since).model_dump_json(by_alias=True))

    return request
