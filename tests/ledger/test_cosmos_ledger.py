"""The ledger in the real Cosmos emulator: concurrent appenders, crash recovery, tampering with stored documents."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from verbatim.ledger import CosmosLedgerStore, Ledger, LocalKeySigner, ensure_local_key, fingerprint
from verbatim.ledger.chain import build_entry, verify_inclusion
from verbatim.ledger.store import entry_id
from verbatim.platform import clients
from verbatim.platform.settings import Settings


def cosmos_ledger(settings: Settings, signer: LocalKeySigner | None, interval: int = 10) -> Ledger:
    """A ledger with its own Cosmos client, as a separate Function App instance would have."""
    container = clients.cosmos_database(settings).get_container_client("ledger")
    return Ledger(CosmosLedgerStore(container), "main", signer, checkpoint_interval=interval)


@pytest.fixture
def signer(tmp_path: Path) -> LocalKeySigner:
    return LocalKeySigner.from_file(ensure_local_key(tmp_path / "ledger.pem"))


def test_concurrent_appenders_leave_one_chain_without_gaps_or_forks(
    stack_env: Settings, signer: LocalKeySigner
) -> None:
    writers, per_writer = 6, 15
    ledgers = [cosmos_ledger(stack_env, signer) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                ledgers[index].append("accessed", f"recording:w{index}-{n}", {"writer": index, "n": n})
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    reader = cosmos_ledger(stack_env, signer)
    total = writers * per_writer
    entries = reader.store.entries("main", 1, 10_000)
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert sorted(e.subject for e in entries) == sorted(
        f"recording:w{i}-{n}" for i in range(writers) for n in range(per_writer)
    )
    head = reader.store.read_head("main")
    assert head is not None and (head.seq, head.hash) == (total, entries[-1].hash)
    assert reader.verify() == []
    assert [c.seq for c in reader.store.checkpoints("main")] == list(range(10, total + 1, 10))


def test_an_orphaned_entry_in_cosmos_is_adopted_by_the_next_append(stack_env: Settings, signer: LocalKeySigner) -> None:
    ledger = cosmos_ledger(stack_env, signer)
    first = ledger.append("sealed", "recording:a", {"n": 1})
    orphan = build_entry(
        chain="main",
        seq=2,
        kind="salvaged",
        subject="recording:b",
        details={},
        at=datetime.now(UTC),
        prev_hash=first.hash,
    )
    assert ledger.store.create_entry(orphan)

    third = ledger.append("accessed", "recording:a")

    assert (third.seq, third.prev_hash) == (3, orphan.hash)
    assert ledger.verify() == []


def test_editing_an_entry_document_in_cosmos_is_detected_and_explained(
    stack_env: Settings, signer: LocalKeySigner
) -> None:
    ledger = cosmos_ledger(stack_env, signer, interval=5)
    entries = [ledger.append("sealed", f"recording:r{n}", {"sha256": f"{n:064x}"}) for n in range(1, 6)]
    container = clients.cosmos_database(stack_env).get_container_client("ledger")
    doc = next(
        iter(
            container.query_items(
                "SELECT * FROM c WHERE c.chain = 'main' AND c.id = @id",
                parameters=[{"name": "@id", "value": entry_id(2)}],
                partition_key="main",
            )
        )
    )
    doc["details"]["sha256"] = "f" * 64  # someone with database access swaps the evidence hash
    container.replace_item(doc["id"], doc)

    findings = ledger.verify()
    assert [(f.code, f.seq) for f in findings] == [("entry.content_altered", 2)]
    stored = ledger.store.read_entry("main", 2)
    assert stored is not None
    proof = ledger.prove(stored)
    assert proof is not None
    assert [f.code for f in verify_inclusion(proof, {fingerprint(signer.public_key_pem())})] == [
        "entry.content_altered",
        "chain.broken_link",
    ]
    assert entries[1].details["sha256"] != stored.details["sha256"]
