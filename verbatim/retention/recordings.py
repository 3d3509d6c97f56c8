"""The recording records as retention reads and changes them (Cosmos `recordings`, partition /id, the documents
the lifecycle writes): candidates for the sweep, records by person, by hold and by class, and etag-guarded
replaces — the same optimistic concurrency the lifecycle uses, so a hold, a sweep and a late recorder event
never overwrite each other.

The emulator answers every query by scanning the container, page by page; the candidate query therefore asks
for few fields and large pages. It also answers 500 instead of 404 for a missing item: `read` falls back to a
query then.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceNotFoundError

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.retention.common import utc
from verbatim.retention.people import PersonKeys, keys_in_recording

# Statuses retention looks at; the sweep only ever deletes `sealed` ones (and finishes `deleting` ones).
LIVE = ("capturing", "stopped", "failed", "salvaged", "sealed", "not_recorded")


@dataclass(frozen=True)
class Candidate:
    """What the sweep needs to evaluate a recording without reading it."""

    id: str
    status: str
    retention_class: str | None
    retention_until: datetime | None
    legal_holds: tuple[str, ...]
    started_at: datetime | None
    until_text: str | None  # the retention date as stored: the sweep's resume cursor


@dataclass(frozen=True)
class Versioned:
    record: RecordingRecord
    etag: str


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _candidate(doc: dict[str, Any]) -> Candidate:
    return Candidate(
        id=str(doc["id"]),
        status=str(doc.get("status")),
        retention_class=doc.get("retention_class"),
        retention_until=_date(doc.get("retention_until")),
        legal_holds=tuple(doc.get("legal_holds") or ()),
        started_at=_date(doc.get("started_at")),
        until_text=doc.get("retention_until"),
    )


def cutoff_text(now: datetime) -> str:
    """An upper bound for the text comparison of retention dates: any date stored with any UTC offset whose
    instant is at or before `now` sorts below it. Candidates are then checked exactly."""
    return (utc(now) + timedelta(days=2)).date().isoformat()


class RetentionRecordings(Protocol):
    def candidates(self, now: datetime, after: str | None, page_size: int) -> Iterator[list[Candidate]]:
        """Pages of sealed (or deleting) recordings whose retention date may have passed, in date order,
        starting at the stored date text `after` (inclusive)."""

    def read(self, recording_id: str) -> Versioned | None: ...

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        """False when the record changed since `etag` was read."""

    def by_person(self, keys: PersonKeys, statuses: tuple[str, ...] = LIVE) -> list[RecordingRecord]: ...

    def with_hold(self, hold_id: str) -> list[RecordingRecord]: ...

    def of_call(self, call_id: str) -> list[RecordingRecord]:
        """Recordings of a call, by call chain id (= the call record's id) or call id."""

    def of_class(self, name: str, until_before: datetime) -> list[RecordingRecord]:
        """Sealed recordings of a class whose retention date is before `until_before`."""

    def expiring(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        """Sealed recordings whose stored retention date falls in [start - 1 day, end + 1 day] (a superset)."""

    def deleted(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        """Tombstones whose deletion finished in [start, end)."""


_CANDIDATE_FIELDS = (
    "c.id, c.status, c.seal.retention_class, c.seal.retention_until, c.seal.legal_holds, c.facts.started_at"
)
_PERSON_SQL = (
    "ARRAY_CONTAINS(@ids, LOWER(c.facts.observed_user.id)) OR ARRAY_CONTAINS(@upns, LOWER(c.facts.observed_user.upn))"
    " OR ARRAY_CONTAINS(@phones, c.facts.observed_user.phone_number)"
    " OR EXISTS(SELECT VALUE p FROM p IN c.facts.participants WHERE ARRAY_CONTAINS(@ids, LOWER(p.identity.id))"
    " OR ARRAY_CONTAINS(@upns, LOWER(p.identity.upn)) OR ARRAY_CONTAINS(@phones, p.phone_number))"
    " OR EXISTS(SELECT VALUE n FROM n IN c.facts.phone_numbers WHERE ARRAY_CONTAINS(@phones, n))"
)


class CosmosRetentionRecordings:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def _query(self, sql: str, **parameters: object) -> list[dict[str, Any]]:
        params = [{"name": f"@{name}", "value": value} for name, value in parameters.items()]
        return list(self._container.query_items(sql, parameters=params, enable_cross_partition_query=True))

    def _records(self, sql: str, **parameters: object) -> list[RecordingRecord]:
        return [RecordingRecord.model_validate(doc) for doc in self._query(sql, **parameters)]

    def candidates(self, now: datetime, after: str | None, page_size: int) -> Iterator[list[Candidate]]:
        clauses = ["c.status IN ('sealed', 'deleting')", "c.seal.retention_until < @cutoff"]
        params: list[dict[str, object]] = [{"name": "@cutoff", "value": cutoff_text(now)}]
        if after:
            clauses.append("c.seal.retention_until >= @after")
            params.append({"name": "@after", "value": after})
        fields = _CANDIDATE_FIELDS
        where = " AND ".join(clauses)
        sql = f"SELECT {fields} FROM c WHERE {where} ORDER BY c.seal.retention_until"  # noqa: S608 - fixed clauses
        pager = self._container.query_items(
            sql, parameters=params, enable_cross_partition_query=True, max_item_count=page_size
        ).by_page()
        for page in pager:
            yield [_candidate(doc) for doc in page]

    def read(self, recording_id: str) -> Versioned | None:
        doc: dict[str, Any]
        try:
            doc = dict(self._container.read_item(recording_id, partition_key=recording_id))
        except CosmosResourceNotFoundError:
            return None
        except CosmosHttpResponseError as error:
            if error.status_code != 500:
                raise
            # The emulator's answer for a missing item; a query tells the two apart.
            docs = self._query("SELECT * FROM c WHERE c.id = @id", id=recording_id)
            if not docs:
                return None
            doc = docs[0]
        return Versioned(RecordingRecord.model_validate(doc), str(doc["_etag"]))

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        try:
            self._container.replace_item(
                record.id, record.model_dump(mode="json"), etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True

    def by_person(self, keys: PersonKeys, statuses: tuple[str, ...] = LIVE) -> list[RecordingRecord]:
        if keys.empty:
            return []
        return self._records(
            f"SELECT * FROM c WHERE ARRAY_CONTAINS(@statuses, c.status) AND ({_PERSON_SQL})",  # noqa: S608 - fixed SQL
            statuses=list(statuses),
            ids=keys.ids,
            upns=keys.upns,
            phones=keys.phones,
        )

    def of_call(self, call_id: str) -> list[RecordingRecord]:
        return self._records("SELECT * FROM c WHERE c.facts.call_chain_id = @id OR c.facts.call_id = @id", id=call_id)

    def with_hold(self, hold_id: str) -> list[RecordingRecord]:
        return self._records("SELECT * FROM c WHERE ARRAY_CONTAINS(c.seal.legal_holds, @hold)", hold=hold_id)

    def of_class(self, name: str, until_before: datetime) -> list[RecordingRecord]:
        return self._records(
            "SELECT * FROM c WHERE c.status = 'sealed' AND c.seal.retention_class = @name "
            "AND c.seal.retention_until < @before",
            name=name,
            before=(utc(until_before) + timedelta(days=1)).date().isoformat(),
        )

    def expiring(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        return self._records(
            "SELECT * FROM c WHERE c.status = 'sealed' AND c.seal.retention_until >= @start "
            "AND c.seal.retention_until < @end",
            start=(utc(start) - timedelta(days=1)).date().isoformat(),
            end=(utc(end) + timedelta(days=2)).date().isoformat(),
        )

    def deleted(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        records = self._records(
            "SELECT * FROM c WHERE c.status = 'deleted' AND c.deletion.deleted_at >= @start "
            "AND c.deletion.deleted_at < @end",
            start=(utc(start) - timedelta(days=1)).date().isoformat(),
            end=(utc(end) + timedelta(days=2)).date().isoformat(),
        )
        return [r for r in records if r.deletion and r.deletion.deleted_at and start <= r.deletion.deleted_at < end]


class InMemoryRetentionRecordings:
    """The same contract over a dict, for service-level tests (no text-ordering subtleties: exact dates)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, Versioned] = {}

    def put(self, record: RecordingRecord) -> None:
        with self._lock:
            self.docs[record.id] = Versioned(record.model_copy(deep=True), uuid.uuid4().hex)

    def _all(self) -> list[RecordingRecord]:
        with self._lock:
            return [v.record.model_copy(deep=True) for v in self.docs.values()]

    def candidates(self, now: datetime, after: str | None, page_size: int) -> Iterator[list[Candidate]]:
        due = sorted(
            (
                r
                for r in self._all()
                if r.status in ("sealed", "deleting") and r.seal and r.seal.retention_until <= now + timedelta(days=2)
            ),
            key=lambda r: r.seal.retention_until if r.seal else now,
        )
        page: list[Candidate] = []
        for r in due:
            assert r.seal is not None
            text = str(r.model_dump(mode="json")["seal"]["retention_until"])
            if after and text < after:
                continue
            page.append(
                Candidate(
                    r.id,
                    r.status,
                    r.seal.retention_class,
                    r.seal.retention_until,
                    tuple(r.seal.legal_holds),
                    r.facts.started_at,
                    text,
                )
            )
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page

    def read(self, recording_id: str) -> Versioned | None:
        with self._lock:
            found = self.docs.get(recording_id)
            return Versioned(found.record.model_copy(deep=True), found.etag) if found else None

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        with self._lock:
            current = self.docs.get(record.id)
            if current is None or current.etag != etag:
                return False
            self.docs[record.id] = Versioned(record.model_copy(deep=True), uuid.uuid4().hex)
            return True

    def by_person(self, keys: PersonKeys, statuses: tuple[str, ...] = LIVE) -> list[RecordingRecord]:
        wanted = {f"id:{i}" for i in keys.ids} | {f"upn:{u}" for u in keys.upns}
        wanted |= {f"phone:+{p.lstrip('+')}" for p in keys.phones}
        return [r for r in self._all() if r.status in statuses and wanted & keys_in_recording(r.facts).keys()]

    def of_call(self, call_id: str) -> list[RecordingRecord]:
        return [r for r in self._all() if call_id in (r.facts.call_chain_id, r.facts.call_id)]

    def with_hold(self, hold_id: str) -> list[RecordingRecord]:
        return [r for r in self._all() if r.seal and hold_id in r.seal.legal_holds]

    def of_class(self, name: str, until_before: datetime) -> list[RecordingRecord]:
        return [
            r
            for r in self._all()
            if r.status == "sealed"
            and r.seal
            and r.seal.retention_class == name
            and r.seal.retention_until < until_before
        ]

    def expiring(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        return [r for r in self._all() if r.status == "sealed" and r.seal and start <= r.seal.retention_until < end]

    def deleted(self, start: datetime, end: datetime) -> list[RecordingRecord]:
        return [
            r
            for r in self._all()
            if r.status == "deleted" and r.deletion and r.deletion.deleted_at and start <= r.deletion.deleted_at < end
        ]
