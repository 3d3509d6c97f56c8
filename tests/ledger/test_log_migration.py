"""Migration of the v1 chains into the log: the configured chain's entry n becomes index n, every chain is
followed by a `ledger.migrated` entry that makes the migration provable, a crash resumes without duplicates,
and a migrated chain takes no more v1 appends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.ledger.logkit import memory_log
from verbatim.contracts.evidence import LedgerEntry
from verbatim.ledger.log.migration import check_migration, migrate_v1
from verbatim.ledger.log.store import BatchEntry, InMemoryLogStore
from verbatim.ledger.signing import LocalKeySigner, fingerprint
from verbatim.ledger.store import InMemoryLedgerStore
from verbatim.ledger.writer import Ledger, LedgerMigrated


def v1_chains(store: InMemoryLedgerStore, signer: LocalKeySigner) -> tuple[Ledger, list[LedgerEntry]]:
    clock = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n) for n in range(10_000))
    evidence = Ledger(store, "evidence", signer, checkpoint_interval=10, clock=lambda: next(clock))
    written = [evidence.append("sealed", f"recording:{n}", {"n": n}, idempotency_key=f"sealed:{n}") for n in range(23)]
    other = Ledger(store, "archive", None, clock=lambda: next(clock))
    for n in range(4):
        other.append("hold.placed", f"hold:{n}", {})
    return evidence, written


def test_v1_entries_keep_their_numbers_and_the_migration_is_provable() -> None:
    v1, signer = InMemoryLedgerStore(), LocalKeySigner(ed25519.Ed25519PrivateKey.generate(), "v1")
    evidence, written = v1_chains(v1, signer)
    log = memory_log(initializer=migrate_v1(v1, "evidence"))
    after = log.append("accessed", "recording:3", {})
    for entry in written:  # entry n of the configured chain is index n of the log
        migrated = log.entry(entry.seq)
        assert migrated is not None and migrated.v1 == entry and migrated.kind == "sealed"
        assert migrated.subject == entry.subject and migrated.details == entry.details
    record = log.find("ledger.migrated:evidence")
    assert record is not None and record.index == 24
    assert record.details["first_index"] == 1 and record.details["last_index"] == 23
    assert record.details["v1_head_hash"] == written[-1].hash
    assert record.details["v1_checkpoint"] is not None and record.details["v1_checkpoint"]["seq"] == 20
    archive = log.find("ledger.migrated:archive")
    assert archive is not None and (archive.details["first_index"], archive.index) == (25, 29)
    assert after.index == 30
    findings, notes = check_migration(log, ["evidence", "archive"], {fingerprint(signer.public_key_pem())})
    assert findings == [] and len(notes) == 2
    assert [e.index for e in log.entries_for_subject("recording:3")] == [4, 30]  # v1 seq 4, then the new read
    with pytest.raises(LedgerMigrated):
        evidence.append("sealed", "recording:late", {})


def test_an_altered_migrated_leaf_is_found_by_the_migration_check() -> None:
    v1, signer = InMemoryLedgerStore(), LocalKeySigner(ed25519.Ed25519PrivateKey.generate(), "v1")
    v1_chains(v1, signer)
    store = InMemoryLogStore()
    log = memory_log(store, initializer=migrate_v1(v1, "evidence"))
    log.ensure_initialized()
    batch = store.batches[1]
    altered = batch.entries[4].data.replace(b'"n":4', b'"n":5')
    store.batches[1] = type(batch)(
        batch.first, (*batch.entries[:4], BatchEntry(altered, "recording:4", "sealed"), *batch.entries[5:]),
        batch.round_id, batch.created_at,
    )  # fmt: skip
    findings, _ = check_migration(log, ["evidence"], {fingerprint(signer.public_key_pem())})
    assert [f.code for f in findings] == ["migration.entry.content_altered"]
    assert "entry 5" in findings[0].message


def test_a_migration_stopped_half_way_resumes_without_duplicates() -> None:
    v1, signer = InMemoryLedgerStore(), LocalKeySigner(ed25519.Ed25519PrivateKey.generate(), "v1")
    _, written = v1_chains(v1, signer)

    calls = {"n": 0}
    original = v1.entries

    def failing_entries(chain: str, first: int, last: int) -> list[LedgerEntry]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("the process died here")
        return original(chain, first, last)

    store = InMemoryLogStore()
    v1.entries = failing_entries  # type: ignore[method-assign]
    import verbatim.ledger.log.migration as migration

    page = migration.PAGE
    migration.PAGE = 10
    try:
        with pytest.raises(ConnectionError):
            memory_log(store, initializer=migrate_v1(v1, "evidence")).ensure_initialized()
        assert store.state.size == 11  # the first page went in
        log = memory_log(store, initializer=migrate_v1(v1, "evidence"))
        log.ensure_initialized()
    finally:
        migration.PAGE = page
    for entry in written:
        migrated = log.entry(entry.seq)
        assert migrated is not None and migrated.v1 == entry
    findings, _ = check_migration(log, ["evidence", "archive"], {fingerprint(signer.public_key_pem())})
    assert findings == []
    assert log.size() == 1 + 23 + 1 + 4 + 1
