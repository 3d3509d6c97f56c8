"""Migration of the v1 hash chains into the log, and the check that it was faithful.

Runs once, as the log's initializer (under the maintenance lease, before any other append): for each v1 chain
— the configured one first, so that its entry n becomes index n right after the log's first entry (index 0)
and every `ledger_seq` stored before the upgrade still names its entry — it freezes the chain's head, appends
every v1 entry as one leaf holding the canonical JSON of the whole stored entry, then a `ledger.migrated`
entry naming the leaf range, the v1 head it ended at and the last signed v1 checkpoint. A crash resumes from
the last leaf in the log. `check_migration` recomputes the v1 chain from the leaves and compares it with the
recorded head and checkpoint: the migration itself is provable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from verbatim.contracts.evidence import GENESIS_HASH, LedgerCheckpoint, LedgerEntry
from verbatim.contracts.ledger import LogEntry
from verbatim.ledger.chain import verify_checkpoint, verify_segment
from verbatim.ledger.log.entries import encode_entry, v1_leaf
from verbatim.ledger.log.maintenance import Maintenance
from verbatim.ledger.log.service import Initializer, TransparencyLog
from verbatim.ledger.log.store import BatchEntry, Progress
from verbatim.ledger.store import LedgerStore

log = logging.getLogger(__name__)

MIGRATED_KIND = "ledger.migrated"
PAGE = 500


def migrated_subject(chain: str) -> str:
    return f"ledger:v1/{chain}"


def migrate_v1(v1: LedgerStore, configured_chain: str) -> Initializer:
    """The initializer that migrates every v1 chain in `v1` (the configured chain first)."""

    def initialize(log_: TransparencyLog, maintenance: Maintenance, progress: Progress) -> Progress:
        chains = sorted(v1.chains(), key=lambda c: (c != configured_chain, c))
        for chain in chains:
            progress = _migrate_chain(log_, maintenance, v1, chain, progress)
        return progress

    return initialize


def _migrate_chain(
    log_: TransparencyLog, maintenance: Maintenance, v1: LedgerStore, chain: str, progress: Progress
) -> Progress:
    key = f"{MIGRATED_KIND}:{chain}"
    if log_.find(key) is not None:
        return progress
    head = v1.read_head(chain)
    while head is not None and not head.frozen and not v1.freeze(chain, head):
        head = v1.read_head(chain)  # an old-version writer moved it meanwhile
    if head is None or head.seq == 0:
        return progress
    # Resume after the last leaf if a crash stopped an earlier run inside this chain.
    size = log_.size()
    last = log_.entry(size - 1)
    done = last.v1.seq if last is not None and last.v1 is not None and last.v1.chain == chain else 0
    first_index = size - done
    seq = done + 1
    while True:
        head = v1.read_head(chain)  # an old-version writer may still have appended: take everything there is
        assert head is not None
        if seq > head.seq:
            break
        entries = v1.entries(chain, seq, min(head.seq, seq + PAGE - 1))
        if not entries or entries[0].seq != seq:
            raise ValueError(f"v1 chain {chain!r}: entry {seq} is missing; the chain cannot be migrated as it is")
        _append_v1(log_, entries)
        seq = entries[-1].seq + 1
        current = log_.store.read_progress()
        progress = maintenance.save(current, current)  # renew the lease
    last_entry = v1.read_entry(chain, seq - 1)
    assert last_entry is not None
    checkpoints = v1.checkpoints(chain)
    signed = checkpoints[-1].model_dump(mode="json") if checkpoints else None
    details: dict[str, JsonValue] = {
        "chain": chain,
        "first_index": first_index,
        "last_index": first_index + last_entry.seq - 1,
        "v1_head_seq": last_entry.seq,
        "v1_head_hash": last_entry.hash,
        "v1_checkpoint": signed,
    }
    data = encode_entry(MIGRATED_KIND, migrated_subject(chain), details, at=log_.now(), idempotency_key=key)
    log_.append_now(data, migrated_subject(chain), MIGRATED_KIND, key)
    log.info("ledger v1 chain %s migrated: %s entries", chain, last_entry.seq)
    return log_.store.read_progress()


def _append_v1(log_: TransparencyLog, entries: Sequence[LedgerEntry]) -> None:
    batch = [BatchEntry(v1_leaf(e), e.subject, e.kind) for e in entries]
    placed = log_.sequencer.sequence(batch)
    expected = placed[0].index
    for offset, result in enumerate(placed):
        if result.index != expected + offset or result.duplicate:
            raise ValueError("the v1 migration was interleaved with other appends")


@dataclass(frozen=True)
class MigrationFinding:
    code: str
    message: str


def check_migration(
    log_: TransparencyLog, chains: Iterable[str], v1_trusted_fingerprints: Iterable[str]
) -> tuple[list[MigrationFinding], list[str]]:
    """For every migrated v1 chain: the leaves of its range are the v1 chain from its genesis, they chain to
    the recorded head hash, and the recorded v1 checkpoint (signed by a trusted v1 key) signed the hash the
    chain has at its seq."""
    findings: list[MigrationFinding] = []
    notes: list[str] = []
    trusted = set(v1_trusted_fingerprints)
    for chain in chains:
        record = log_.find(f"{MIGRATED_KIND}:{chain}")
        if record is None:
            continue
        found = _check_chain(log_, chain, record, trusted)
        findings += found
        if not found:
            details = record.details
            notes.append(
                f"v1 chain {chain!r}: {details['v1_head_seq']} entries migrated as leaves {details['first_index']}.."
                f"{details['last_index']}; the chain they form ends at the recorded head"
                + (" and matches the recorded v1 checkpoint" if details.get("v1_checkpoint") else "")
            )
    return findings, notes


def _check_chain(log_: TransparencyLog, chain: str, record: LogEntry, trusted: set[str]) -> list[MigrationFinding]:
    details = record.details
    first, last = int(str(details["first_index"])), int(str(details["last_index"]))
    v1 = [e.v1 for e in log_.entries_between(first, last + 1) if e.v1 is not None]
    if len(v1) != last - first + 1 or any(e.chain != chain for e in v1):
        return [MigrationFinding("migration.range_invalid", f"leaves {first}..{last} are not v1 chain {chain!r}")]
    findings = [
        MigrationFinding(f"migration.{f.code}", f"v1 chain {chain!r}: {f.message}")
        for f in verify_segment(v1, prev_hash=GENESIS_HASH, first_seq=1)
    ]
    if v1[-1].hash != details["v1_head_hash"] or v1[-1].seq != details["v1_head_seq"]:
        findings.append(
            MigrationFinding("migration.head_mismatch", f"v1 chain {chain!r}: the leaves end at another head")
        )
    signed = details.get("v1_checkpoint")
    if isinstance(signed, dict):
        checkpoint = LedgerCheckpoint.model_validate(signed)
        findings += [
            MigrationFinding(f"migration.{f.code}", f"v1 chain {chain!r}: {f.message}")
            for f in verify_checkpoint(checkpoint, trusted)
        ]
        at = v1[checkpoint.seq - 1] if 0 < checkpoint.seq <= len(v1) else None
        if at is None or at.hash != checkpoint.hash:
            findings.append(
                MigrationFinding(
                    "migration.checkpoint_mismatch",
                    f"v1 chain {chain!r}: the v1 checkpoint at {checkpoint.seq} signed another hash than the leaves",
                )
            )
    return findings
