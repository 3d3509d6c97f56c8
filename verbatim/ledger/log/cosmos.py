"""`LogStore` on a Cosmos DB container (partition key path `/pk`).

- `state` and `progress`: one document each in partition `state`, replaced with If-Match on their etags.
- batches: `b<first index, 19 digits>` in partition `r<first index >> 24>` (a range of 16.7 M entries, ~8 GB
  at most, under Cosmos DB's 20 GB per logical partition). Queries by idempotency key or subject run once
  per range partition, each single-partition; with few ranges (one per 16.7 M entries) that stays cheap.

Every query filters on the partition key in its SQL, which both Cosmos DB and the local emulator serve as a
single-partition query.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from verbatim.ledger.log.edge import RightEdge
from verbatim.ledger.log.store import Batch, BatchEntry, KeyedEntry, LogState, Progress, SubjectEntry

STATE_PARTITION = "state"
RANGE_BITS = 24


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _unb64(value: str) -> bytes:
    return base64.b64decode(value)


def batch_id(first: int) -> str:
    return f"b{first:019d}"


def range_key(index: int) -> str:
    return f"r{index >> RANGE_BITS}"


def _batch_doc(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch_id(batch.first),
        "pk": range_key(batch.first),
        "type": "batch",
        "first": batch.first,
        "upto": batch.end,
        "round": batch.round_id,
        "at": batch.created_at,
        "entries": [
            {"i": batch.first + n, "s": e.subject, "k": e.kind, "key": e.idempotency_key, "d": _b64(e.data)}
            for n, e in enumerate(batch.entries)
        ],
    }


def _batch(doc: dict[str, Any]) -> Batch:
    entries = tuple(BatchEntry(_unb64(e["d"]), e["s"], e["k"], e.get("key")) for e in doc["entries"])
    return Batch(int(doc["first"]), entries, str(doc["round"]), str(doc["at"]))


class CosmosLogStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._known_size = 0  # the largest state size seen: which range partitions hold batches

    def _saw(self, size: int) -> None:
        with self._lock:
            self._known_size = max(self._known_size, size)

    def _ranges(self, below: int | None = None) -> list[str]:
        top = self._known_size if below is None else below
        return [f"r{n}" for n in range((top >> RANGE_BITS) + 1)]

    # --- state ---

    def read_state(self) -> LogState:
        doc = self._read("state", STATE_PARTITION)
        if doc is None:
            return LogState()
        edge = RightEdge(int(doc["size"]), tuple(_unb64(h) for h in doc["edge"]))
        self._saw(edge.size)
        return LogState(edge, str(doc["_etag"]))

    def advance_state(self, old: LogState, new: RightEdge) -> LogState | None:
        doc = {"id": "state", "pk": STATE_PARTITION, "size": new.size, "edge": [_b64(h) for h in new.hashes]}
        etag = self._replace(doc, old.etag)
        if etag is None:
            return None
        self._saw(new.size)
        return LogState(new, etag)

    # --- batches ---

    def create_batch(self, batch: Batch) -> bool:
        try:
            self._container.create_item(_batch_doc(batch))
        except CosmosResourceExistsError:
            return False
        return True

    def read_batch(self, first: int) -> Batch | None:
        doc = self._read(batch_id(first), range_key(first))
        return _batch(doc) if doc is not None else None

    def batches_covering(self, start: int, end: int) -> list[Batch]:
        if end <= start:
            return []
        found: list[Batch] = []
        for n in range(max(0, (start >> RANGE_BITS) - 1), ((end - 1) >> RANGE_BITS) + 1):
            docs = self._query(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'batch' AND c.first < @end AND c.upto > @start "
                "ORDER BY c.first",
                f"r{n}",
                start=start,
                end=end,
            )
            found.extend(_batch(doc) for doc in docs)
        return sorted(found, key=lambda b: b.first)

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyedEntry]:
        found: dict[str, KeyedEntry] = {}
        for partition in self._ranges():
            rows = self._query(
                "SELECT VALUE e FROM c JOIN e IN c.entries WHERE c.pk = @pk AND ARRAY_CONTAINS(@keys, e.key)",
                partition,
                keys=list(keys),
            )
            for row in rows:
                key, index = row["key"], int(row["i"])
                if key not in found or index < found[key].index:
                    found[key] = KeyedEntry(index, _unb64(row["d"]))
        return found

    def entries_for_subject(self, subject: str, *, after: int, limit: int) -> list[SubjectEntry]:
        if self._known_size == 0:
            self.read_state()
        found: list[SubjectEntry] = []
        for partition in self._ranges():
            with self._query_lock:  # the whole paged read (see _query)
                pages = self._container.query_items(
                    "SELECT VALUE e FROM c JOIN e IN c.entries WHERE c.pk = @pk AND e.s = @subject AND e.i > @after "
                    "ORDER BY c.first",
                    parameters=[
                        {"name": "@pk", "value": partition},
                        {"name": "@subject", "value": subject},
                        {"name": "@after", "value": after},
                    ],
                    partition_key=partition,
                    max_item_count=limit,
                ).by_page()
                for page in pages:
                    found.extend(SubjectEntry(int(row["i"]), _unb64(row["d"])) for row in page)
                    if len(found) >= limit:
                        break
            if len(found) >= limit:
                break
        return sorted(found, key=lambda e: e.index)[:limit]

    # --- progress ---

    def read_progress(self) -> Progress:
        doc = self._read("progress", STATE_PARTITION)
        if doc is None:
            return Progress()
        note = doc.get("checkpoint")
        return Progress(
            integrated=int(doc["integrated"]),
            upper_tiles=tuple(tuple(_unb64(h) for h in level) for level in doc["upper_tiles"]),
            checkpoint=note.encode() if isinstance(note, str) else None,
            checkpoint_size=int(doc["checkpoint_size"]),
            anchored_size=int(doc.get("anchored_size", 0)),
            initialized=bool(doc["initialized"]),
            lease_owner=doc.get("lease_owner"),
            lease_until=float(doc.get("lease_until", 0.0)),
            etag=str(doc["_etag"]),
        )

    def write_progress(self, old: Progress, new: Progress) -> bool:
        doc = {
            "id": "progress",
            "pk": STATE_PARTITION,
            "integrated": new.integrated,
            "upper_tiles": [[_b64(h) for h in level] for level in new.upper_tiles],
            "checkpoint": new.checkpoint.decode() if new.checkpoint is not None else None,
            "checkpoint_size": new.checkpoint_size,
            "anchored_size": new.anchored_size,
            "initialized": new.initialized,
            "lease_owner": new.lease_owner,
            "lease_until": new.lease_until,
        }
        return self._replace(doc, old.etag) is not None

    # --- plumbing ---

    def _read(self, item: str, partition: str) -> dict[str, Any] | None:
        try:
            return dict(self._container.read_item(item, partition_key=partition))
        except CosmosResourceNotFoundError:
            return None

    def _replace(self, doc: dict[str, Any], etag: str | None) -> str | None:
        """Create (etag None) or replace If-Match; the new etag, or None when someone got there first."""
        try:
            if etag is None:
                written = self._container.create_item(doc)
            else:
                written = self._container.replace_item(
                    doc["id"], doc, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (CosmosResourceExistsError, CosmosAccessConditionFailedError):
            return None
        return str(written["_etag"])

    def _query(self, sql: str, partition: str, **parameters: object) -> list[dict[str, Any]]:
        params: list[dict[str, object]] = [{"name": "@pk", "value": partition}]
        params.extend({"name": f"@{name}", "value": value} for name, value in parameters.items())
        # azure-cosmos 4.17.1 can fail a query with "OrderedDict mutated during iteration" when two threads
        # of one client query at once (seen in the benchmark): queries of this store take turns.
        with self._query_lock:
            return list(self._container.query_items(sql, parameters=params, partition_key=partition))
