"""C2SP tlog-tiles: path encoding (Tessera's vectors and the spec's examples), the Tessera test log read from
its tiles and bundles, tiles of larger trees built from memory, and a tampered tile or bundle found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ledger.test_note import NOTES
from verbatim.ledger import merkle
from verbatim.ledger.checkpoint import parse_checkpoint
from verbatim.ledger.merkle import MemoryTree
from verbatim.ledger.note import parse_note
from verbatim.ledger.tiles import (
    TILE_WIDTH,
    BundleRef,
    TileError,
    TileNodes,
    TileRef,
    bundle_for,
    bundles_for_size,
    check_tiles,
    decode_bundle,
    encode_bundle,
    parse_path,
    tile_bytes,
    tile_root,
    tiles_for_size,
)

# Hypothesis's per-example deadline would be a timed assertion, and the machine is shared.
untimed = settings(deadline=None)

VECTORS = Path(__file__).parent / "vectors"
PATHS = json.loads((VECTORS / "tile-paths.json").read_text())
TESSERA = VECTORS / "tessera-log"


@pytest.mark.parametrize("case", PATHS["tile_paths"], ids=lambda c: c["path"])
def test_tile_path_encodes_and_parses_as_published(case: dict[str, int | str]) -> None:
    ref = TileRef(int(case["level"]), int(case["index"]), int(case["width"]) or TILE_WIDTH)
    assert ref.path == case["path"]
    assert parse_path(str(case["path"])) == ref


@pytest.mark.parametrize("case", PATHS["entries_paths"], ids=lambda c: c["path"])
def test_entry_bundle_path_encodes_and_parses_as_published(case: dict[str, int | str]) -> None:
    ref = BundleRef(int(case["index"]), int(case["width"]) or TILE_WIDTH)
    assert ref.path == case["path"]
    assert parse_path(str(case["path"])) == ref


@pytest.mark.parametrize("case", PATHS["entries_path_for_log_index"], ids=lambda c: f"{c['seq']}@{c['size']}")
def test_bundle_holding_an_entry_in_a_tree_of_a_size_is_as_published(case: dict[str, int | str]) -> None:
    assert bundle_for(int(case["seq"]), int(case["size"])).path == case["path"]


@pytest.mark.parametrize("case", PATHS["parse_valid"], ids=lambda c: c["index"])
def test_published_valid_tile_path_parses(case: dict[str, object]) -> None:
    level, index, width = case["want"]  # type: ignore[misc]
    assert parse_path(f"tile/{case['level']}/{case['index']}") == TileRef(level, index, width or TILE_WIDTH)


@pytest.mark.parametrize("case", PATHS["parse_invalid"], ids=lambda c: f"{c['level']}/{c['index']}")
def test_published_invalid_tile_path_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(TileError) as failure:
        parse_path(f"tile/{case['level']}/{case['index']}")
    assert failure.value.code == "tile.bad_path"


@pytest.mark.parametrize("example", ["tree_70000", "tree_256"])
def test_tiles_of_the_specs_example_trees(example: str) -> None:
    case = PATHS[example]
    tiles = tiles_for_size(case["size"])
    for level, count in case["full"].items():
        assert sum(1 for t in tiles if t.level == int(level) and t.is_full) == count
    for level, width in case["partial"].items():
        assert [t.width for t in tiles if t.level == int(level) and not t.is_full] == [width]
    assert {t.level for t in tiles} == {int(level) for level in case["full"]} | {int(lv) for lv in case["partial"]}


@untimed
@given(st.integers(0, (1 << 64) - 1))
def test_index_round_trips_through_its_path(index: int) -> None:
    assert parse_path(TileRef(3, index, 7).path) == TileRef(3, index, 7)


# --- the Tessera test log: written by another implementation, read by ours ---


def _tessera_reader(ref: TileRef) -> bytes:
    return (TESSERA / ref.path).read_bytes()


def _tessera_bundle(ref: BundleRef) -> bytes:
    return (TESSERA / ref.path).read_bytes()


def test_tessera_bundles_hold_its_entries_and_tiles_give_every_checkpoints_root() -> None:
    entries = [e.encode() for e in NOTES["tessera_log"]["entries"]]
    assert decode_bundle(_tessera_bundle(BundleRef(0, 15)), 15) == entries
    for size in range(1, 16):
        checkpoint = parse_checkpoint(parse_note((TESSERA / f"checkpoint.{size}").read_bytes()).text)
        nodes = TileNodes(size, _tessera_reader)
        assert merkle.tree_root(size, nodes.node) == checkpoint.root_hash
        assert list(check_tiles(size, _tessera_reader, _tessera_bundle)) == []
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, nodes.node)
            merkle.verify_inclusion(index, size, merkle.leaf_hash(entries[index]), proof, checkpoint.root_hash)


# --- larger trees, tiles built from memory ---

BIG = MemoryTree.of_entries(f"entry {i}".encode() for i in range(66_000))  # beyond 256**2: three tile levels


def _memory_tiles(size: int) -> dict[TileRef, bytes]:
    return {ref: tile_bytes(ref, BIG.node) for ref in tiles_for_size(size)}


def _lazy_reader(size: int):  # type: ignore[no-untyped-def]
    existing = set(tiles_for_size(size))

    def read(ref: TileRef) -> bytes:
        assert ref in existing, f"{ref.path} is not a tile of a tree of size {size}"
        return tile_bytes(ref, BIG.node)

    return read


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 66_000), st.data())
def test_roots_and_proofs_read_from_tiles_equal_those_from_memory(size: int, data: st.DataObject) -> None:
    nodes = TileNodes(size, _lazy_reader(size))
    assert merkle.tree_root(size, nodes.node) == BIG.root(size)
    index = data.draw(st.integers(0, size - 1))
    assert merkle.inclusion_proof(index, size, nodes.node) == BIG.inclusion_proof(index, size)
    old = data.draw(st.integers(1, size))
    assert merkle.consistency_proof(old, size, nodes.node) == BIG.consistency_proof(old, size)


def test_each_hash_of_a_higher_tile_is_the_hash_of_the_full_tile_below() -> None:
    tiles = _memory_tiles(66_000)
    level1 = tiles[TileRef(1, 0)]
    for position in range(TILE_WIDTH):
        assert level1[position * 32 : position * 32 + 32] == tile_root(tiles[TileRef(0, position)])
    assert tiles[TileRef(2, 0, 1)] == tile_root(level1)
    # The partial tile of level 0 (66,000 = 257 * 256 + 208) is never hashed upwards: level 1 holds 257 hashes.
    assert TileRef(0, 257, 208) in tiles and TileRef(1, 1, 1) in tiles


class _Store:
    def __init__(self, size: int) -> None:
        self.size = size
        self.tiles = _memory_tiles(size)
        entries = [f"entry {i}".encode() for i in range(size)]
        self.bundles = {
            b: encode_bundle(entries[b.first_entry : b.first_entry + b.width]) for b in bundles_for_size(size)
        }

    def findings(self) -> list[tuple[str, str]]:
        found = check_tiles(self.size, self.tiles.__getitem__, self.bundles.__getitem__)
        return [(f.code, f.path) for f in found]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


STORE_SIZE = 256 * 256 + 300


def test_an_untouched_tiled_log_has_no_findings() -> None:
    assert _Store(STORE_SIZE).findings() == []


def test_an_altered_entry_in_a_bundle_is_found_in_that_bundle() -> None:
    store = _Store(STORE_SIZE)
    store.bundles[BundleRef(3)] = _flip(store.bundles[BundleRef(3)], 5)
    assert store.findings() == [("tile.leaf_mismatch", "tile/entries/003")]


def test_an_altered_leaf_hash_in_a_level_0_tile_is_found_there_and_in_the_tile_above() -> None:
    store = _Store(STORE_SIZE)
    store.tiles[TileRef(0, 7)] = _flip(store.tiles[TileRef(0, 7)], 40)
    assert store.findings() == [("tile.leaf_mismatch", "tile/entries/007"), ("tile.node_mismatch", "tile/1/000")]


def test_an_altered_hash_in_a_level_1_tile_is_found() -> None:
    store = _Store(STORE_SIZE)
    store.tiles[TileRef(1, 1, 1)] = _flip(store.tiles[TileRef(1, 1, 1)], 0)
    assert store.findings() == [("tile.node_mismatch", "tile/1/001.p/1")]


def test_a_truncated_tile_or_bundle_is_found() -> None:
    store = _Store(600)
    store.tiles[TileRef(0, 2, 88)] = store.tiles[TileRef(0, 2, 88)][:-1]
    store.bundles[BundleRef(1)] = store.bundles[BundleRef(1)][:-3]
    assert store.findings() == [("bundle.malformed", "tile/entries/001"), ("tile.wrong_size", "tile/0/002.p/88")]


@untimed
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=TILE_WIDTH))
def test_bundle_round_trips(entries: list[bytes]) -> None:
    assert decode_bundle(encode_bundle(entries), len(entries)) == entries


def test_an_entry_over_65535_bytes_cannot_be_bundled() -> None:
    encode_bundle([b"x" * 65_535])
    with pytest.raises(TileError) as failure:
        encode_bundle([b"x" * 65_536])
    assert failure.value.code == "bundle.entry_too_large"
