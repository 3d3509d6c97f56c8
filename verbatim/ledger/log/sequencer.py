"""Sequencing: writers hand entries to their process's `Sequencer`, which gives them indexes in batches.

Each process runs one pump thread. A round takes everything its writers have submitted since the last round
(group commit: the busier the log, the larger the batch), drops entries whose idempotency key the log already
holds, and then, against the sequencing state in the `LogStore`:

1. reads `state` (size n and the tree's right edge);
2. creates the batch document at first index n (create-only: of two processes that read the same state,
   one creates it and the other finds it taken and tries again — the tree never forks);
3. moves `state` over the batch (If-Match). A process that died between 2 and 3 left a batch at the state's
   size: whoever creates a batch next finds it there and moves `state` over it first (roll-forward).

An entry is acknowledged (its future resolves with its index) only once `state` has moved over its batch, so
an acknowledged entry is in the tree whatever dies afterwards. Several processes sequence the same log
without a leader; Cosmos DB's create-only documents and If-Match decide every race.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

from verbatim.ledger.canonical import format_instant
from verbatim.ledger.log.store import Batch, BatchEntry, LogState, LogStore
from verbatim.platform.errors import DependencyUnavailable, VerbatimError

log = logging.getLogger(__name__)

Step = Callable[[str], None]
"""Called at each named step of a round (`batch_created`, `state_advanced`): the crash tests stop the
process there with SIGKILL. Does nothing in production."""

MAX_BATCH_ENTRIES = 2000
MAX_BATCH_BYTES = 1_000_000  # entries' bytes per batch document (base64 in Cosmos: well under its 2 MB)
TILE_WIDTH = 256


class LogCorrupted(VerbatimError):
    """The sequencing state contradicts itself (a state that is not at a batch boundary): stop and look."""

    status = 500
    title = "Ledger corrupted"


@dataclass(frozen=True)
class Sequenced:
    """Where an entry landed. `duplicate`: its idempotency key was in the log already, and `index`/`data`
    are the entry sequenced first with that key (nothing new was appended)."""

    index: int
    data: bytes
    duplicate: bool = False


@dataclass
class _Pending:
    entry: BatchEntry
    future: Future[Sequenced] = field(default_factory=Future)


def _no_step(_: str) -> None:
    return None


class Sequencer:
    def __init__(
        self,
        store: LogStore,
        *,
        on_sequenced: Callable[[int, int], None] | None = None,
        step: Step = _no_step,
        max_attempts: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._on_sequenced = on_sequenced
        self._step = step
        self._max_attempts = max_attempts
        self._clock = clock
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._pump: threading.Thread | None = None
        self._closed = False
        self._state: LogState | None = None  # as this process last stored it

    # --- writers ---

    def submit(self, entry: BatchEntry) -> Future[Sequenced]:
        """Queue an entry for the next round; the future resolves once it is in the tree."""
        pending = _Pending(entry)
        with self._cond:
            if self._closed:
                raise DependencyUnavailable("the ledger sequencer of this process is shut down")
            self._pending.append(pending)
            if self._pump is None:
                self._pump = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
                self._pump.start()
            self._cond.notify()
        return pending.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._pump is not None:
            self._pump.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                taken: list[_Pending] = []
                size = 0
                for pending in self._pending:
                    if taken and (len(taken) == MAX_BATCH_ENTRIES or size + len(pending.entry.data) > MAX_BATCH_BYTES):
                        break
                    taken.append(pending)
                    size += len(pending.entry.data)
                del self._pending[: len(taken)]
            try:
                results = self.sequence([p.entry for p in taken])
            except Exception as error:  # every writer of the round hears why
                log.warning("ledger sequencing round failed", exc_info=True)
                failure = error if isinstance(error, VerbatimError) else DependencyUnavailable(f"ledger: {error}")
                for pending in taken:
                    pending.future.set_exception(failure)
                continue
            for pending, result in zip(taken, results, strict=True):
                pending.future.set_result(result)

    # --- one round ---

    def sequence(self, entries: list[BatchEntry]) -> list[Sequenced]:
        """Sequence `entries` (in this order, duplicates of logged idempotency keys left out) and return
        where each landed. Safe to call from several processes at once."""
        round_id = uuid.uuid4().hex
        plans: dict[int, list[Sequenced | int]] = {}  # by the first index each attempt's batch was planned at
        uncertain: int | None = None  # a create whose answer was lost: the batch may be stored
        last_error: Exception | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                time.sleep(min(0.002 * attempt, 0.05))
            try:
                if uncertain is not None:
                    stored = self.store.read_batch(uncertain)
                    if stored is not None and stored.round_id == round_id:
                        return self._finish(stored, plans[uncertain])
                    uncertain = None
                # The state this process last moved to, unless another process moved it since (then the
                # create below finds the first index taken, and the state is read again).
                state = self._state if self._state is not None else self.store.read_state()
                plan, new = self._plan(entries)
                if not new:
                    return [r for r in plan if isinstance(r, Sequenced)]
                batch = Batch(state.size, tuple(new), round_id, format_instant(self._clock()))
                plans[batch.first] = plan
                uncertain = batch.first
                if not self.store.create_batch(batch):
                    self._state = None
                    taken = self.store.read_batch(batch.first)
                    if taken is None or taken.round_id != round_id:
                        uncertain = None
                        if taken is not None:
                            self.roll_forward(taken)
                        continue
                    batch = taken
                return self._finish(batch, plan, state)
            except LogCorrupted:
                raise
            except Exception as error:  # a store error: retried; the batch may be stored
                self._state = None
                last_error = error
                log.info("ledger sequencing attempt failed: %s", error)
        raise DependencyUnavailable(f"ledger: no batch sequenced after {self._max_attempts} attempts ({last_error})")

    def _plan(self, entries: list[BatchEntry]) -> tuple[list[Sequenced | int], list[BatchEntry]]:
        """Per entry, where it lands: a Sequenced for a key the log holds, else its position in the new batch
        (-1 - position for a repeat of a key earlier in the same round). Read after the state, so every batch
        below the state's size is seen."""
        keys = [e.idempotency_key for e in entries if e.idempotency_key]
        logged = self.store.find_keys(keys) if keys else {}
        plan: list[Sequenced | int] = []
        new: list[BatchEntry] = []
        first_of_key: dict[str, int] = {}
        for entry in entries:
            key = entry.idempotency_key
            if key is not None and key in logged:
                plan.append(Sequenced(logged[key].index, logged[key].data, duplicate=True))
            elif key is not None and key in first_of_key:
                plan.append(-1 - first_of_key[key])
            else:
                if key is not None:
                    first_of_key[key] = len(new)
                plan.append(len(new))
                new.append(entry)
        return plan, new

    def _finish(self, batch: Batch, plan: list[Sequenced | int], state: LogState | None = None) -> list[Sequenced]:
        """Our batch is stored: move the state over it (unless someone did) and say where each entry is.
        `state`: as read before the batch was created (None: read it now)."""
        self._step("batch_created")
        if state is None or state.size != batch.first:
            state = self.store.read_state()
        moved = state.size >= batch.end
        self._state = None
        if not moved and state.size == batch.first:
            self._state = self.store.advance_state(state, state.edge.extend(batch.leaf_hashes()))
            moved = self._state is not None
            if not moved:  # someone else rolled the state forward over our batch, or it moved otherwise
                moved = self.store.read_state().size >= batch.end
        if not moved:
            raise LogCorrupted(f"ledger: batch {batch.first}..{batch.end - 1} is stored, the state not moved over it")
        self._step("state_advanced")
        if self._on_sequenced is not None and batch.end // TILE_WIDTH > batch.first // TILE_WIDTH:
            self._on_sequenced(batch.first, batch.end)
        return [self._result(p, batch) for p in plan]

    def roll_forward(self, hint: Batch | None = None) -> LogState:
        """Move `state` over every batch stored at its size (left by a process that died between creating a
        batch and moving the state); returns the state after."""
        state = self.store.read_state()
        while True:
            batch = hint if hint is not None and hint.first == state.size else self.store.read_batch(state.size)
            hint = None
            if batch is None:
                return state
            self.store.advance_state(state, state.edge.extend(batch.leaf_hashes()))
            state = self.store.read_state()

    @staticmethod
    def _result(planned: Sequenced | int, batch: Batch) -> Sequenced:
        if isinstance(planned, Sequenced):
            return planned
        if planned >= 0:
            return Sequenced(batch.first + planned, batch.entries[planned].data)
        position = -1 - planned
        return Sequenced(batch.first + position, batch.entries[position].data, duplicate=True)
