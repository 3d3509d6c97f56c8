"""Where reconciliation reads and writes: verdicts (Cosmos `verdicts`, partition /callId) and the recording
records it matches against (Cosmos `recordings`, written by the lifecycle; read-only here).

A verdict is replaced only when its outcome changed, with If-Match on its etag, and keeps its earlier
values in `history`, so re-evaluating the same call any number of times, in any order, converges on one
document per (call, policy user). The one verdict ever deleted is a `pending` one whose user turned out not to
be a policy user once their policy became known (If-Match too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import Verdict, VerdictChange, VerdictState
from verbatim.platform.errors import Conflict
from verbatim.platform.paging import cosmos_page, offset_page

MAX_HISTORY = 20
_IDS_PER_QUERY = 100  # ids in one ARRAY_CONTAINS parameter


@dataclass(frozen=True)
class SavedVerdict:
    verdict: Verdict  # as stored after the call
    previous: Verdict | None  # what was stored before (None: new)
    changed: bool


@dataclass(frozen=True)
class CallVerdicts:
    """A call's verdicts as read once for one evaluation, with what a conditional write needs (each stored
    document's etag): `save` and `withdraw` start from it instead of reading each verdict again, and read
    afresh only when a write finds the document changed meanwhile."""

    call_id: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # verdict id -> verdict
    etags: dict[str, str] = field(default_factory=dict)  # verdict id -> etag (Cosmos only)

    def ordered(self) -> list[Verdict]:
        return sorted(self.verdicts.values(), key=lambda v: v.user_id)


@dataclass(frozen=True)
class VerdictQuery:
    """Verdicts of calls that started in [start_from, start_to), optionally one user / verdict / call."""

    start_from: str | None = None
    start_to: str | None = None
    user_id: str | None = None
    verdict: VerdictState | None = None
    call_id: str | None = None
    limit: int = 50
    continuation: str | None = None


class StaleEvaluation(Exception):
    """A verdict changed after the evaluation that decided `verdict` read the call's verdicts: another evaluation,
    on newer facts (a recording sealed meanwhile), wrote first. Raised instead of writing over it."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"verdict {verdict.id} changed while its call was being evaluated")
        self.verdict = verdict


class VerdictStore(Protocol):
    def for_call(self, call_id: str) -> list[Verdict]: ...

    def read_call(self, call_id: str) -> CallVerdicts:
        """The call's verdicts in one read, to evaluate the call against (`save`'s and `withdraw`'s `known`)."""
        ...

    def read_calls(self, call_ids: Sequence[str]) -> dict[str, CallVerdicts]:
        """`read_call` of several calls in one read per 100 calls (every call asked for is in the answer)."""
        ...

    def save(self, verdict: Verdict, known: CallVerdicts | None = None) -> SavedVerdict:
        """Store `verdict` unless the stored one has the same outcome; a changed one keeps the old in history.
        `known`: the call's verdicts as read before the evaluation read what it decided on — a write that finds
        the verdict changed since raises `StaleEvaluation` (the evaluation must be made again on fresh reads, not
        merged over a newer one); without `known`, a changed verdict is read again and `verdict` merged over it."""

    def for_day(self, day: str) -> list[Verdict]: ...

    def for_user(self, user_id: str, start_from: str, start_to: str) -> list[Verdict]: ...

    def query(self, query: VerdictQuery) -> tuple[list[Verdict], str | None]: ...

    def withdraw(self, verdict: Verdict, known: CallVerdicts | None = None) -> bool:
        """Delete `verdict` if it is still stored with the same outcome (a `pending` verdict whose user turned
        out not to be a policy user); False when it is gone or changed meanwhile."""


def merge(new: Verdict, current: Verdict | None) -> Verdict | None:
    """The document to store, or None when `current` already says the same."""
    if current is None:
        return new
    if new.same_outcome(current):
        return None
    change = VerdictChange(
        verdict=current.verdict,
        reason=current.reason,
        call_record_version=current.call_record_version,
        evaluated_at=current.evaluated_at,
    )
    return new.model_copy(update={"history": [*current.history, change][-MAX_HISTORY:]})


def _document(verdict: Verdict) -> dict[str, Any]:
    body = verdict.model_dump(mode="json", by_alias=True)
    body["docType"] = "verdict"
    return body


def _verdict(document: dict[str, Any]) -> Verdict:
    return Verdict.model_validate(document)


class CosmosVerdictStore:
    def __init__(self, container: ContainerProxy, max_attempts: int = 20) -> None:
        self._container = container
        self._max_attempts = max_attempts

    def _read(self, call_id: str, verdict_id: str) -> dict[str, Any] | None:
        # A point read (the local emulator answers 404 for a missing item, as Cosmos DB does).
        try:
            return dict(self._container.read_item(verdict_id, partition_key=call_id))
        except CosmosResourceNotFoundError:
            return None

    def _call_documents(self, call_id: str) -> list[dict[str, Any]]:
        items = self._container.query_items(
            "SELECT * FROM c WHERE c.callId = @call", parameters=[{"name": "@call", "value": call_id}],
            partition_key=call_id,
        )  # fmt: skip
        return [dict(item) for item in items]

    def for_call(self, call_id: str) -> list[Verdict]:
        return sorted((_verdict(item) for item in self._call_documents(call_id)), key=lambda v: v.user_id)

    def read_call(self, call_id: str) -> CallVerdicts:
        documents = self._call_documents(call_id)
        return CallVerdicts(
            call_id,
            {str(d["id"]): _verdict(d) for d in documents},
            {str(d["id"]): str(d["_etag"]) for d in documents},
        )

    def read_calls(self, call_ids: Sequence[str]) -> dict[str, CallVerdicts]:
        ids = sorted(set(call_ids))
        found = {call_id: CallVerdicts(call_id) for call_id in ids}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            for item in self._container.query_items(
                "SELECT * FROM c WHERE ARRAY_CONTAINS(@calls, c.callId)",
                parameters=[{"name": "@calls", "value": ids[start : start + _IDS_PER_QUERY]}],
                enable_cross_partition_query=True,
            ):
                known = found.get(str(item.get("callId")))
                if known is not None:
                    known.verdicts[str(item["id"])] = _verdict(item)
                    known.etags[str(item["id"])] = str(item["_etag"])
        return found

    def _known(self, verdict: Verdict, known: CallVerdicts | None) -> tuple[Verdict | None, str | None] | None:
        """What `known` says is stored for `verdict` ((None, None): nothing), or None when it cannot say."""
        if known is None or known.call_id != verdict.call_id:
            return None
        current = known.verdicts.get(verdict.id)
        return current, known.etags.get(verdict.id) if current is not None else None

    def save(self, verdict: Verdict, known: CallVerdicts | None = None) -> SavedVerdict:
        hint = self._known(verdict, known)
        for _ in range(self._max_attempts):
            if hint is not None:
                current, etag = hint
            else:
                document = self._read(verdict.call_id, verdict.id)
                current = _verdict(document) if document else None
                etag = str(document["_etag"]) if document else None
            merged = merge(verdict, current)
            if merged is None:
                assert current is not None
                return SavedVerdict(current, current, changed=False)
            try:
                if current is None or etag is None:
                    self._container.create_item(_document(merged))
                else:
                    self._container.replace_item(
                        verdict.id,
                        _document(merged),
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (CosmosResourceExistsError, CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                if hint is not None:  # `verdict` was decided on reads older than the stored verdict
                    raise StaleEvaluation(verdict) from None
                continue
            return SavedVerdict(merged, current, changed=True)
        raise Conflict(f"verdict {verdict.id}: too many concurrent writers")

    def withdraw(self, verdict: Verdict, known: CallVerdicts | None = None) -> bool:
        hint = self._known(verdict, known)
        if hint is not None:
            current, etag = hint
        else:
            document = self._read(verdict.call_id, verdict.id)
            current = _verdict(document) if document else None
            etag = str(document["_etag"]) if document else None
        if current is None or etag is None or not current.same_outcome(verdict):
            return False
        try:
            self._container.delete_item(
                verdict.id,
                partition_key=verdict.call_id,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
            return False
        return True

    def for_day(self, day: str) -> list[Verdict]:
        items = self._container.query_items(
            "SELECT * FROM c WHERE c.docType = 'verdict' AND c.day = @day",
            parameters=[{"name": "@day", "value": day}],
            enable_cross_partition_query=True,
        )
        return sorted((_verdict(item) for item in items), key=lambda v: (v.call_start or "", v.call_id, v.user_id))

    def for_user(self, user_id: str, start_from: str, start_to: str) -> list[Verdict]:
        items = self._container.query_items(
            "SELECT * FROM c WHERE c.docType = 'verdict' AND c.userId = @user AND c.callStart >= @from "
            "AND c.callStart < @to",
            parameters=[
                {"name": "@user", "value": user_id},
                {"name": "@from", "value": start_from},
                {"name": "@to", "value": start_to},
            ],
            enable_cross_partition_query=True,
        )
        return [_verdict(item) for item in items]

    def query(self, query: VerdictQuery) -> tuple[list[Verdict], str | None]:
        clauses = ["c.docType = 'verdict'"]
        parameters: list[dict[str, Any]] = []
        for name_in_document, op, name, value in (
            ("callStart", ">=", "@from", query.start_from),
            ("callStart", "<", "@to", query.start_to),
            ("userId", "=", "@user", query.user_id),
            ("verdict", "=", "@verdict", query.verdict),
            ("callId", "=", "@call", query.call_id),
        ):
            if value is not None:
                clauses.append(f"c.{name_in_document} {op} {name}")
                parameters.append({"name": name, "value": value})
        sql = f"SELECT * FROM c WHERE {' AND '.join(clauses)} ORDER BY c.callStart DESC"  # noqa: S608 - fixed fields
        options: dict[str, Any] = (
            {"partition_key": query.call_id} if query.call_id else {"enable_cross_partition_query": True}
        )
        pages = self._container.query_items(sql, parameters=parameters, max_item_count=query.limit, **options)
        return cosmos_page(pages.by_page, query.continuation, _verdict)


class InMemoryVerdictStore:
    def __init__(self) -> None:
        self.verdicts: dict[str, Verdict] = {}
        self._lock = threading.Lock()

    def for_call(self, call_id: str) -> list[Verdict]:
        return sorted((v for v in self.verdicts.values() if v.call_id == call_id), key=lambda v: v.user_id)

    def read_call(self, call_id: str) -> CallVerdicts:
        with self._lock:
            return CallVerdicts(call_id, {v.id: v for v in self.verdicts.values() if v.call_id == call_id})

    def read_calls(self, call_ids: Sequence[str]) -> dict[str, CallVerdicts]:
        return {call_id: self.read_call(call_id) for call_id in set(call_ids)}

    def save(self, verdict: Verdict, known: CallVerdicts | None = None) -> SavedVerdict:
        with self._lock:
            current = self.verdicts.get(verdict.id)
            merged = merge(verdict, current)
            if merged is None:
                assert current is not None
                return SavedVerdict(current, current, changed=False)
            self.verdicts[verdict.id] = merged
            return SavedVerdict(merged, current, changed=True)

    def withdraw(self, verdict: Verdict, known: CallVerdicts | None = None) -> bool:
        with self._lock:
            current = self.verdicts.get(verdict.id)
            if current is None or not current.same_outcome(verdict):
                return False
            del self.verdicts[verdict.id]
            return True

    def for_day(self, day: str) -> list[Verdict]:
        found = [v for v in self.verdicts.values() if v.day == day]
        return sorted(found, key=lambda v: (v.call_start or "", v.call_id, v.user_id))

    def for_user(self, user_id: str, start_from: str, start_to: str) -> list[Verdict]:
        return [
            v for v in self.verdicts.values() if v.user_id == user_id and start_from <= (v.call_start or "") < start_to
        ]

    def query(self, query: VerdictQuery) -> tuple[list[Verdict], str | None]:
        found = [
            v
            for v in self.verdicts.values()
            if (query.start_from is None or (v.call_start or "") >= query.start_from)
            and (query.start_to is None or (v.call_start or "") < query.start_to)
            and (query.user_id is None or v.user_id == query.user_id)
            and (query.verdict is None or v.verdict == query.verdict)
            and (query.call_id is None or v.call_id == query.call_id)
        ]
        found.sort(key=lambda v: v.call_start or "", reverse=True)
        return offset_page(found, query.continuation, query.limit)


class RecordingFinder(Protocol):
    """Read access to the lifecycle's recording records."""

    def get(self, recording_id: str) -> RecordingRecord | None: ...

    def for_call_chain(self, call_chain_id: str) -> list[RecordingRecord]: ...

    def for_observed_user(self, user_id: str, start: datetime, end: datetime) -> list[RecordingRecord]:
        """Recordings of `user_id` that may overlap [start, end] (a coarse superset: callers filter exactly)."""

    def for_call(
        self, call_chain_id: str, user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        """`for_call_chain` and `for_observed_user` of each of `user_ids` together, in one read."""

    def for_calls(
        self, call_chain_ids: Sequence[str], user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        """`for_call` of several call chains at once (up to 100 chains and 100 users), in one read."""


def _day_bounds(start: datetime, end: datetime) -> tuple[str, str]:
    # Recording times are stored as pydantic writes them (varying precision), so compare on whole days,
    # which sort correctly as text, and let the caller filter exactly.
    return (start - timedelta(days=1)).date().isoformat(), (end + timedelta(days=1)).date().isoformat()


class CosmosRecordingFinder:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def _query(self, sql: str, parameters: list[dict[str, Any]]) -> list[RecordingRecord]:
        items = self._container.query_items(sql, parameters=parameters, enable_cross_partition_query=True)
        return [RecordingRecord.model_validate(item) for item in items if "facts" in item and "status" in item]

    def get(self, recording_id: str) -> RecordingRecord | None:
        items = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": recording_id}],
                partition_key=recording_id,
            )
        )  # fmt: skip
        return RecordingRecord.model_validate(items[0]) if items else None

    def for_call_chain(self, call_chain_id: str) -> list[RecordingRecord]:
        return self._query(
            "SELECT * FROM c WHERE c.facts.call_chain_id = @chain", [{"name": "@chain", "value": call_chain_id}]
        )

    def for_observed_user(self, user_id: str, start: datetime, end: datetime) -> list[RecordingRecord]:
        low, high = _day_bounds(start, end)
        return self._query(
            "SELECT * FROM c WHERE c.facts.observed_user.id = @user AND c.facts.started_at >= @low "
            "AND c.facts.started_at < @high",
            [{"name": "@user", "value": user_id}, {"name": "@low", "value": low}, {"name": "@high", "value": high}],
        )

    def for_call(
        self, call_chain_id: str, user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        users = sorted(set(user_ids))
        if len(users) > _IDS_PER_QUERY:  # a very large meeting: per user, as before
            found = {r.id: r for r in self.for_call_chain(call_chain_id)}
            for user in users:
                found.update((r.id, r) for r in self.for_observed_user(user, start, end))
            return [found[key] for key in sorted(found)]
        low, high = _day_bounds(start, end)
        return self._query(
            "SELECT * FROM c WHERE c.facts.call_chain_id = @chain OR (ARRAY_CONTAINS(@users, c.facts.observed_user.id) "
            "AND c.facts.started_at >= @low AND c.facts.started_at < @high)",
            [
                {"name": "@chain", "value": call_chain_id},
                {"name": "@users", "value": users},
                {"name": "@low", "value": low},
                {"name": "@high", "value": high},
            ],
        )

    def for_calls(
        self, call_chain_ids: Sequence[str], user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        chains, users = sorted(set(call_chain_ids)), sorted(set(user_ids))
        if len(chains) > _IDS_PER_QUERY or len(users) > _IDS_PER_QUERY:
            raise ValueError(f"for_calls reads at most {_IDS_PER_QUERY} chains and {_IDS_PER_QUERY} users at once")
        low, high = _day_bounds(start, end)
        return self._query(
            "SELECT * FROM c WHERE ARRAY_CONTAINS(@chains, c.facts.call_chain_id) OR "
            "(ARRAY_CONTAINS(@users, c.facts.observed_user.id) AND c.facts.started_at >= @low "
            "AND c.facts.started_at < @high)",
            [
                {"name": "@chains", "value": chains},
                {"name": "@users", "value": users},
                {"name": "@low", "value": low},
                {"name": "@high", "value": high},
            ],
        )


class InMemoryRecordingFinder:
    def __init__(self, records: Callable[[], list[RecordingRecord]]) -> None:
        self._records = records

    def get(self, recording_id: str) -> RecordingRecord | None:
        return next((r for r in self._records() if r.id == recording_id), None)

    def for_call_chain(self, call_chain_id: str) -> list[RecordingRecord]:
        return [r for r in self._records() if r.facts.call_chain_id == call_chain_id]

    def for_observed_user(self, user_id: str, start: datetime, end: datetime) -> list[RecordingRecord]:
        return [
            r
            for r in self._records()
            if r.facts.observed_user is not None
            and r.facts.observed_user.id == user_id
            and r.facts.started_at is not None
            and start - timedelta(days=1) <= r.facts.started_at <= end + timedelta(days=1)
        ]

    def for_call(
        self, call_chain_id: str, user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        found = {r.id: r for r in self.for_call_chain(call_chain_id)}
        for user in set(user_ids):
            found.update((r.id, r) for r in self.for_observed_user(user, start, end))
        return [found[key] for key in sorted(found)]

    def for_calls(
        self, call_chain_ids: Sequence[str], user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        found = {r.id: r for chain in set(call_chain_ids) for r in self.for_call_chain(chain)}
        for user in set(user_ids):
            found.update((r.id, r) for r in self.for_observed_user(user, start, end))
        return [found[key] for key in sorted(found)]
