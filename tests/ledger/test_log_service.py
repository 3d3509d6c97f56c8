"""Ledger v2 on the in-memory fakes: appends get contiguous indexes once in the tree, idempotency keys hold
across rounds and processes, concurrent sequencers never fork, checkpoints are signed from tiles only after
the consistency check, and proofs verify with the standalone verifier."""

from __future__ import annotations

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ledger.logkit import ORIGIN, log_keys, memory_log
from verbatim.ledger import merkle
from verbatim.ledger import standalone_verifier as sv
from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.blobs import InMemoryLogBlobs, LogBlobConflict
from verbatim.ledger.log.edge import RightEdge
from verbatim.ledger.log.maintenance import LogInconsistent
from verbatim.ledger.log.store import Batch, BatchEntry, InMemoryLogStore, LogState
from verbatim.ledger.merkle import MemoryTree, leaf_hash
from verbatim.ledger.tiles import TILE_WIDTH, BundleRef, TileRef, check_tiles


def all_entries(store: InMemoryLogStore) -> list[bytes]:
    return [e.data for b in sorted(store.batches.values(), key=lambda b: b.first) for e in b.entries]


def test_right_edge_gives_the_root_of_every_size() -> None:
    tree, edge = MemoryTree(), RightEdge()
    for n in range(1, 300):
        leaf = leaf_hash(n.to_bytes(4, "big"))
        tree.append_leaf_hash(leaf)
        edge = edge.extend([leaf])
        assert edge.size == n and edge.root() == tree.root()


def test_appends_get_contiguous_indexes_after_the_first_entry() -> None:
    log = memory_log()
    entries = [log.append("sealed", f"recording:{n}", {"n": n}, actor="tester") for n in range(5)]
    assert [e.index for e in entries] == [1, 2, 3, 4, 5]
    genesis = log.entry(0)
    assert genesis is not None and genesis.kind == "ledger.created" and genesis.details["origin"] == ORIGIN
    assert log.entry(3) == entries[2]
    assert entries[0].subject == "recording:0" and entries[0].actor == "tester" and entries[0].entry_schema_version == 2


def test_an_idempotency_key_already_in_the_log_returns_that_entry_and_appends_nothing() -> None:
    store = InMemoryLogStore()
    log = memory_log(store)
    first = log.append("sealed", "recording:a", {"v": 1}, idempotency_key="sealed:a")
    again = log.append("sealed", "recording:a", {"v": 2}, idempotency_key="sealed:a")
    assert again == first and again.details == {"v": 1}
    assert log.size() == 2


def test_the_same_key_submitted_concurrently_is_sequenced_once() -> None:
    store = InMemoryLogStore()
    log = memory_log(store)
    log.ensure_initialized()
    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda n: log.append("accessed", "recording:x", {"n": n}, idempotency_key="k"), range(64))
        )
    assert len({r.index for r in results}) == 1
    assert log.size() == 2


def test_two_processes_sequencing_one_log_never_fork_and_lose_nothing() -> None:
    store, blobs, keys = InMemoryLogStore(), InMemoryLogBlobs(), log_keys()
    processes = [memory_log(store, blobs, keys) for _ in range(3)]
    acknowledged: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        log = processes[n % 3]
        for k in range(40):
            entry = log.append("accessed", f"recording:{n}", {"k": k})
            data = log.entry_bytes(entry.index)
            assert data is not None
            with lock:
                acknowledged.append((entry.index, data))

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(writer, range(12)))
    stored = all_entries(store)
    assert len(stored) == 1 + 12 * 40 == store.state.size  # contiguous: every batch follows the one before
    assert len({i for i, _ in acknowledged}) == len(acknowledged)
    for index, data in acknowledged:
        assert stored[index] == data
    assert store.state.edge.root() == MemoryTree.of_entries(stored).root()


def test_a_batch_left_behind_by_a_dead_process_is_rolled_forward_by_the_next_round() -> None:
    store = InMemoryLogStore()
    log = memory_log(store)
    log.ensure_initialized()
    state = store.read_state()
    orphan = Batch(state.size, (BatchEntry(b'{"orphan":1}', "s:1", "k"),), "dead-round", "2026-01-01T00:00:00.000000Z")
    assert store.create_batch(orphan)  # created, and the process died before moving the state
    entry = log.append("sealed", "recording:b", {})
    assert entry.index == orphan.end
    assert store.state.size == orphan.end + 1
    assert all_entries(store)[orphan.first] == b'{"orphan":1}'


def test_checkpoint_is_signed_from_the_tiles_and_the_log_verifies_from_blob_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    keys = log_keys()
    log = memory_log(store, blobs, keys)
    for n in range(600):
        log.append_async("accessed", f"recording:{n % 7}", {"n": n})
    log.append("sealed", "recording:last", {})
    note = log.checkpoint()
    assert note is not None
    checkpoint = open_checkpoint(note, keys.verifiers).checkpoint
    assert checkpoint.size == 602 == store.state.size
    assert checkpoint.root_hash == MemoryTree.of_entries(all_entries(store)).root()
    assert TileRef(0, 1).path in blobs.blobs and TileRef(0, 2, 90).path in blobs.blobs
    assert BundleRef(2, 90).path in blobs.blobs
    # The standalone verifier audits the copy of the log the blobs hold.
    for name, data in blobs.blobs.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "checkpoint").write_bytes(note)
    report = sv.main(["log", str(tmp_path), "--key", keys.verifiers[0].vkey(), "--json"])
    assert report == 0


def test_inclusion_and_consistency_proofs_verify_with_the_standalone_verifier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = log_keys()
    log = memory_log(keys=keys)
    entries = [log.append("sealed", f"recording:{n}", {"n": n}) for n in range(300)]
    first = log.checkpoint()
    more = [log.append("deleted", f"recording:{n}", {}) for n in range(40)]
    second = log.checkpoint()
    assert first is not None and second is not None
    proof = log.prove(entries[7].index)
    assert proof.tree_size == 341 and len(proof.hashes) <= 9
    root = open_checkpoint(second, keys.verifiers).checkpoint.root_hash
    hashes = [base64.b64decode(h) for h in proof.hashes]
    merkle.verify_inclusion(proof.index, proof.tree_size, leaf_hash(base64.b64decode(proof.entry)), hashes, root)
    (tmp_path / "entry.tlog-proof").write_bytes(log.tlog_proof(more[3].index, 341))
    assert sv.main(["inclusion", str(tmp_path / "entry.tlog-proof"), "--key", keys.verifiers[0].vkey()]) == 0
    (tmp_path / "old").write_bytes(log.checkpoint_at(301))
    (tmp_path / "new").write_bytes(second)
    (tmp_path / "proof.json").write_text(log.consistency(301).model_dump_json(by_alias=True))
    files = [str(tmp_path / name) for name in ("old", "new", "proof.json")]
    assert sv.main(["consistency", *files, "--key", keys.verifiers[0].vkey()]) == 0


def test_a_checkpoint_that_would_not_extend_the_last_signed_one_is_refused() -> None:
    store, blobs, keys = InMemoryLogStore(), InMemoryLogBlobs(), log_keys()
    log = memory_log(store, blobs, keys)
    for n in range(20):
        log.append("sealed", f"recording:{n}", {})
    assert log.checkpoint() is not None
    # Someone rewrites history below the signed size: a different entry 5 in Cosmos, the state recomputed
    # to match, and the partial tiles of the old size are gone (in Azure they could not be; Azurite allows it).
    rewritten = [b'{"rewritten":true}' if i == 5 else e for i, e in enumerate(all_entries(store))]
    forged = tuple(BatchEntry(e, "s", "k") for e in rewritten)
    store.batches = {0: Batch(0, forged, "rewrite", "2026-01-01T00:00:00.000000Z")}
    store.state = LogState(RightEdge().extend(leaf_hash(e) for e in rewritten), "forged")
    for name in [n for n in blobs.blobs if n.startswith("tile/")]:
        del blobs.blobs[name]
    log = memory_log(store, blobs, keys)  # a process started after the rewrite
    log.append("sealed", "recording:after", {})
    with pytest.raises(LogInconsistent, match="not consistent with the checkpoint of size 21"):
        log.checkpoint()


def test_a_tampered_tile_stops_the_next_checkpoint_with_a_precise_reason() -> None:
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    log = memory_log(store, blobs)
    for n in range(300):
        log.append_async("accessed", f"recording:{n}", {})
    log.append("sealed", "recording:x", {})
    assert log.checkpoint() is not None
    name = TileRef(0, 0).path
    blobs.blobs[name] = blobs.blobs[name][:32] + bytes(32) + blobs.blobs[name][64:]
    findings = list(check_tiles(302, lambda ref: blobs.read(ref.path), lambda ref: blobs.read(ref.path)))
    assert [(f.code, f.path) for f in findings] == [
        ("tile.leaf_mismatch", "tile/entries/000"),  # entry 1 no longer hashes to what the tile says
        ("tile.node_mismatch", "tile/1/000.p/1"),  # and the tile no longer hashes to its parent's hash
    ]
    assert "entry 1 " in findings[0].message
    # A tile the next checkpoint writes again (the level-1 partial tile) that someone altered stops it.
    upper = TileRef(1, 0, 1).path
    blobs.blobs[upper] = bytes(32)
    log.append("sealed", "recording:y", {})
    with pytest.raises(LogBlobConflict, match=re.escape(upper)):
        log.checkpoint()


def test_integration_writes_upper_tiles_once_a_level_fills() -> None:
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    log = memory_log(store, blobs)
    log.ensure_initialized()
    total = TILE_WIDTH * TILE_WIDTH + 300
    while store.state.size < total:
        count = min(2000, total - store.state.size)
        log.sequencer.sequence([BatchEntry(f"e{store.state.size + n}".encode(), "s", "k") for n in range(count)])
    note = log.checkpoint()
    assert note is not None
    assert TileRef(1, 0).path in blobs.blobs and TileRef(2, 0, 1).path in blobs.blobs
    assert TileRef(1, 1, 1).path in blobs.blobs and TileRef(0, 257, 44).path in blobs.blobs
    assert open_checkpoint(note, log.keys.verifiers).checkpoint.root_hash == store.state.edge.root()
    root = open_checkpoint(note, log.keys.verifiers).checkpoint.root_hash
    for index in (1000, total - 1):
        proof = log.prove(index)
        hashes = [base64.b64decode(h) for h in proof.hashes]
        merkle.verify_inclusion(index, total, leaf_hash(f"e{index}".encode()), hashes, root)
    assert len(log.prove(1000).hashes) == 17  # 16 inside the first 65,536 leaves, one for the rest


def test_a_blob_that_holds_other_bytes_than_the_log_says_is_a_fork_alarm() -> None:
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    log = memory_log(store, blobs)
    for n in range(10):
        log.append("sealed", f"recording:{n}", {})
    blobs.blobs[BundleRef(0, 11).path] = b"\x00\x01x"
    with pytest.raises(LogBlobConflict, match=re.escape("tile/entries/000.p/11")):
        log.checkpoint()
