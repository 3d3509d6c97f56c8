"""The recording search index: one flat document per recording in Cosmos `recording_index` (partition key
/observedUserId), built from the lifecycle's recording record and the observed user's verdict.

Why a separate index: search filters on things no single recording record holds (the reconciliation
verdict) and on values buried in nested lists (participants' ids, UPNs, phone numbers); here they are flat
fields and one array of identity keys, so every search is one parameterised query. Searching by observed
user is single-partition. The index is written when a recording reaches a final state (the lifecycle's
`recording.indexed` message) and whenever reconciliation evaluates its call; it can always be rebuilt from
`recordings`, `verdicts`, `calls` and `policy_snapshots`.

UPNs: the recorder knows participants by object id only (Teams' incoming-call notification carries no
UPN), so the writer passes the UPNs it knows by object id — reconciliation takes them from the call record
and the policy snapshots — and the entry keeps them: a later write that knows fewer does not drop them.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceNotFoundError

from verbatim.contracts.api import ObservedUserView, ParticipantView, RecordingSummary
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import Verdict, VerdictState
from verbatim.platform import layout
from verbatim.platform.errors import DependencyUnavailable, InvalidInput
from verbatim.platform.paging import decode_token, encode_token, offset_page
from verbatim.platform.times import canonical_datetime, format_datetime

CONTAINER = layout.RECORDING_INDEX
DOC_TYPE = "recordingIndex"
UNKNOWN_USER = "unknown"
NO_START = "0000-00-00T00:00:00.000000Z"  # sorts after every real start in newest-first order
_PHONE = re.compile(r"[0-9 ().-]{6,}")


def phone_key(number: str) -> str:
    digits = re.sub(r"[^0-9]", "", number)
    return f"phone:+{digits}"


def identity_keys(value: str) -> list[str]:
    """The index keys a participant filter may mean: a UPN, a phone number, or an object id."""
    value = value.strip()
    if not value:
        return []
    if "@" in value:
        return [f"upn:{value.lower()}"]
    if value.startswith("+") or _PHONE.fullmatch(value):
        return [phone_key(value), f"user:{value}"]
    return [f"user:{value}"]


def _keys_of(record: RecordingRecord) -> list[str]:
    keys: set[str] = set()
    facts = record.facts
    for participant in facts.participants:
        identity = participant.identity
        if identity.id:
            keys.add(
                f"phone:+{re.sub(r'[^0-9]', '', identity.id)}" if identity.kind == "phone" else f"user:{identity.id}"
            )
        if identity.upn:
            keys.add(f"upn:{identity.upn.lower()}")
        if participant.phone_number:
            keys.add(phone_key(participant.phone_number))
    for number in facts.phone_numbers:
        keys.add(phone_key(number))
    observed = facts.observed_user
    if observed is not None:
        if observed.id:
            keys.add(f"user:{observed.id}")
        if observed.upn:
            keys.add(f"upn:{observed.upn.lower()}")
        if observed.phone_number:
            keys.add(phone_key(observed.phone_number))
    return sorted(keys)


def with_upns(record: RecordingRecord, upns: Mapping[str, str] | None) -> RecordingRecord:
    """`record` with the UPNs it lacks filled in from `upns` (object id → UPN); UPNs it has are kept."""
    if not upns:
        return record
    facts = record.facts
    participants = [
        p.model_copy(update={"identity": p.identity.model_copy(update={"upn": upn})})
        if p.identity.kind == "user" and not p.identity.upn and (upn := upns.get(p.identity.id or ""))
        else p
        for p in facts.participants
    ]
    observed = facts.observed_user
    if observed is not None and not observed.upn and (upn := upns.get(observed.id or "")):
        observed = observed.model_copy(update={"upn": upn})
    return record.model_copy(
        update={"facts": facts.model_copy(update={"participants": participants, "observed_user": observed})}
    )


def indexed_upns(document: Mapping[str, Any]) -> dict[str, str]:
    """The UPNs an index entry (or a `RecordingSummary` dump) already holds, by object id."""
    found: dict[str, str] = {}
    people = [*(document.get("participants") or []), document.get("observedUser") or {}]
    for person in people:
        user_id, upn = person.get("id"), person.get("userPrincipalName")
        if person.get("kind", "user") == "user" and isinstance(user_id, str) and isinstance(upn, str) and upn:
            found[user_id] = upn
    return found


def verdict_for(record: RecordingRecord, verdicts: Sequence[Verdict]) -> Verdict | None:
    """The observed user's verdict among `verdicts` that names this recording (or, failing that, the call)."""
    observed = record.facts.observed_user.id if record.facts.observed_user else None
    mine = [v for v in verdicts if v.user_id == observed]
    return next((v for v in mine if record.id in v.recording_ids), mine[0] if mine else None)


def summary_of(record: RecordingRecord, verdict: Verdict | None) -> RecordingSummary:
    facts, seal = record.facts, record.seal
    observed = facts.observed_user
    return RecordingSummary(
        id=record.id,
        call_id=facts.call_id,
        call_chain_id=facts.call_chain_id,
        tenant_id=facts.tenant_id,
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
        ],
        direction=facts.direction,
        call_type=facts.call_type,
        modalities=list(facts.modalities),
        started_at=format_datetime(facts.started_at) if facts.started_at else None,
        ended_at=format_datetime(facts.ended_at) if facts.ended_at else None,
        duration_seconds=seal.duration_seconds if seal else None,
        status=record.status,
        interrupted=bool(seal and seal.interrupted),
        has_access_copy=bool(seal and seal.access_copy_blob),
        verdict=verdict.verdict if verdict else None,
        verdict_reason=verdict.reason if verdict else None,
        coverage=verdict.coverage if verdict else None,
        retention_until=format_datetime(seal.retention_until) if seal else None,
        legal_holds=list(seal.legal_holds) if seal else [],
        sealed_at=format_datetime(seal.sealed_at) if seal else None,
    )


def index_document(
    record: RecordingRecord, verdict: Verdict | None, upns: Mapping[str, str] | None = None
) -> dict[str, Any]:
    record = with_upns(record, upns)
    body = summary_of(record, verdict).model_dump(mode="json", by_alias=True)
    observed = record.facts.observed_user
    body["observedUserId"] = (observed.id if observed else None) or UNKNOWN_USER
    body["observedUserUpn"] = (observed.upn or "").lower() if observed else ""
    body["participantKeys"] = _keys_of(record)
    body["sortKey"] = body.get("startedAt") or NO_START
    body["docType"] = DOC_TYPE
    return body


@dataclass(frozen=True)
class SearchQuery:
    """Filters of `GET /api/v1/recordings`; every one optional, all combined with AND."""

    participant: str | None = None  # any participant: object id, UPN or phone number
    observed_user: str | None = None  # the recorded policy user: object id or UPN
    start_from: str | None = None  # recording started at or after (canonical UTC)
    start_to: str | None = None  # ... and before
    direction: str | None = None
    call_type: str | None = None
    modality: str | None = None
    verdict: VerdictState | None = None
    limit: int = 50
    continuation: str | None = None
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Position:
    """Where a page ended: its last sort key, and the ids already returned with that key (ties)."""

    sort_key: str
    seen: tuple[str, ...]

    def token(self) -> str:
        return encode_token(json.dumps({"k": self.sort_key, "s": list(self.seen)}, separators=(",", ":"))) or ""

    @classmethod
    def parse(cls, token: str | None) -> Position | None:
        raw = decode_token(token)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["k"]), tuple(str(i) for i in data["s"]))
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidInput("the continuation token is not one we issued") from error


def build_sql(query: SearchQuery) -> tuple[str, list[dict[str, Any]], str | None]:
    """The parameterised SQL of one page of a search, its parameters, and the partition key when it is
    single-partition. Pages are keyset-paged on `sortKey` (newest first) with `TOP limit+1`, so a page costs
    the same however deep it is, and the service knows whether another one follows."""
    clauses = ["c.docType = @docType"]
    parameters: list[dict[str, Any]] = [
        {"name": "@docType", "value": DOC_TYPE},
        {"name": "@top", "value": query.limit + 1},
    ]
    partition: str | None = None

    def add(clause: str, name: str, value: object) -> None:
        clauses.append(clause)
        parameters.append({"name": name, "value": value})

    if query.observed_user:
        if "@" in query.observed_user:
            add("c.observedUserUpn = @observedUpn", "@observedUpn", query.observed_user.strip().lower())
        else:
            partition = query.observed_user.strip()
            add("c.observedUserId = @observed", "@observed", partition)
    if query.participant:
        keys = identity_keys(query.participant)
        if not keys:
            raise InvalidInput("`participant` is empty")
        alternatives = []
        for index, key in enumerate(keys):
            alternatives.append(f"ARRAY_CONTAINS(c.participantKeys, @p{index})")
            parameters.append({"name": f"@p{index}", "value": key})
        clauses.append("(" + " OR ".join(alternatives) + ")")
    if query.start_from:
        add("c.startedAt >= @from", "@from", query.start_from)
    if query.start_to:
        add("c.startedAt < @to", "@to", query.start_to)
    if query.direction:
        add("c.direction = @direction", "@direction", query.direction)
    if query.call_type:
        add("c.callType = @callType", "@callType", query.call_type)
    if query.modality:
        add("ARRAY_CONTAINS(c.modalities, @modality)", "@modality", query.modality)
    if query.verdict:
        add("c.verdict = @verdict", "@verdict", query.verdict)
    position = Position.parse(query.continuation)
    if position is not None:
        add("c.sortKey <= @after", "@after", position.sort_key)
        if position.seen:
            add("NOT ARRAY_CONTAINS(@seen, c.id)", "@seen", list(position.seen))
    where = " AND ".join(clauses)
    sql = f"SELECT TOP @top * FROM c WHERE {where} ORDER BY c.sortKey DESC"  # noqa: S608 - fixed fields
    return sql, parameters, partition


def next_position(page: list[dict[str, Any]], previous: Position | None) -> Position:
    last = str(page[-1]["sortKey"])
    seen = [str(d["id"]) for d in page if d["sortKey"] == last]
    if previous is not None and previous.sort_key == last:
        seen = [*previous.seen, *seen]
    return Position(last, tuple(seen))


def _summary(document: dict[str, Any]) -> RecordingSummary:
    return RecordingSummary.model_validate(document)


class RecordingIndex(Protocol):
    def put(
        self,
        record: RecordingRecord,
        verdicts: Sequence[Verdict] | None = None,
        upns: Mapping[str, str] | None = None,
    ) -> RecordingSummary:
        """Index `record`; with `verdicts` None, the verdict already indexed for it is kept. `upns` (object id →
        UPN) fill in what the recorder could not report; UPNs already indexed for its people are kept."""

    def get(self, recording_id: str) -> RecordingSummary | None: ...

    def search(self, query: SearchQuery) -> tuple[list[RecordingSummary], str | None]: ...


# A recording deleted under retention: its entry is the tombstone's (no people), and no later write of the record
# as it was before the deletion (reconciliation reads it, then writes seconds later) replaces it.
DELETED = "deleted"
_MAX_ATTEMPTS = 10


def _tombstone(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    return next((dict(d) for d in documents if d.get("status") == DELETED), None)


def _same_document(stored: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """Whether `stored` (as Cosmos returns it, with its system properties) holds exactly `document`."""
    kept: dict[str, Any] = {key: value for key, value in stored.items() if not key.startswith("_")}
    return bool(kept == json.loads(json.dumps(document)))


class CosmosRecordingIndex:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def _documents(self, recording_id: str) -> list[dict[str, Any]]:
        return list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": recording_id}],
                enable_cross_partition_query=True,
            )
        )

    def put(
        self,
        record: RecordingRecord,
        verdicts: Sequence[Verdict] | None = None,
        upns: Mapping[str, str] | None = None,
    ) -> RecordingSummary:
        for _ in range(_MAX_ATTEMPTS):
            existing = self._documents(record.id)
            tombstone = _tombstone(existing)
            if tombstone is not None and record.status != DELETED:
                return _summary(tombstone)  # a write from before the deletion, arriving late: the tombstone stays
            verdict = verdict_for(record, verdicts) if verdicts is not None else None
            known = indexed_upns(existing[0]) if existing else {}
            document = index_document(record, verdict, {**known, **(upns or {})})
            if verdicts is None and existing:
                for name in ("verdict", "verdictReason", "coverage"):
                    document[name] = existing[0].get(name)
            if len(existing) == 1 and _same_document(existing[0], document):
                return _summary(document)  # already indexed as it is: no write (reconciliation re-puts often)
            if not self._write(document, existing):
                continue  # written meanwhile (a deletion's tombstone?): decide again on what is there now
            for stale in existing:
                if stale.get("observedUserId") != document["observedUserId"]:
                    # The observed user became known after a first indexing: drop the copy in the old partition.
                    self._delete(stale)
            self._settle(document)
            return _summary(document)
        raise DependencyUnavailable(f"recording {record.id}: too many concurrent updates of its search entry")

    def _write(self, document: dict[str, Any], existing: Sequence[Mapping[str, Any]]) -> bool:
        """Create, or replace with If-Match on the etag read, the entry in its partition; False when it changed."""
        same = next((d for d in existing if d.get("observedUserId") == document["observedUserId"]), None)
        try:
            if same is None:
                self._container.create_item(document)
            else:
                self._container.replace_item(
                    document["id"], document, etag=same["_etag"], match_condition=MatchConditions.IfNotModified
                )
        except CosmosHttpResponseError as error:
            if error.status_code in (404, 409, 412):  # removed, created or changed since it was read
                return False
            raise
        return True

    def _settle(self, document: Mapping[str, Any]) -> None:
        """Write, then look, on both sides of a deletion (the entry of a recording whose observed user is known
        lives in another partition than its tombstone): after writing the tombstone, every other entry of the
        recording goes; after writing any other entry, it goes if a tombstone is there now. Whichever of the two
        looks last sees the other's write."""
        current = self._documents(str(document["id"]))
        if document.get("status") == DELETED:
            for other in current:
                if other.get("status") != DELETED:
                    self._delete(other)
        else:
            tombstone = _tombstone(current)
            if tombstone is not None and tombstone.get("observedUserId") != document["observedUserId"]:
                self._delete(document)  # (in its own partition the tombstone replaced it already)

    def _delete(self, document: Mapping[str, Any]) -> None:
        with contextlib.suppress(CosmosResourceNotFoundError):  # already gone
            self._container.delete_item(document["id"], partition_key=document.get("observedUserId"))

    def get(self, recording_id: str) -> RecordingSummary | None:
        documents = self._documents(recording_id)
        return _summary(documents[0]) if documents else None

    def search(self, query: SearchQuery) -> tuple[list[RecordingSummary], str | None]:
        sql, parameters, partition = build_sql(query)
        options: dict[str, Any] = (
            {"partition_key": partition} if partition is not None else {"enable_cross_partition_query": True}
        )
        found = list(self._container.query_items(sql, parameters=parameters, **options))
        page = found[: query.limit]
        more = len(found) > query.limit and bool(page)
        token = next_position(page, Position.parse(query.continuation)).token() if more else None
        return [_summary(item) for item in page], token


class InMemoryRecordingIndex:
    """The same semantics over a dict (for service-level tests)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(
        self,
        record: RecordingRecord,
        verdicts: Sequence[Verdict] | None = None,
        upns: Mapping[str, str] | None = None,
    ) -> RecordingSummary:
        with self._lock:
            verdict = verdict_for(record, verdicts) if verdicts is not None else None
            existing = self.documents.get(record.id)
            if existing is not None and existing.get("status") == DELETED and record.status != DELETED:
                return _summary(existing)  # a late write from before the deletion: the tombstone stays
            known = indexed_upns(existing) if existing else {}
            document = index_document(record, verdict, {**known, **(upns or {})})
            if verdicts is None and existing:
                for name in ("verdict", "verdictReason", "coverage"):
                    document[name] = existing.get(name)
            self.documents[record.id] = document
            return _summary(document)

    def get(self, recording_id: str) -> RecordingSummary | None:
        document = self.documents.get(recording_id)
        return _summary(document) if document else None

    def search(self, query: SearchQuery) -> tuple[list[RecordingSummary], str | None]:
        keys = set(identity_keys(query.participant)) if query.participant else None
        observed = (query.observed_user or "").strip()

        def matches(d: dict[str, Any]) -> bool:
            started = d.get("startedAt") or ""
            return (
                (not observed or d["observedUserId"] == observed or d["observedUserUpn"] == observed.lower())
                and (keys is None or bool(keys.intersection(d["participantKeys"])))
                and (query.start_from is None or started >= query.start_from)
                and (query.start_to is None or started < query.start_to)
                and (query.direction is None or d["direction"] == query.direction)
                and (query.call_type is None or d["callType"] == query.call_type)
                and (query.modality is None or query.modality in d["modalities"])
                and (query.verdict is None or d.get("verdict") == query.verdict)
            )

        found = sorted((d for d in self.documents.values() if matches(d)), key=lambda d: d.get("startedAt") or "")
        found.reverse()
        page, token = offset_page(found, query.continuation, query.limit)
        return [_summary(d) for d in page], token


def canonical_time(value: str, name: str) -> str:
    parsed = canonical_datetime(value)
    if parsed is None:
        raise InvalidInput(f"`{name}` is not an ISO-8601 date-time (e.g. 2025-03-01T00:00:00Z)")
    return parsed
