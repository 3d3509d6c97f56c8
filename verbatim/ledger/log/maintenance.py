"""Work on the log beyond sequencing, done by whichever process holds the maintenance lease (a field of the
`progress` document, taken with If-Match and held for `lease_seconds`):

- **integrate**: write every full entry bundle and tile (C2SP tlog-tiles) that the sequenced entries complete
  to the write-once blob container, and record how far that is done;
- **checkpoint**: for the current size, write the partial tiles, compute the root from the tiles in blob and
  compare it with the sequencing state's, check that the previous checkpoint's tree is a prefix of this one
  (a consistency proof from the tiles, verified against the previous *signed* root), and only then sign a
  C2SP checkpoint, have the configured witnesses cosign it (C2SP tlog-witness), store it as
  `checkpoints/<size>`, record it as the latest and hand it to the anchor store.

Every step is re-runnable: a process that dies anywhere leaves blobs that the next holder writes again with
the same bytes (anything else is a fork alarm) and a lease that expires.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from verbatim.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from verbatim.ledger.log.blobs import LogBlobMissing, LogBlobs, write_once
from verbatim.ledger.log.sequencer import LogCorrupted, Step
from verbatim.ledger.log.store import Batch, LogStore, Progress
from verbatim.ledger.merkle import ProofError, consistency_proof, leaf_hash, tree_root, verify_consistency
from verbatim.ledger.note import NoteError, NoteSigner, NoteVerifier
from verbatim.ledger.tiles import (
    TILE_WIDTH,
    BundleRef,
    TileError,
    TileNodes,
    TileRef,
    encode_bundle,
    perfect_root,
    tiles_for_size,
)
from verbatim.platform.errors import VerbatimError

log = logging.getLogger(__name__)

CHECKPOINTS_PREFIX = "checkpoints/"


def checkpoint_name(size: int) -> str:
    return f"{CHECKPOINTS_PREFIX}{size}"


class LogInconsistent(VerbatimError):
    """The log as stored does not extend the last signed checkpoint (or its tiles contradict the sequencing
    state): nothing is signed. Someone must look; the message says what disagreed."""

    status = 500
    title = "Ledger inconsistent"


class Cosigning(Protocol):
    """Witnesses asked to cosign each checkpoint before it is stored (`verbatim.ledger.log.witnesses`)."""

    def cosign(self, note: bytes, size: int, previous_size: int, prove: Callable[[int], list[bytes]]) -> bytes: ...


class Anchor(Protocol):
    """Where checkpoints go besides the log: the anchor store (and a time-stamping authority)."""

    def anchor(self, size: int, note: bytes) -> None: ...


@dataclass(frozen=True)
class LogKeys:
    """The log's identity: its origin line, the signer named after it, and the keys its checkpoints are
    verified with (the signer's and every earlier one)."""

    origin: str
    signer: NoteSigner | None
    verifiers: tuple[NoteVerifier, ...]


def _no_step(_: str) -> None:
    return None


def tile_reader(blobs: LogBlobs) -> Callable[[TileRef], bytes]:
    def read(ref: TileRef) -> bytes:
        try:
            return blobs.read(ref.path)
        except LogBlobMissing:
            raise TileError("tile.missing", f"{ref.path} is not in the log's storage") from None

    return read


class Maintenance:
    def __init__(
        self,
        store: LogStore,
        blobs: LogBlobs,
        keys: LogKeys,
        *,
        anchor: Anchor | None = None,
        witnesses: Cosigning | None = None,
        lease_seconds: float = 30.0,
        step: Step = _no_step,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.keys = keys
        self.anchor = anchor
        self.witnesses = witnesses
        self.lease_seconds = lease_seconds
        self.owner = uuid.uuid4().hex
        self._held = threading.Lock()
        self._step = step
        self._now = now

    # --- the lease ---

    def acquire(self) -> Progress | None:
        """The progress document with this process's lease on it, or None while another process (or another
        thread of this one) holds it. Pair with `release`."""
        if not self._held.acquire(blocking=False):
            return None
        try:
            for _ in range(5):
                progress = self.store.read_progress()
                if progress.lease_owner not in (None, self.owner) and progress.lease_until > self._now():
                    break
                leased = replace(progress, lease_owner=self.owner, lease_until=self._now() + self.lease_seconds)
                if self.store.write_progress(progress, leased):
                    return self.store.read_progress()
        except BaseException:
            self._held.release()
            raise
        self._held.release()
        return None

    def save(self, old: Progress, new: Progress) -> Progress:
        """Write progress under the lease (renewing it); LogCorrupted when the lease was lost meanwhile."""
        new = replace(new, lease_owner=self.owner, lease_until=self._now() + self.lease_seconds)
        if not self.store.write_progress(old, new):
            raise LogCorrupted("ledger: the maintenance lease was lost (another process took it after it expired)")
        return self.store.read_progress()

    def release(self, progress: Progress) -> None:
        """Give the lease up (if the write fails, it expires by itself)."""
        try:
            if progress.lease_owner == self.owner:
                self.store.write_progress(progress, replace(progress, lease_owner=None, lease_until=0.0))
        finally:
            self._held.release()

    # --- integration ---

    def integrate(self, progress: Progress, size: int) -> Progress:
        """Write the full bundles and tiles of entries progress.integrated .. the last multiple of 256 <= size."""
        target = size - size % TILE_WIDTH
        while progress.integrated < target:
            chunk_end = min(target, progress.integrated + 16 * TILE_WIDTH)
            batches = self.store.batches_covering(progress.integrated, chunk_end)
            entries = _entries_between(batches, progress.integrated, chunk_end)
            upper = [list(level) for level in progress.upper_tiles]
            for offset in range(0, len(entries), TILE_WIDTH):
                bundle_index = (progress.integrated + offset) // TILE_WIDTH
                data = entries[offset : offset + TILE_WIDTH]
                write_once(self.blobs, BundleRef(bundle_index).path, encode_bundle(data))
                leaves = [leaf_hash(e) for e in data]
                write_once(self.blobs, TileRef(0, bundle_index).path, b"".join(leaves))
                self._complete(upper, perfect_root(leaves), completed=bundle_index + 1)
            self._step("tiles_written")
            progress = self.save(
                progress, replace(progress, integrated=chunk_end, upper_tiles=tuple(tuple(level) for level in upper))
            )
        return progress

    def _complete(self, upper: list[list[bytes]], tile_hash: bytes, completed: int) -> None:
        """A level-0 tile is full (`completed` full level-0 tiles now): carry its hash up, writing every upper
        tile it completes."""
        level, count = 1, completed
        while True:
            if len(upper) < level:
                upper.append([])
            upper[level - 1].append(tile_hash)
            if len(upper[level - 1]) < TILE_WIDTH:
                return
            count //= TILE_WIDTH  # full tiles of this level now
            write_once(self.blobs, TileRef(level, count - 1).path, b"".join(upper[level - 1]))
            tile_hash = perfect_root(upper[level - 1])
            upper[level - 1] = []
            level += 1

    # --- checkpoints ---

    def checkpoint(self, size: int, root: bytes, progress: Progress) -> tuple[Progress, bytes]:
        """Sign the tree of `size` leaves whose root the sequencing state says is `root` (after checking it
        against the tiles and the previous checkpoint); returns the progress and the signed note."""
        if self.keys.signer is None:
            raise VerbatimError("the ledger has no signing key configured")
        progress = self.integrate(progress, size)
        if size == progress.checkpoint_size and progress.checkpoint is not None:
            return progress, progress.checkpoint
        if size < progress.checkpoint_size:
            raise LogInconsistent(f"ledger: the state's size {size} is below the last checkpoint's")
        self._write_partial_tiles(size, progress)
        self._step("partial_tiles_written")
        nodes = TileNodes(size, tile_reader(self.blobs))
        try:
            from_tiles = tree_root(size, nodes.node)
        except TileError as error:
            raise LogInconsistent(f"ledger: the tree of size {size} cannot be read from its tiles: {error}") from None
        if from_tiles != root:
            raise LogInconsistent(
                f"ledger: the tiles of the tree of size {size} give another root than the sequencing state"
            )
        previous = self.previous_checkpoint(progress)
        if previous is not None and previous.size > 0:
            proof = consistency_proof(previous.size, size, nodes.node)
            try:
                verify_consistency(previous.size, size, previous.root_hash, root, proof)
            except ProofError as error:
                raise LogInconsistent(
                    f"ledger: the tree of size {size} is not consistent with the checkpoint of size "
                    f"{previous.size} ({error.code}): refusing to sign"
                ) from None
        note = sign_checkpoint(Checkpoint(self.keys.origin, size, root), [self.keys.signer])
        if self.witnesses is not None:
            previous_size = previous.size if previous is not None else 0
            note = self.witnesses.cosign(
                note, size, previous_size, lambda old: consistency_proof(old, size, nodes.node)
            )
            self._step("cosigned")
        note = self._store_checkpoint(size, note)
        self._step("checkpoint_written")
        progress = self.save(progress, replace(progress, checkpoint=note, checkpoint_size=size))
        self._step("checkpoint_recorded")
        return progress, note

    def previous_checkpoint(self, progress: Progress) -> Checkpoint | None:
        """The last signed checkpoint, read from the write-once store and checked against the log's keys."""
        if progress.checkpoint_size == 0:
            return None
        try:
            stored = self.blobs.read(checkpoint_name(progress.checkpoint_size))
        except LogBlobMissing:
            raise LogInconsistent(
                f"ledger: the last checkpoint (size {progress.checkpoint_size}) is missing from the log's storage"
            ) from None
        try:
            return open_checkpoint(stored, self.keys.verifiers, self.keys.origin).checkpoint
        except NoteError as error:
            raise LogInconsistent(f"ledger: stored checkpoint {progress.checkpoint_size}: {error}") from None

    def _write_partial_tiles(self, size: int, progress: Progress) -> None:
        start = progress.integrated
        if size > start:
            entries = _entries_between(self.store.batches_covering(start, size), start, size)
            width = size - start
            write_once(self.blobs, BundleRef(start // TILE_WIDTH, width).path, encode_bundle(entries))
            write_once(self.blobs, TileRef(0, start // TILE_WIDTH, width).path, b"".join(leaf_hash(e) for e in entries))
        for ref in tiles_for_size(size):
            if ref.level == 0 or ref.is_full:
                continue
            hashes = progress.upper_tiles[ref.level - 1] if len(progress.upper_tiles) >= ref.level else ()
            if len(hashes) != ref.width:
                raise LogInconsistent(f"ledger: {ref.path} should hold {ref.width} hashes, progress has {len(hashes)}")
            write_once(self.blobs, ref.path, b"".join(hashes))

    def _store_checkpoint(self, size: int, note: bytes) -> bytes:
        """Write `checkpoints/<size>`; if another process signed that size first, its note is the one (same
        tree, another signature: ECDSA signatures differ each time)."""
        if self.blobs.create(checkpoint_name(size), note, "text/plain; charset=utf-8"):
            return note
        stored = self.blobs.read(checkpoint_name(size))
        try:
            same = parse_checkpoint(_note_text(stored)) == parse_checkpoint(_note_text(note))
        except NoteError:
            same = False
        if not same:
            raise LogInconsistent(f"ledger: {checkpoint_name(size)} holds a checkpoint of another tree")
        return stored

    def anchor_pending(self, progress: Progress, sizes: Sequence[int]) -> Progress:
        """Hand every checkpoint not yet anchored to the anchor store (oldest first)."""
        if self.anchor is None:
            return progress
        for size in sizes:
            if size <= progress.anchored_size:
                continue
            self.anchor.anchor(size, self.blobs.read(checkpoint_name(size)))
            self._step("anchored")
            progress = self.save(progress, replace(progress, anchored_size=size))
        return progress


def _note_text(note: bytes) -> str:
    text = note.decode("utf-8", errors="replace")
    split = text.rfind("\n\n")
    return text[: split + 1] if split >= 0 else text


def _entries_between(batches: list[Batch], start: int, end: int) -> list[bytes]:
    """The bytes of entries start .. end - 1 from the batches that hold them; LogInconsistent on a gap."""
    entries: list[bytes] = []
    position = start
    for batch in batches:
        if batch.end <= position:
            continue
        if batch.first > position:
            break
        take = batch.entries[position - batch.first : min(batch.end, end) - batch.first]
        entries.extend(e.data for e in take)
        position += len(take)
        if position >= end:
            break
    if position != end:
        raise LogInconsistent(f"ledger: the batches holding entries {position} .. {end - 1} are missing")
    return entries


__all__ = ["Anchor", "LogInconsistent", "LogKeys", "Maintenance", "checkpoint_name"]
