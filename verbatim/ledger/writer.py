"""Appending to the ledger: the `LedgerWriter` port other areas call, and `Ledger`, its implementation.

An append takes the next sequence number by creating the entry document (a seq can be created once),
then moves the head with If-Match. A writer that crashed between the two leaves an entry the head does
not name yet; the next writer finds the seq taken, checks that entry chains to the head, moves the head
over it and tries again — so there is never a gap and never a fork, whatever the interleaving.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from pydantic import JsonValue

from verbatim.contracts.evidence import GENESIS_HASH, InclusionProof, LedgerCheckpoint, LedgerEntry
from verbatim.ledger.chain import Finding, build_entry, links_after, sign_checkpoint, verify_segment
from verbatim.ledger.signing import Signer
from verbatim.ledger.store import LedgerStore
from verbatim.platform.errors import DependencyUnavailable, VerbatimError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class LedgerRecord(Protocol):
    """An appended entry as writers see it: the v2 log's `LogEntry` (and the v1 chain's `LedgerEntry`)."""

    @property
    def seq(self) -> int:
        """Its position in the ledger (the v2 index; v1 sequence numbers are the same numbers)."""
        ...

    @property
    def kind(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def details(self) -> dict[str, JsonValue]: ...

    @property
    def actor(self) -> str | None: ...

    @property
    def idempotency_key(self) -> str | None: ...

    @property
    def at(self) -> str: ...


class LedgerWriter(Protocol):
    """The port the lifecycle, retention, policy, chat and API areas append through (the v2 log implements
    it: `verbatim.ledger.log.service.TransparencyLog`)."""

    def append(
        self,
        kind: str,
        subject: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerRecord:
        """Append one entry and return it as committed. `kind` is an `EntryKind` value or another dotted
        lowercase name; `subject` is "<type>:<id>"; `details` hold JSON with integers, never floats.
        With an `idempotency_key` already in the chain, that entry is returned and nothing is appended."""
        ...


class LedgerCorrupted(VerbatimError):
    """The stored chain contradicts itself (an entry that does not follow the head): stop and investigate."""

    status = 500
    title = "Ledger corrupted"


class LedgerMigrated(VerbatimError):
    """An append to a v1 chain that was migrated to the v2 log (docs/ledger-v2.md)."""

    status = 409
    title = "Ledger migrated"


class Ledger:
    """A chain in a `LedgerStore`, with checkpoints signed every `checkpoint_interval` entries."""

    def __init__(
        self,
        store: LedgerStore,
        chain: str,
        signer: Signer | None,
        *,
        checkpoint_interval: int = 100,
        clock: Clock = utc_now,
        max_attempts: int = 200,
    ) -> None:
        self.store = store
        self.chain = chain
        self.signer = signer
        self.checkpoint_interval = checkpoint_interval
        self._clock = clock
        self._max_attempts = max_attempts

    def append(
        self,
        kind: str,
        subject: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerEntry:
        if idempotency_key is not None:
            existing = self.store.find_by_idempotency_key(self.chain, idempotency_key)
            if existing is not None:
                return existing
        for attempt in range(self._max_attempts):
            head = self.store.read_head(self.chain)
            if head is None:
                self.store.create_head(self.chain)
                continue
            if head.frozen:
                raise LedgerMigrated(f"ledger chain {self.chain!r} was migrated to the v2 log; append there")
            entry = build_entry(
                chain=self.chain,
                seq=head.seq + 1,
                kind=kind,
                subject=subject,
                details=details or {},
                at=self._clock(),
                prev_hash=head.hash,
                actor=actor,
                idempotency_key=idempotency_key,
            )
            if self.store.create_entry(entry):
                # A 412 here means another writer already moved the head over our entry: fine either way.
                self.store.advance_head(self.chain, head, entry)
                self._maybe_checkpoint(entry)
                return entry
            taken = self._roll_forward(head.seq + 1, head.hash)
            if idempotency_key is not None and taken.idempotency_key == idempotency_key:
                return taken  # our own earlier attempt, left behind by a crash
            # Spread retries of contending writers (Cosmos answers in milliseconds).
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))  # noqa: S311 - jitter, not security
        raise DependencyUnavailable(f"ledger {self.chain!r}: no sequence number after {self._max_attempts} tries")

    def _roll_forward(self, seq: int, head_hash: str) -> LedgerEntry:
        """The entry that took `seq` first; the head is moved over it if it still lags."""
        taken = self.store.read_entry(self.chain, seq)
        if taken is None:
            raise DependencyUnavailable(f"ledger {self.chain!r}: entry {seq} was taken but cannot be read")
        if taken.prev_hash != head_hash:
            raise LedgerCorrupted(f"ledger {self.chain!r}: entry {seq} does not follow the head (a fork)", seq=seq)
        head = self.store.read_head(self.chain)
        if head is not None and head.seq == seq - 1:
            self.store.advance_head(self.chain, head, taken)
        return taken

    def _maybe_checkpoint(self, entry: LedgerEntry) -> None:
        if self.signer is None or entry.seq % self.checkpoint_interval:
            return
        try:
            self.store.create_checkpoint(sign_checkpoint(entry, self.signer, self._clock()))
        except Exception:
            # The entry is committed; the next checkpoint (interval, timer or on demand) covers it.
            log.warning("ledger checkpoint at %s failed", entry.seq, exc_info=True, extra={"chain": self.chain})

    # --- reading and proving ---

    def head_entry(self) -> LedgerEntry | None:
        head = self.store.read_head(self.chain)
        if head is None or head.seq == 0:
            return None
        return self.store.read_entry(self.chain, head.seq)

    def checkpoint(self) -> LedgerCheckpoint | None:
        """Sign the current head now (or return the checkpoint already there); None for an empty chain."""
        if self.signer is None:
            raise VerbatimError(f"ledger {self.chain!r} has no signing key configured")
        entry = self.head_entry()
        if entry is None:
            return None
        existing = self.store.first_checkpoint_at_or_after(self.chain, entry.seq)
        if existing is not None and existing.seq == entry.seq:
            return existing
        checkpoint = sign_checkpoint(entry, self.signer, self._clock())
        if not self.store.create_checkpoint(checkpoint):
            stored = self.store.first_checkpoint_at_or_after(self.chain, entry.seq)
            assert stored is not None
            return stored
        return checkpoint

    def prove(self, entry: LedgerEntry) -> InclusionProof | None:
        """An inclusion proof of `entry` up to the first signed checkpoint at or after it (None if none yet).
        The proof carries the stored entry, so an altered entry shows up when the proof is verified."""
        checkpoint = self.store.first_checkpoint_at_or_after(self.chain, entry.seq)
        if checkpoint is None:
            return None
        following = self.store.entries(self.chain, entry.seq + 1, checkpoint.seq)
        return InclusionProof(entry=entry, links=links_after(following), checkpoint=checkpoint)

    def verify(self, first: int = 1, last: int | None = None) -> list[Finding]:
        """Verify the stored chain from `first` to `last` (default: the head), and that every checkpoint in
        that range signed the hash the chain has there (signatures are checked by `verify_checkpoint`)."""
        head = self.store.read_head(self.chain)
        last = head.seq if last is None and head is not None else (last or 0)
        if last < first:
            return []
        entries = self.store.entries(self.chain, first, last)
        if first == 1:
            prev_hash = GENESIS_HASH
        else:
            before = self.store.read_entry(self.chain, first - 1)
            if before is None:
                return [Finding("chain.gap", f"entry {first - 1} is missing", first - 1)]
            prev_hash = before.hash
        findings = verify_segment(entries, prev_hash=prev_hash, first_seq=first)
        if entries and entries[-1].seq != last:
            findings.append(Finding("chain.gap", f"entries {entries[-1].seq + 1}..{last} are missing", last))
        if not entries:
            findings.append(Finding("chain.gap", f"entries {first}..{last} are missing", first))
        by_seq = {e.seq: e for e in entries}
        for checkpoint in self.store.checkpoints(self.chain):
            signed = by_seq.get(checkpoint.seq)
            if signed is not None and signed.hash != checkpoint.hash:
                findings.append(
                    Finding(
                        "checkpoint.hash_mismatch",
                        f"checkpoint {checkpoint.seq} signed hash {checkpoint.hash[:12]}…, the chain now has "
                        f"{signed.hash[:12]}… there — entries up to {checkpoint.seq} were rewritten",
                        checkpoint.seq,
                    )
                )
        return findings
