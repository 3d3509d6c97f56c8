"""The calls being recorded now (`GET /api/v1/live`): recordings whose status is `capturing`, each with its last
heartbeat from the recorder's progress store, flagged `silent` once no heartbeat came for more than two heartbeat
intervals — within seconds (5 s heartbeats), before the lifecycle salvages after three.

The list comes from the recordings' status (an indexed Cosmos query over every partition), not from a scan of
the progress table: that table keeps an entity per recording ever made and has no index on `state`. A call
shows from its `recording.started` event on and leaves when `recording.stopped` (or salvage) changes the status.
Reading it is recorded like any read (Officer, Auditor): an audit record per request, and one `accessed` ledger
entry per reader and UTC hour (the portal polls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.cosmos import ContainerProxy

from verbatim.contracts.api import LiveCall, LivePage, LiveState, ObservedUserView, ParticipantView
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.recorder import CaptureProgress
from verbatim.evidence.progress import ProgressReader
from verbatim.ledger.access import AccessLog
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, Principal
from verbatim.platform.errors import InvalidInput
from verbatim.platform.paging import cosmos_page, offset_page
from verbatim.platform.times import format_datetime as canonical

SILENT_AFTER_INTERVALS = 2
MAX_PAGE = 100


class CapturingRecordings(Protocol):
    """The recordings whose status is `capturing`, a page at a time."""

    def capturing(self, limit: int, continuation: str | None) -> tuple[list[RecordingRecord], str | None]: ...


class CosmosCapturingRecordings:
    def __init__(self, container: ContainerProxy) -> None:
        self.container = container

    def capturing(self, limit: int, continuation: str | None) -> tuple[list[RecordingRecord], str | None]:
        query = "SELECT * FROM c WHERE c.status = @status"
        return cosmos_page(
            lambda token: self.container.query_items(
                query,
                parameters=[{"name": "@status", "value": "capturing"}],
                enable_cross_partition_query=True,
                max_item_count=limit,
            ).by_page(token),
            continuation,
            _record,
        )


class InMemoryCapturingRecordings:
    def __init__(self, records: Callable[[], list[RecordingRecord]]) -> None:
        self.records = records

    def capturing(self, limit: int, continuation: str | None) -> tuple[list[RecordingRecord], str | None]:
        found = [r for r in self.records() if r.status == "capturing"]
        return offset_page(found, continuation, limit)


def _record(document: dict[str, Any]) -> RecordingRecord:
    return RecordingRecord.model_validate({k: v for k, v in document.items() if not k.startswith("_")})


@dataclass
class LiveCalls:
    recordings: CapturingRecordings
    progress: ProgressReader
    access: AccessLog
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def page(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> LivePage:
        principal.require(COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
        raw = params.get("limit") or "50"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:  # "²".isdigit() is True
            raise InvalidInput(f"`limit` must be an integer from 1 to {MAX_PAGE}")
        records, continuation = self.recordings.capturing(int(raw), params.get("continuation") or None)
        now = self.clock()
        items = [self._call(record, self.progress.read(record.id), now) for record in records]
        items.sort(key=lambda call: call.started_at or "", reverse=True)
        # The portal polls every two seconds: one ledger entry per reader and hour (as media parts share one), an
        # audit record per poll naming the calls it showed.
        self.access.record(
            principal,
            "live.read",
            "recordings:live",
            reason,
            {"results": [call.recording_id for call in items], "continued": bool(params.get("continuation"))},
            per_hour=True,
        )
        return LivePage(checked_at=canonical(now), items=items, continuation=continuation)

    def _call(self, record: RecordingRecord, progress: CaptureProgress | None, now: datetime) -> LiveCall:
        facts = record.facts
        interval = progress.heartbeat_interval_seconds if progress else record.heartbeat_interval_seconds
        beats = [t for t in (progress.updated_at if progress else None, record.last_event_at) if t is not None]
        last = max(beats) if beats else None
        silent_for = max(0.0, (now - last).total_seconds()) if last else 0.0
        state: LiveState = "spilling" if progress is not None and progress.state == "spilling" else "capturing"
        if last is None or silent_for > SILENT_AFTER_INTERVALS * interval:
            state = "silent"
        observed = facts.observed_user
        return LiveCall(
            recording_id=record.id,
            call_id=facts.call_id,
            call_chain_id=facts.call_chain_id,
            observed_user=ObservedUserView(
                id=observed.id if observed else None,
                user_principal_name=observed.upn if observed else None,
                display_name=observed.display_name if observed else None,
            ),
            participants=[
                ParticipantView(
                    kind=p.identity.kind,
                    id=p.identity.id,
                    display_name=p.identity.display_name,
                    user_principal_name=p.identity.upn,
                    phone_number=p.phone_number,
                    is_recorder=p.is_recorder,
                )
                for p in facts.participants
                if p.left_at is None
            ],
            started_at=canonical(facts.started_at) if facts.started_at else None,
            recorder_instance=facts.recorder_instance,
            modalities=list(facts.modalities),
            state=state,
            last_heartbeat=canonical(last) if last else None,
            heartbeat_interval_seconds=interval,
            silent_for_seconds=round(silent_for, 1),
            seconds_staged=progress.seconds_staged if progress else 0.0,
            blocks_spilled=progress.blocks_spilled if progress else 0,
        )
