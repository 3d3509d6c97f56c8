"""The log's mutable sequencing state behind a port (`LogStore`), and an in-memory fake of it.

Three kinds of record, none updated in place except `state` and `progress` (If-Match on their etags):

- `state`: the tree size and its right edge. It moves only over a batch stored at its size.
- batches, one per sequencing round, keyed by their first index and created once (a second create of the
  same first index fails: that is what keeps two sequencers from forking the tree). A batch holds its
  entries' bytes with the fields queries need (subject, kind, idempotency key); batches are never deleted:
  they are the query index (by subject, by idempotency key), and the source of tiles not yet written.
- `progress`: how far tiles are written to blob (`integrated`, a multiple of 256, with the hashes of the
  upper levels' partial tiles), the latest signed checkpoint, and the maintenance lease.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from verbatim.ledger.log.edge import RightEdge
from verbatim.ledger.merkle import leaf_hash


@dataclass(frozen=True)
class BatchEntry:
    data: bytes
    subject: str
    kind: str
    idempotency_key: str | None = None

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.data)


@dataclass(frozen=True)
class Batch:
    """Entries `first` .. `first + len(entries) - 1`, sequenced together by one round (`round_id`)."""

    first: int
    entries: tuple[BatchEntry, ...]
    round_id: str
    created_at: str

    @property
    def end(self) -> int:
        return self.first + len(self.entries)

    def leaf_hashes(self) -> list[bytes]:
        return [e.leaf_hash for e in self.entries]


@dataclass(frozen=True)
class LogState:
    """The sequenced tree: its right edge (size and root). `etag` None: not stored yet (the empty log)."""

    edge: RightEdge = field(default_factory=RightEdge)
    etag: str | None = None

    @property
    def size(self) -> int:
        return self.edge.size


@dataclass(frozen=True)
class Progress:
    """What is done beyond sequencing. `upper_tiles[L - 1]` are the hashes of level L's partial tile as of
    `integrated` (level 0's are the leaves after `integrated`, in the batches)."""

    integrated: int = 0
    upper_tiles: tuple[tuple[bytes, ...], ...] = ()
    checkpoint: bytes | None = None  # the latest signed checkpoint note
    checkpoint_size: int = 0
    anchored_size: int = 0  # checkpoints up to this size are in the anchor store
    initialized: bool = False  # the first entry and any v1 migration are in
    lease_owner: str | None = None
    lease_until: float = 0.0
    etag: str | None = None


@dataclass(frozen=True)
class KeyedEntry:
    index: int
    data: bytes


@dataclass(frozen=True)
class SubjectEntry:
    index: int
    data: bytes


class LogStore(Protocol):
    def read_state(self) -> LogState: ...

    def advance_state(self, old: LogState, new: RightEdge) -> LogState | None:
        """Replace `old` (If-Match its etag; create when it has none) with `new`: the state as now stored,
        or None if it moved since `old` was read."""

    def create_batch(self, batch: Batch) -> bool:
        """Store a new batch; False when one with the same first index exists."""

    def read_batch(self, first: int) -> Batch | None: ...

    def batches_covering(self, start: int, end: int) -> list[Batch]:
        """The batches holding entries start .. end - 1, in order (the caller checks they are all there)."""

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyedEntry]:
        """The first entry sequenced with each of these idempotency keys."""

    def entries_for_subject(self, subject: str, *, after: int, limit: int) -> list[SubjectEntry]:
        """Entries of `subject` with index > `after`, in index order, at most `limit`."""

    def read_progress(self) -> Progress: ...

    def write_progress(self, old: Progress, new: Progress) -> bool:
        """Replace `old` (If-Match; create when it has no etag) with `new`; False if it moved."""


class InMemoryLogStore:
    """`LogStore` in dicts, with etags and create-only batches: the fake for service-level tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: LogState = LogState()
        self.batches: dict[int, Batch] = {}
        self.progress: Progress = Progress()

    def read_state(self) -> LogState:
        with self._lock:
            return self.state

    def advance_state(self, old: LogState, new: RightEdge) -> LogState | None:
        with self._lock:
            if self.state.etag != old.etag:
                return None
            self.state = LogState(new, uuid.uuid4().hex)
            return self.state

    def create_batch(self, batch: Batch) -> bool:
        with self._lock:
            if batch.first in self.batches:
                return False
            self.batches[batch.first] = batch
            return True

    def read_batch(self, first: int) -> Batch | None:
        with self._lock:
            return self.batches.get(first)

    def batches_covering(self, start: int, end: int) -> list[Batch]:
        with self._lock:
            return sorted((b for b in self.batches.values() if b.first < end and b.end > start), key=lambda b: b.first)

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyedEntry]:
        wanted = set(keys)
        found: dict[str, KeyedEntry] = {}
        with self._lock:
            for batch in sorted(self.batches.values(), key=lambda b: b.first):
                for offset, entry in enumerate(batch.entries):
                    key = entry.idempotency_key
                    if key in wanted and key not in found:
                        found[key] = KeyedEntry(batch.first + offset, entry.data)
        return found

    def entries_for_subject(self, subject: str, *, after: int, limit: int) -> list[SubjectEntry]:
        found: list[SubjectEntry] = []
        with self._lock:
            for batch in sorted(self.batches.values(), key=lambda b: b.first):
                for offset, entry in enumerate(batch.entries):
                    if entry.subject == subject and batch.first + offset > after:
                        found.append(SubjectEntry(batch.first + offset, entry.data))
        return found[:limit]

    def read_progress(self) -> Progress:
        with self._lock:
            return self.progress

    def write_progress(self, old: Progress, new: Progress) -> bool:
        with self._lock:
            if self.progress.etag != old.etag:
                return False
            self.progress = replace(new, etag=uuid.uuid4().hex)
            return True
