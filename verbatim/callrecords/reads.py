"""The call-record read API's service: one record by id, or a filtered page. Every read is recorded first
and a read that cannot be recorded is refused (503). In the Function App the recorder is the compliance
API's `AccessLog` (an `accessed` ledger entry plus an `access` audit record, like every other read of
`/api/v1`); `AuditOnlyReads` writes the audit record alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from verbatim.callrecords.store import CallQuery, CallRecordStore
from verbatim.contracts.callrecords import CallRecord, CallRecordPage
from verbatim.ledger.access import returned
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import InvalidInput, NotFound
from verbatim.platform.inputs import bounded_int
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

MAX_PAGE = 200


@dataclass(frozen=True)
class ListParameters:
    start_from: str | None
    start_to: str | None
    participant: str | None
    limit: int
    continuation: str | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListParameters:
        """`from`, `to` (ISO-8601, on the call's start), `participant` (an Entra object id, a phone number, or an
        identity key like `user:<id>`), `limit` (1-200, default 50), `continuation` (from the previous page)."""
        start_from, start_to = _time(params, "from"), _time(params, "to")
        if start_from and start_to and start_to <= start_from:
            raise InvalidInput("`to` must be after `from`")
        limit = bounded_int(params.get("limit"), "limit", 1, MAX_PAGE, 50)
        participant = (params.get("participant") or "").strip() or None
        if participant is not None and len(participant) > 256:
            raise InvalidInput("`participant` is too long")
        return cls(start_from, start_to, participant, limit, params.get("continuation") or None)


def _time(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise InvalidInput(f"`{name}` is not an ISO-8601 date-time (e.g. 2024-05-01T00:00:00Z)")
    return format_datetime(parsed)


class ReadRecorder(Protocol):
    """Records one read before it is served (the compliance API's `AccessLog` has this shape)."""

    def record(
        self,
        principal: Principal,
        action: str,
        subject: str,
        reason: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> object: ...


class AuditOnlyReads:
    """A `ReadRecorder` writing an `access` record to the audit container (no ledger entry)."""

    def __init__(self, audit: AuditLog, clock: Callable[[], datetime] = utcnow) -> None:
        self._audit = audit
        self._clock = clock

    def record(
        self,
        principal: Principal,
        action: str,
        subject: str,
        reason: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> object:
        event = AuditEvent(
            category="access",
            action=action,
            actor=principal.subject,
            actor_name=principal.name,
            target=subject,
            detail={**(details or {}), "reason": reason, "roles": sorted(principal.roles), "tenant": principal.tenant},
            at=self._clock(),
        )
        self._audit.record(event)
        return event


def call_subject(call_record_id: str) -> str:
    return f"callrecord:{call_record_id}"


class CallRecordReader:
    def __init__(self, *, store: CallRecordStore, access: ReadRecorder) -> None:
        self._store = store
        self._access = access

    def get(self, call_record_id: str, principal: Principal, reason: str | None = None) -> CallRecord:
        self._access.record(principal, "callrecord.read", call_subject(call_record_id), reason)
        record = self._store.get(call_record_id)
        if record is None:
            raise NotFound(f"no call record {call_record_id}")
        return record

    def list(self, parameters: ListParameters, principal: Principal, reason: str | None = None) -> CallRecordPage:
        filters: dict[str, Any] = {
            "from": parameters.start_from,
            "to": parameters.start_to,
            "participant": parameters.participant,
            "limit": parameters.limit,
            "continued": parameters.continuation is not None,
        }
        items, continuation = self._store.query(
            CallQuery(
                start_from=parameters.start_from,
                start_to=parameters.start_to,
                participant=parameters.participant,
                limit=parameters.limit,
                continuation=parameters.continuation,
            )
        )
        self._access.record(
            principal, "callrecord.list", "callrecords", reason, {"filters": filters, **returned(i.id for i in items)}
        )
        return CallRecordPage(items=items, continuation=continuation)
