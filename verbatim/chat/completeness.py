"""The daily chat reconciliation: for each policy user, what the notifications delivered against the export
API's view of the same UTC day. Every version the export API lists (each message's state at the time of asking)
must be captured; what is not is back-filled at once, and what still is not (Graph no longer has it, or it
failed to store) is an exception of the signed completeness report.

The comparison is one way: notifications see every version as it happens, the export API only each message's
current state, so versions captured from notifications that the export no longer shows are expected (an edit
replaced them), never a gap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from verbatim.chat.backfill import ChatBackfiller, RecordedUsers
from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.messages import MessageRejected, MessageVersion, parse_version
from verbatim.chat.store import ChatRepository
from verbatim.contracts.chat import ChatCompleteness
from verbatim.platform.times import format_datetime, utcnow

log = logging.getLogger(__name__)


class ChatReconciler:
    def __init__(
        self,
        *,
        repository: ChatRepository,
        backfiller: ChatBackfiller,
        ingestor: ChatIngestor,
        users: RecordedUsers,
        tenant_ids: list[str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repository
        self._backfiller = backfiller
        self._ingestor = ingestor
        self._users = users
        self._tenants = tenant_ids
        self._clock = clock

    def reconcile_day(self, day: str) -> list[ChatCompleteness]:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        end = start + timedelta(days=1)
        results = []
        for tenant in self._tenants:
            for user in self._users.recorded(tenant, end):
                try:
                    results.append(self.reconcile_user(tenant, user, start, end))
                except Exception:
                    log.exception("chat reconciliation failed for a user", extra={"tenant_id": tenant})
        return results

    def reconcile_user(self, tenant_id: str, user_id: str, start: datetime, end: datetime) -> ChatCompleteness:
        listed: dict[tuple[str, str, str], MessageVersion] = {}
        for item in self._backfiller.export(tenant_id, user_id, start, end):
            try:
                version = parse_version(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
            except MessageRejected:
                continue
            listed[version.key] = version
        # Our versions of that user's chats, of the same window (the export's filter is on lastModifiedDateTime).
        have = {
            (d["chatId"], d["messageId"], d["etag"])
            for d in self._repo.versions_between(user_id, format_datetime(start), format_datetime(end))
        }
        missing = [key for key in listed if key not in have]
        recovered = 0
        for key in missing:
            outcome = self._ingestor.ingest_version(listed[key], tenant_id, "export")
            if outcome.action in ("stored", "duplicate"):
                recovered += 1
        still = len(missing) - recovered
        status = "complete" if not missing else "gaps-filled" if not still else "gaps"
        return ChatCompleteness(
            user_id=user_id,
            day=format_datetime(start)[:10],
            window_start=format_datetime(start),
            window_end=format_datetime(end),
            export_versions=len(listed),
            captured_before=len(listed) - len(missing),
            backfilled=recovered,
            missing_after=still,
            status=status,
        )
