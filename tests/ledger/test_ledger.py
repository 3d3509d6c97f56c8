"""The ledger service against its in-memory store: sequencing, idempotency, crash recovery, checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from verbatim.contracts.evidence import GENESIS_HASH
from verbatim.ledger import InMemoryLedgerStore, Ledger, LocalKeySigner, ensure_local_key, fingerprint
from verbatim.ledger.canonical import NotCanonicalizable
from verbatim.ledger.chain import build_entry, verify_inclusion


def ticking_clock() -> Iterator[datetime]:
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    while True:
        moment += timedelta(milliseconds=1)
        yield moment


@pytest.fixture
def signer(tmp_path: Path) -> LocalKeySigner:
    return LocalKeySigner.from_file(ensure_local_key(tmp_path / "ledger.pem"))


@pytest.fixture
def ledger(signer: LocalKeySigner) -> Ledger:
    clock = ticking_clock()
    return Ledger(InMemoryLedgerStore(), "main", signer, checkpoint_interval=5, clock=lambda: next(clock))


def test_appends_are_numbered_from_one_and_chained(ledger: Ledger) -> None:
    first = ledger.append("sealed", "recording:a", {"sha256": "ab" * 32})
    second = ledger.append("accessed", "recording:a", {"reason": "case 7"}, actor="officer@contoso.com")

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.actor == "officer@contoso.com"
    assert ledger.verify() == []


def test_an_idempotency_key_appends_once(ledger: Ledger) -> None:
    first = ledger.append("sealed", "recording:a", {}, idempotency_key="seal:a")
    again = ledger.append("sealed", "recording:a", {}, idempotency_key="seal:a")

    assert again == first
    assert ledger.head_entry() == first


def test_floats_in_details_are_refused_before_anything_is_written(ledger: Ledger) -> None:
    with pytest.raises(NotCanonicalizable):
        ledger.append("sealed", "recording:a", {"duration": 1.5})
    assert ledger.head_entry() is None


def test_an_entry_left_behind_by_a_crashed_writer_is_adopted_not_forked(ledger: Ledger) -> None:
    ledger.append("sealed", "recording:a")
    head = ledger.store.read_head("main")
    assert head is not None
    # A writer created entry 2 and died before moving the head.
    orphan = build_entry(
        chain="main",
        seq=2,
        kind="hold.placed",
        subject="hold:m-1",
        details={},
        at=datetime(2025, 3, 2, tzinfo=UTC),
        prev_hash=head.hash,
        idempotency_key="hold:m-1:placed",
    )
    assert ledger.store.create_entry(orphan)

    third = ledger.append("accessed", "recording:a")
    retried = ledger.append("hold.placed", "hold:m-1", {}, idempotency_key="hold:m-1:placed")

    assert third.seq == 3
    assert third.prev_hash == orphan.hash
    assert retried == orphan
    assert ledger.verify() == []


def test_a_checkpoint_is_signed_every_interval_and_proves_inclusion(ledger: Ledger, signer: LocalKeySigner) -> None:
    entries = [ledger.append("accessed", f"recording:{n}") for n in range(12)]

    assert [c.seq for c in ledger.store.checkpoints("main")] == [5, 10]
    proof = ledger.prove(entries[6])
    assert proof is not None
    assert proof.checkpoint.seq == 10
    assert [link.seq for link in proof.links] == [8, 9, 10]
    assert verify_inclusion(proof, {fingerprint(signer.public_key_pem())}) == []
    # Entries after the last checkpoint are not provable until the next one.
    assert ledger.prove(entries[11]) is None
    on_demand = ledger.checkpoint()
    assert on_demand is not None and on_demand.seq == 12
    assert ledger.checkpoint() == on_demand
    assert ledger.prove(entries[11]) is not None


def test_a_failing_signer_does_not_fail_the_append(ledger: Ledger) -> None:
    class BrokenSigner(LocalKeySigner):
        def sign(self, message: bytes) -> bytes:
            raise OSError("vault unreachable")

    assert ledger.signer is not None
    ledger.signer = BrokenSigner(ledger.signer._key, "broken")  # type: ignore[attr-defined]
    entries = [ledger.append("accessed", f"recording:{n}") for n in range(5)]

    assert entries[-1].seq == 5
    assert ledger.store.checkpoints("main") == []
