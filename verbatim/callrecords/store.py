"""Where normalised call records live: Cosmos `calls` (partition /id), one document per call id holding
the newest version, plus its raw Graph payload (inline, or in blob storage when too big for an item).

Only a strictly higher `version` replaces a stored one. Concurrent writers are serialised by etags
(If-Match on replace, create-once on insert), so duplicates, out-of-order versions and races all end
with the highest version stored exactly once. `handedOffVersion` records which version reconciliation
has been told about, so a crash between storing and handing off is repaired by the next delivery.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from azure.storage.blob import ContainerClient

from verbatim.contracts.callrecords import CallRecord
from verbatim.platform.errors import Conflict
from verbatim.platform.paging import cosmos_page, offset_page
from verbatim.platform.times import canonical_datetime

DOC_TYPE = "callRecord"
RAW_INLINE_LIMIT = 1_500_000  # bytes of JSON; a Cosmos item may not exceed 2 MB in total
SaveOutcome = Literal["created", "replaced", "unchanged", "stale"]


@dataclass(frozen=True)
class SaveResult:
    outcome: SaveOutcome
    stored_version: int  # the version in the store after the call
    previous_version: int | None  # the version before (None when the record was new)
    handed_off_version: int  # the version reconciliation has been told about
    etag: str | None = None  # of the document we wrote (None when we wrote nothing)

    @property
    def needs_handoff(self) -> bool:
        return self.handed_off_version < self.stored_version


@dataclass(frozen=True)
class RecordState:
    """The bookkeeping of a stored record, without the record."""

    version: int
    handed_off_version: int
    ingested_at: str | None


@dataclass(frozen=True)
class CallQuery:
    """`start_from` <= startDateTime < `start_to`, optionally one participant (an identity key or id)."""

    start_from: str | None = None
    start_to: str | None = None
    participant: str | None = None
    limit: int = 50
    continuation: str | None = None


class RawArchive(Protocol):
    def put(self, call_record_id: str, version: int, payload: bytes) -> str: ...

    def get(self, name: str) -> bytes: ...


class CallRecordStore(Protocol):
    def get(self, call_record_id: str) -> CallRecord | None: ...

    def get_many(self, call_record_ids: Sequence[str]) -> dict[str, CallRecord]:
        """`get` of several records in one read per 100 ids (absent ones are left out)."""
        ...

    def get_raw(self, call_record_id: str) -> dict[str, Any] | None: ...

    def state(self, call_record_id: str) -> RecordState | None: ...

    def versions(self, call_record_ids: list[str]) -> dict[str, int]: ...

    def save_if_newer(self, record: CallRecord, raw: Mapping[str, Any], *, probably_new: bool = False) -> SaveResult:
        """Store `record` unless the stored version is the same or higher. `probably_new` (the caller
        just saw no document) tries the insert first and saves a read."""
        ...

    def mark_handed_off(self, call_record_id: str, version: int, etag: str | None = None) -> None:
        """Record that reconciliation was told about `version` (`etag`: of the document just written)."""
        ...

    def query(self, query: CallQuery) -> tuple[list[CallRecord], str | None]: ...


def participant_keys_for(participant: str) -> list[str]:
    """The identity keys a `participant=` filter can mean: an explicit key, or an id of any kind."""
    if ":" in participant and participant.split(":", 1)[0] in {
        "user",
        "phone",
        "guest",
        "application",
        "acsUser",
        "encrypted",
    }:
        return [participant]
    return [f"{kind}:{participant}" for kind in ("user", "phone", "guest", "application", "acsUser")]


def _document(
    record: CallRecord, raw: Mapping[str, Any], handed_off: int, archive: RawArchive | None
) -> dict[str, Any]:
    body = record.model_dump(mode="json", by_alias=True)
    payload = json.dumps(raw, separators=(",", ":"), default=str).encode()
    body["docType"] = DOC_TYPE
    body["handedOffVersion"] = handed_off
    if len(payload) > RAW_INLINE_LIMIT and archive is not None:
        body["raw"] = None
        body["rawBlob"] = archive.put(record.id, record.version, payload)
    else:
        body["raw"] = dict(raw)
        body["rawBlob"] = None
    return body


def _record(document: Mapping[str, Any]) -> CallRecord:
    return CallRecord.model_validate(document)


def _state(document: Mapping[str, Any]) -> RecordState:
    ingested = document.get("ingestedAt")
    return RecordState(
        version=int(document.get("version", 0)),
        handed_off_version=int(document.get("handedOffVersion", 0)),
        ingested_at=ingested if isinstance(ingested, str) else None,
    )


class CosmosCallRecordStore:
    """`CallRecordStore` on the Cosmos `calls` container (and a blob archive for oversized payloads)."""

    def __init__(self, container: ContainerProxy, archive: RawArchive | None = None, max_attempts: int = 20) -> None:
        self._container = container
        self._archive = archive
        self._max_attempts = max_attempts

    def _read(self, call_record_id: str) -> dict[str, Any] | None:
        # A point read (one request; the local emulator answers 404 for a missing item as Cosmos DB does:
        # devstack/cosmos/missing-reads.js).
        try:
            return dict(self._container.read_item(call_record_id, partition_key=call_record_id))
        except CosmosResourceNotFoundError:
            return None

    def get(self, call_record_id: str) -> CallRecord | None:
        document = self._read(call_record_id)
        return _record(document) if document else None

    def get_many(self, call_record_ids: Sequence[str]) -> dict[str, CallRecord]:
        found: dict[str, CallRecord] = {}
        ids = sorted(set(call_record_ids))
        for start in range(0, len(ids), 100):
            for item in self._container.query_items(
                "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
                parameters=[{"name": "@ids", "value": ids[start : start + 100]}],
                enable_cross_partition_query=True,
            ):
                found[str(item["id"])] = _record(item)
        return found

    def get_raw(self, call_record_id: str) -> dict[str, Any] | None:
        document = self._read(call_record_id)
        if document is None:
            return None
        if document.get("rawBlob") and self._archive is not None:
            raw: dict[str, Any] = json.loads(self._archive.get(str(document["rawBlob"])))
            return raw
        value = document.get("raw")
        return dict(value) if isinstance(value, dict) else None

    def state(self, call_record_id: str) -> RecordState | None:
        items = list(
            self._container.query_items(
                "SELECT c.version, c.handedOffVersion, c.ingestedAt FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": call_record_id}],
                partition_key=call_record_id,
            )
        )
        return _state(items[0]) if items else None

    def versions(self, call_record_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(call_record_ids), 100):
            chunk = call_record_ids[start : start + 100]
            for item in self._container.query_items(
                "SELECT c.id, c.version FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
                parameters=[{"name": "@ids", "value": chunk}],
                enable_cross_partition_query=True,
            ):
                found[str(item["id"])] = int(item["version"])
        return found

    def save_if_newer(self, record: CallRecord, raw: Mapping[str, Any], *, probably_new: bool = False) -> SaveResult:
        for attempt in range(self._max_attempts):
            current = None if probably_new and attempt == 0 else self._read(record.id)
            if current is None:
                try:
                    etag = self._write(self._container.create_item, _document(record, raw, 0, self._archive))
                except CosmosResourceExistsError:
                    continue  # another delivery created it first: compare again
                return SaveResult("created", record.version, None, 0, etag)
            current_version = int(current.get("version", 0))
            handed_off = int(current.get("handedOffVersion", 0))
            if current_version > record.version:
                return SaveResult("stale", current_version, current_version, handed_off)
            if current_version == record.version:
                return SaveResult("unchanged", current_version, current_version, handed_off, current.get("_etag"))
            try:
                etag = self._write(
                    self._container.replace_item,
                    item=record.id,
                    body=_document(record, raw, handed_off, self._archive),
                    etag=current["_etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except CosmosAccessConditionFailedError:
                continue  # changed under us: compare again
            return SaveResult("replaced", record.version, current_version, handed_off, etag)
        raise Conflict(f"call record {record.id}: too many concurrent writers")

    @staticmethod
    def _write(operation: Any, *args: Any, **kwargs: Any) -> str | None:
        """Run a write without reading the (large) document back; the new etag from the headers."""
        headers: dict[str, str] = {}
        operation(*args, no_response=True, response_hook=lambda h, _: headers.update(h), **kwargs)
        return headers.get("etag") or headers.get("ETag")

    def mark_handed_off(self, call_record_id: str, version: int, etag: str | None = None) -> None:
        for _ in range(self._max_attempts):
            if etag is None:
                state = self._state_with_etag(call_record_id)
                if state is None or state[0].handed_off_version >= version:
                    return
                etag = state[1]
            try:
                self._container.patch_item(
                    item=call_record_id,
                    partition_key=call_record_id,
                    patch_operations=[{"op": "set", "path": "/handedOffVersion", "value": version}],
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    no_response=True,
                )
            except CosmosAccessConditionFailedError:
                etag = None  # changed since: look again (a newer version may have been stored)
                continue
            return
        raise Conflict(f"call record {call_record_id}: too many concurrent writers")

    def _state_with_etag(self, call_record_id: str) -> tuple[RecordState, str] | None:
        items = list(
            self._container.query_items(
                "SELECT c.version, c.handedOffVersion, c.ingestedAt, c._etag FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": call_record_id}],
                partition_key=call_record_id,
            )
        )
        return (_state(items[0]), str(items[0]["_etag"])) if items else None

    def query(self, query: CallQuery) -> tuple[list[CallRecord], str | None]:
        clauses = ["c.docType = @docType"]
        parameters: list[dict[str, Any]] = [{"name": "@docType", "value": DOC_TYPE}]
        if query.start_from:
            clauses.append("c.startDateTime >= @from")
            parameters.append({"name": "@from", "value": canonical_datetime(query.start_from) or query.start_from})
        if query.start_to:
            clauses.append("c.startDateTime < @to")
            parameters.append({"name": "@to", "value": canonical_datetime(query.start_to) or query.start_to})
        if query.participant:
            keys = participant_keys_for(query.participant)
            alternatives = []
            for index, key in enumerate(keys):
                alternatives.append(f"ARRAY_CONTAINS(c.participantKeys, @p{index})")
                parameters.append({"name": f"@p{index}", "value": key})
            clauses.append("(" + " OR ".join(alternatives) + ")")
        fields = ", ".join(f"c.{name}" for name in _LIST_FIELDS)
        sql = f"SELECT {fields} FROM c WHERE {' AND '.join(clauses)} ORDER BY c.startDateTime DESC"  # noqa: S608 - fixed field names, values are parameters
        pages = self._container.query_items(
            sql, parameters=parameters, enable_cross_partition_query=True, max_item_count=query.limit
        )
        return cosmos_page(pages.by_page, query.continuation, _record)


# What a list returns: everything normalised, not the raw payload.
_LIST_FIELDS = tuple((field.alias or name) for name, field in CallRecord.model_fields.items())


class BlobRawArchive:
    """Raw payloads too large for a Cosmos item, as `<id>/v<version>.json` blobs."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def put(self, call_record_id: str, version: int, payload: bytes) -> str:
        name = f"{call_record_id}/v{version}.json"
        self._container.upload_blob(name, payload, overwrite=True)
        return name

    def get(self, name: str) -> bytes:
        return bytes(self._container.download_blob(name).readall())


class InMemoryCallRecordStore:
    """The same contract in memory, for unit tests of the services."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, call_record_id: str) -> CallRecord | None:
        document = self.documents.get(call_record_id)
        return _record(document) if document else None

    def get_many(self, call_record_ids: Sequence[str]) -> dict[str, CallRecord]:
        return {i: record for i in set(call_record_ids) if (record := self.get(i)) is not None}

    def get_raw(self, call_record_id: str) -> dict[str, Any] | None:
        document = self.documents.get(call_record_id)
        return dict(document["raw"]) if document and isinstance(document.get("raw"), dict) else None

    def state(self, call_record_id: str) -> RecordState | None:
        document = self.documents.get(call_record_id)
        return _state(document) if document else None

    def versions(self, call_record_ids: list[str]) -> dict[str, int]:
        return {i: int(self.documents[i]["version"]) for i in call_record_ids if i in self.documents}

    def save_if_newer(self, record: CallRecord, raw: Mapping[str, Any], *, probably_new: bool = False) -> SaveResult:
        with self._lock:
            current = self.documents.get(record.id)
            if current is None:
                self.documents[record.id] = _document(record, raw, 0, None)
                return SaveResult("created", record.version, None, 0)
            version, handed_off = int(current["version"]), int(current["handedOffVersion"])
            if version >= record.version:
                return SaveResult("stale" if version > record.version else "unchanged", version, version, handed_off)
            self.documents[record.id] = _document(record, raw, handed_off, None)
            return SaveResult("replaced", record.version, version, handed_off)

    def mark_handed_off(self, call_record_id: str, version: int, etag: str | None = None) -> None:
        with self._lock:
            document = self.documents.get(call_record_id)
            if document is not None:
                document["handedOffVersion"] = max(int(document["handedOffVersion"]), version)

    def query(self, query: CallQuery) -> tuple[list[CallRecord], str | None]:
        keys = set(participant_keys_for(query.participant)) if query.participant else None
        start_from = canonical_datetime(query.start_from) if query.start_from else None
        start_to = canonical_datetime(query.start_to) if query.start_to else None
        matches = [
            _record(doc)
            for doc in self.documents.values()
            if (start_from is None or (doc.get("startDateTime") or "") >= start_from)
            and (start_to is None or (doc.get("startDateTime") or "") < start_to)
            and (keys is None or keys.intersection(doc.get("participantKeys", [])))
        ]
        matches.sort(key=lambda r: r.start_date_time or "", reverse=True)
        return offset_page(matches, query.continuation, query.limit)
