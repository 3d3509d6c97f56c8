"""`TransparencyLog`: the ledger v2 as the rest of Verbatim sees it — `append` (the `LedgerWriter` port),
checkpoints on demand, and every read: entries by index, subject or idempotency key, inclusion and
consistency proofs, signed checkpoints and tiles.

Proofs are computed from the tiles in the write-once store and always against a signed checkpoint, so what
they prove does not depend on the mutable sequencing state: tampering with the Cosmos copy of an entry shows
up as an entry whose leaf hash the proof does not lead to the signed root from.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import JsonValue

from verbatim.contracts.ledger import LogConsistencyProof, LogEntry, LogInclusionProof
from verbatim.ledger.checkpoint import TlogProof, open_checkpoint
from verbatim.ledger.log.blobs import LogBlobMissing, LogBlobs
from verbatim.ledger.log.entries import decode_entry, encode_entry
from verbatim.ledger.log.maintenance import Anchor, Cosigning, LogKeys, Maintenance, checkpoint_name
from verbatim.ledger.log.sequencer import Sequenced, Sequencer, Step
from verbatim.ledger.log.store import BatchEntry, LogStore, Progress
from verbatim.ledger.merkle import consistency_proof, inclusion_proof, leaf_hash
from verbatim.ledger.tiles import TileError, TileNodes, TileRef, parse_path
from verbatim.platform.errors import DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

Initializer = Callable[["TransparencyLog", Maintenance, Progress], Progress]
"""Runs once, under the maintenance lease, right after the log's first entry: the v1 migration."""

GENESIS_KIND = "ledger.created"
_TILE_CACHE = 512
_CHECKPOINT_CACHE = 16


def _no_step(_: str) -> None:
    return None


class _Tiles:
    """Tiles are immutable: a small LRU of them, shared by every proof this process computes."""

    def __init__(self, blobs: LogBlobs) -> None:
        self._blobs = blobs
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, ref: TileRef) -> bytes:
        path = ref.path
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        try:
            data = self._blobs.read(path)
        except LogBlobMissing:
            raise TileError("tile.missing", f"{path} is not in the log's storage") from None
        with self._lock:
            self._cache[path] = data
            while len(self._cache) > _TILE_CACHE:
                self._cache.popitem(last=False)
        return data


class TransparencyLog:
    def __init__(
        self,
        store: LogStore,
        blobs: LogBlobs,
        keys: LogKeys,
        *,
        anchor: Anchor | None = None,
        witnesses: Cosigning | None = None,
        initializer: Initializer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        step: Step = _no_step,
        append_timeout: float = 30.0,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.keys = keys
        self._clock = clock
        self._append_timeout = append_timeout
        self._initializer = initializer
        self._initialized = False
        self._init_lock = threading.Lock()
        self.maintenance = Maintenance(
            store, blobs, keys, anchor=anchor, witnesses=witnesses, step=step, lease_seconds=lease_seconds
        )
        self.sequencer = Sequencer(store, step=step, on_sequenced=self._integrate_soon, clock=clock)
        self._tiles = _Tiles(blobs)
        # Signed checkpoints by size: immutable once written (an export proves hundreds of entries against one).
        self._checkpoints: OrderedDict[int, bytes] = OrderedDict()
        self._checkpoints_lock = threading.Lock()
        self._integrating = threading.Lock()

    @property
    def origin(self) -> str:
        return self.keys.origin

    # --- appending (the LedgerWriter port) ---

    def append(
        self,
        kind: str,
        subject: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> LogEntry:
        """Append one entry and return it with its index once it is in the tree. With an `idempotency_key`
        the log already holds, that entry is returned and nothing is appended. DependencyUnavailable when it
        cannot be sequenced in time (it may still land: retry with the same key)."""
        future = self.append_async(kind, subject, details, actor=actor, idempotency_key=idempotency_key)
        try:
            return future.result(timeout=self._append_timeout)
        except FutureTimeout:
            raise DependencyUnavailable(f"ledger: not sequenced within {self._append_timeout:.0f} s") from None

    def append_async(
        self,
        kind: str,
        subject: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Future[LogEntry]:
        """As `append`, returning at once: the future resolves with the entry once it is in the tree. For
        writers that keep several appends in flight (a batch of accesses, the benchmark)."""
        self.ensure_initialized()
        data = encode_entry(kind, subject, details, at=self._clock(), actor=actor, idempotency_key=idempotency_key)
        return self._submit(BatchEntry(data, subject, kind, idempotency_key))

    def _submit(self, entry: BatchEntry) -> Future[LogEntry]:
        sequenced = self.sequencer.submit(entry)
        result: Future[LogEntry] = Future()

        def done(f: Future[Sequenced]) -> None:
            error = f.exception()
            if error is not None:
                result.set_exception(error)
                return
            placed = f.result()
            result.set_result(decode_entry(placed.index, placed.data))

        sequenced.add_done_callback(done)
        return result

    def append_now(self, data: bytes, subject: str, kind: str, idempotency_key: str | None = None) -> LogEntry:
        """Append prepared leaf bytes (the migration of v1 entries), bypassing initialization."""
        return self._submit(BatchEntry(data, subject, kind, idempotency_key)).result(timeout=self._append_timeout)

    # --- initialization: the first entry, then the v1 migration ---

    def ensure_initialized(self, timeout: float = 600.0) -> None:
        if self._initialized:
            return
        with self._init_lock:
            deadline = time.monotonic() + timeout
            while not self._initialized:
                progress = self.store.read_progress()
                if progress.initialized:
                    self._initialized = True
                    return
                held = self.maintenance.acquire()
                if held is None:
                    if time.monotonic() > deadline:
                        raise DependencyUnavailable("ledger: another process is still initializing the log")
                    time.sleep(0.5)
                    continue
                self._initialize(held)

    def _initialize(self, progress: Progress) -> None:
        try:
            if self.store.read_state().size == 0:
                genesis = encode_entry(
                    GENESIS_KIND,
                    f"ledger:{self.origin}",
                    {"origin": self.origin, "format": "c2sp.org/tlog-tiles"},
                    at=self._clock(),
                    idempotency_key=GENESIS_KIND,
                )
                self.append_now(genesis, f"ledger:{self.origin}", GENESIS_KIND, GENESIS_KIND)
            if self._initializer is not None:
                progress = self._initializer(self, self.maintenance, self.store.read_progress())
            progress = self.store.read_progress()
            self.maintenance.save(progress, replace(progress, initialized=True))
            self._initialized = True
        finally:
            self.maintenance.release(self.store.read_progress())

    # --- maintenance ---

    def _integrate_soon(self, first: int, end: int) -> None:
        """A round filled a bundle: write the full tiles in the background (one at a time per process)."""
        if not self._integrating.acquire(blocking=False):
            return

        def run() -> None:
            try:
                self.integrate()
            except Exception:  # the next round or checkpoint integrates again
                log.warning("ledger integration failed", exc_info=True)
            finally:
                self._integrating.release()

        threading.Thread(target=run, name="ledger-integrate", daemon=True).start()

    def integrate(self) -> bool:
        """Write the full tiles of what is sequenced; False when another process holds the lease."""
        progress = self.maintenance.acquire()
        if progress is None:
            return False
        try:
            progress = self.maintenance.integrate(progress, self.store.read_state().size)
        finally:
            self.maintenance.release(self.store.read_progress())
        return True

    def checkpoint(self, wait: float = 60.0) -> bytes | None:
        """Sign a checkpoint of everything sequenced (unless the latest already covers it) and anchor it.
        Returns the latest signed checkpoint; None for a log without entries."""
        self.ensure_initialized()
        deadline = time.monotonic() + wait
        progress = self.maintenance.acquire()
        while progress is None:
            if time.monotonic() > deadline:
                return self.latest_checkpoint()  # another process is at it
            time.sleep(0.2)
            progress = self.maintenance.acquire()
        try:
            state = self.sequencer.roll_forward()
            if state.size == 0:
                return None
            progress, note = self.maintenance.checkpoint(state.size, state.edge.root(), progress)
            try:
                progress = self.maintenance.anchor_pending(progress, [state.size])
            except Exception:  # the checkpoint stands; the next one is anchored instead
                log.error("ledger checkpoint %s signed but not anchored", state.size, exc_info=True)
            return note
        finally:
            self.maintenance.release(self.store.read_progress())

    def close(self) -> None:
        """Stop this process's sequencer (its queued appends are sequenced first) and wait for a background
        integration to finish, so a process that exits leaves no maintenance lease behind."""
        self.sequencer.close()
        with self._integrating:
            pass

    # --- reads ---

    def size(self) -> int:
        return self.store.read_state().size

    def latest_checkpoint(self) -> bytes | None:
        return self.store.read_progress().checkpoint

    def checkpoint_at(self, size: int) -> bytes:
        """The signed checkpoint of that size; NotFound when none was signed at it."""
        with self._checkpoints_lock:
            if size in self._checkpoints:
                self._checkpoints.move_to_end(size)
                return self._checkpoints[size]
        try:
            note = self.blobs.read(checkpoint_name(size))
        except LogBlobMissing:
            raise NotFound(f"no checkpoint was signed at tree size {size}") from None
        self._remember_checkpoint(size, note)
        return note

    def _remember_checkpoint(self, size: int, note: bytes) -> None:
        with self._checkpoints_lock:
            self._checkpoints[size] = note
            self._checkpoints.move_to_end(size)
            while len(self._checkpoints) > _CHECKPOINT_CACHE:
                self._checkpoints.popitem(last=False)

    def entry(self, index: int) -> LogEntry | None:
        batches = self.store.batches_covering(index, index + 1)
        for batch in batches:
            if batch.first <= index < batch.end:
                return decode_entry(index, batch.entries[index - batch.first].data)
        return None

    def entries_between(self, start: int, end: int) -> list[LogEntry]:
        """Entries start .. end - 1 as sequenced (fewer if the log is shorter)."""
        found: list[LogEntry] = []
        for batch in self.store.batches_covering(start, end):
            for offset, entry in enumerate(batch.entries):
                if start <= batch.first + offset < end:
                    found.append(decode_entry(batch.first + offset, entry.data))
        return found

    def now(self) -> datetime:
        return self._clock()

    def entry_bytes(self, index: int) -> bytes | None:
        for batch in self.store.batches_covering(index, index + 1):
            if batch.first <= index < batch.end:
                return batch.entries[index - batch.first].data
        return None

    def subject_entry_bytes(self, subject: str, indexes: Sequence[int], page: int = 500) -> dict[int, bytes]:
        """The exact bytes of entries `indexes`, all about `subject`, read through the subject's index (a page per
        `page` entries, not a read per entry); an index not about `subject` is missing from the answer."""
        wanted = set(indexes)
        found: dict[int, bytes] = {}
        if not wanted:
            return found
        after, last = min(wanted) - 1, max(wanted)
        while after < last:
            rows = self.store.entries_for_subject(subject, after=after, limit=page)
            found.update((row.index, row.data) for row in rows if row.index in wanted)
            if len(rows) < page:
                break
            after = rows[-1].index
        return found

    def entries_for_subject(self, subject: str, *, after: int = -1, limit: int = 100) -> list[LogEntry]:
        """Entries about `subject` after index `after`, oldest first, at most `limit` (a page)."""
        found = self.store.entries_for_subject(subject, after=after, limit=limit)
        return [decode_entry(e.index, e.data) for e in found]

    def find(self, idempotency_key: str) -> LogEntry | None:
        found = self.store.find_keys([idempotency_key]).get(idempotency_key)
        return decode_entry(found.index, found.data) if found else None

    def _signed(self, tree_size: int | None) -> tuple[int, bytes]:
        """(size, note) of the checkpoint of `tree_size`, or the latest; InvalidInput/NotFound otherwise."""
        if tree_size is not None:
            with self._checkpoints_lock:
                cached = self._checkpoints.get(tree_size)
            if cached is not None:  # a checkpoint was signed at that size: it is valid and cannot change
                return tree_size, cached
        latest = self.store.read_progress()
        if latest.checkpoint is None:
            raise NotFound("no checkpoint has been signed yet")
        if tree_size is None or tree_size == latest.checkpoint_size:
            self._remember_checkpoint(latest.checkpoint_size, latest.checkpoint)
            return latest.checkpoint_size, latest.checkpoint
        if tree_size < 1 or tree_size > latest.checkpoint_size:
            raise InvalidInput(f"treeSize must be between 1 and the latest checkpoint's size {latest.checkpoint_size}")
        return tree_size, self.checkpoint_at(tree_size)

    def prove(self, index: int, tree_size: int | None = None, entry: bytes | None = None) -> LogInclusionProof:
        """Inclusion of entry `index` in a signed checkpoint (the latest by default). NotFound for an index
        no checkpoint covers yet; InvalidInput for an index not in `tree_size`. `entry`: the entry's bytes when
        the caller already read them from the log (the proof holds them; a wrong one fails verification)."""
        if index < 0:
            raise InvalidInput("an entry index is 0 or more")
        size, note = self._signed(tree_size)
        if index >= size:
            if tree_size is not None:
                raise InvalidInput(f"entry {index} is not in the tree of size {size}")
            raise NotFound(f"entry {index} is not covered by a signed checkpoint yet (the latest is of size {size})")
        data = entry if entry is not None else self.entry_bytes(index)
        if data is None:
            raise NotFound(f"entry {index} is not in the log")
        hashes = inclusion_proof(index, size, TileNodes(size, self._tiles.read).node)
        return LogInclusionProof(
            index=index,
            tree_size=size,
            leaf_hash=leaf_hash(data).hex(),
            entry=base64.b64encode(data).decode(),
            hashes=[base64.b64encode(h).decode() for h in hashes],
            checkpoint=note.decode(),
        )

    def tlog_proof(self, index: int, tree_size: int | None = None, entry: bytes | None = None) -> bytes:
        """The C2SP tlog-proof file of one entry (the entry itself in `extra`)."""
        proof = self.prove(index, tree_size, entry)
        return TlogProof(
            index=proof.index,
            hashes=tuple(base64.b64decode(h) for h in proof.hashes),
            checkpoint=proof.checkpoint.encode(),
            extra=base64.b64decode(proof.entry),
        ).encode()

    def consistency(self, old_size: int, new_size: int | None = None) -> LogConsistencyProof:
        """PROOF(old_size, D[new_size]) with new_size a signed checkpoint's size (the latest by default)."""
        size, _ = self._signed(new_size)
        if not 0 < old_size <= size:
            raise InvalidInput(f"`from` must be between 1 and `to` ({size})")
        hashes = consistency_proof(old_size, size, TileNodes(size, self._tiles.read).node)
        return LogConsistencyProof(
            old_size=old_size, new_size=size, hashes=[base64.b64encode(h).decode() for h in hashes]
        )

    def consistency_hashes(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[new_size]) from the tiles, for a signed new_size (the anchor check)."""
        return consistency_proof(old_size, new_size, TileNodes(new_size, self._tiles.read).node)

    def tile(self, path: str) -> bytes:
        """A tile or entry bundle as stored (`tile/...`); InvalidInput for a malformed path."""
        try:
            parse_path(path)
        except TileError as error:
            raise InvalidInput(str(error)) from None
        try:
            return self.blobs.read(path)
        except LogBlobMissing:
            raise NotFound(f"{path} is not (yet) in the log") from None

    def verify_checkpoint(self, note: bytes) -> int:
        """The size of a checkpoint signed by this log's keys (NoteError otherwise)."""
        return open_checkpoint(note, self.keys.verifiers, self.keys.origin).checkpoint.size
