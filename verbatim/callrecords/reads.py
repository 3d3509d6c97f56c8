"""The call-record read API's service: one record by id, or a filtered page; every read is audited first
(a read that cannot be audited is refused with 503)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from verbatim.auth import Principal
from verbatim.callrecords.audit import AuditEvent, AuditLog
from verbatim.callrecords.store import CallQuery, CallRecordStore
from verbatim.callrecords.times import format_datetime, parse_datetime, utcnow
from verbatim.contracts.callrecords import CallRecord, CallRecordPage
from verbatim.errors import InvalidInput, NotFound

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
        raw_limit = params.get("limit") or "50"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            raise InvalidInput(f"`limit` must be an integer from 1 to {MAX_PAGE}")
        participant = (params.get("participant") or "").strip() or None
        if participant is not None and len(participant) > 256:
            raise InvalidInput("`participant` is too long")
        return cls(start_from, start_to, participant, int(raw_limit), params.get("continuation") or None)


def _time(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise InvalidInput(f"`{name}` is not an ISO-8601 date-time (e.g. 2024-05-01T00:00:00Z)")
    return format_datetime(parsed)


class CallRecordReader:
    def __init__(self, *, store: CallRecordStore, audit: AuditLog, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    def get(self, call_record_id: str, principal: Principal) -> CallRecord:
        self._audit.record(self._event("callrecord.read", principal, call_record_id, {}))
        record = self._store.get(call_record_id)
        if record is None:
            raise NotFound(f"no call record {call_record_id}")
        return record

    def list(self, parameters: ListParameters, principal: Principal) -> CallRecordPage:
        detail = {
            "from": parameters.start_from,
            "to": parameters.start_to,
            "participant": parameters.participant,
            "limit": parameters.limit,
            "continued": parameters.continuation is not None,
        }
        self._audit.record(self._event("callrecord.list", principal, None, detail))
        items, continuation = self._store.query(
            CallQuery(
                start_from=parameters.start_from,
                start_to=parameters.start_to,
                participant=parameters.participant,
                limit=parameters.limit,
                continuation=parameters.continuation,
            )
        )
        return CallRecordPage(items=items, continuation=continuation)

    def _event(self, action: str, principal: Principal, target: str | None, detail: Mapping[str, object]) -> AuditEvent:
        return AuditEvent(
            category="access",
            action=action,
            actor=principal.subject,
            actor_name=principal.name,
            target=target,
            detail={**detail, "roles": sorted(principal.roles), "tenant": principal.tenant},
            at=self._clock(),
        )
