"""RFC 9162 hashing and proofs: the published vectors of transparency-dev/merkle, the RFC's recursive
definitions written out as a reference, and properties over random trees (every proof verifies; any altered
hash, index or size fails)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verbatim.ledger import merkle
from verbatim.ledger.merkle import MemoryTree, ProofError

# Hypothesis's per-example deadline would be a timed assertion, and the machine is shared.
untimed = settings(deadline=None)

VECTORS = Path(__file__).parent / "vectors"
REFERENCE = json.loads((VECTORS / "rfc6962-reference.json").read_text())
PROBES = VECTORS / "transparency-dev-merkle"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _probe_files(kind: str) -> list[Path]:
    return sorted((PROBES / kind).rglob("*.json"))


# --- the RFC's recursive definitions, transcribed literally: the reference the module is held to ---


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = _k(len(leaves))
    return merkle.node_hash(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [rfc_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], whole), rfc_mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), rfc_mth(leaves[:k])]


# --- published vectors ---


def test_reference_tree_roots_nodes_and_empty_tree_match_the_published_hashes() -> None:
    entries = [bytes.fromhex(x) for x in REFERENCE["leaf_inputs"]]
    tree = MemoryTree.of_entries(entries)
    assert merkle.EMPTY_ROOT.hex() == REFERENCE["root_hashes"][0]
    for size, expected in enumerate(REFERENCE["root_hashes"]):
        assert tree.root(size).hex() == expected
        assert merkle.root_hash([merkle.leaf_hash(e) for e in entries[:size]]).hex() == expected
    for level, hashes in enumerate(REFERENCE["node_hashes"]):
        assert [tree.node(level, i).hex() for i in range(len(hashes))] == hashes


@pytest.mark.parametrize("case", REFERENCE["inclusion_proofs"], ids=lambda c: f"{c['index']}@{c['size']}")
def test_reference_inclusion_proofs_are_generated_exactly_and_verify(case: dict[str, object]) -> None:
    entries = [bytes.fromhex(x) for x in REFERENCE["leaf_inputs"]]
    tree = MemoryTree.of_entries(entries)
    index, size = int(str(case["index"])), int(str(case["size"]))
    proof = tree.inclusion_proof(index, size)
    assert [h.hex() for h in proof] == case["proof"]
    merkle.verify_inclusion(index, size, merkle.leaf_hash(entries[index]), proof, tree.root(size))


@pytest.mark.parametrize("case", REFERENCE["consistency_proofs"], ids=lambda c: f"{c['size1']}-{c['size2']}")
def test_reference_consistency_proofs_are_generated_exactly_and_verify(case: dict[str, object]) -> None:
    tree = MemoryTree.of_entries(bytes.fromhex(x) for x in REFERENCE["leaf_inputs"])
    old, new = int(str(case["size1"])), int(str(case["size2"]))
    proof = tree.consistency_proof(old, new)
    assert [h.hex() for h in proof] == case["proof"]
    merkle.verify_consistency(old, new, tree.root(old), tree.root(new), proof)


@pytest.mark.parametrize("path", _probe_files("inclusion"), ids=lambda p: str(p.relative_to(PROBES)))
def test_inclusion_probe_of_transparency_dev_is_accepted_or_refused_as_published(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (probe["leafIdx"], probe["treeSize"], _b64(probe["leafHash"]), [_b64(h) for h in probe["proof"] or []])
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args, _b64(probe["root"]))
    else:
        merkle.verify_inclusion(*args, _b64(probe["root"]))


@pytest.mark.parametrize("path", _probe_files("consistency"), ids=lambda p: str(p.relative_to(PROBES)))
def test_consistency_probe_of_transparency_dev_is_accepted_or_refused_as_published(path: Path) -> None:
    probe = json.loads(path.read_text())
    proof = [_b64(h) for h in probe["proof"] or []]
    args = (probe["size1"], probe["size2"], _b64(probe["root1"]), _b64(probe["root2"]), proof)
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_probe_sets_hold_both_accepted_and_refused_cases() -> None:
    verdicts = [json.loads(p.read_text())["wantErr"] for p in _probe_files("inclusion") + _probe_files("consistency")]
    assert len(verdicts) > 150 and verdicts.count(False) >= 10 and verdicts.count(True) >= 100


# --- properties over random trees ---

SHARED = MemoryTree.of_entries(f"entry {i}".encode() for i in range(1100))
SHARED_ENTRIES = [f"entry {i}".encode() for i in range(1100)]


@st.composite
def index_in_tree(draw: st.DrawFn, max_size: int = 1100) -> tuple[int, int]:
    size = draw(st.integers(1, max_size))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn, max_size: int = 1100) -> tuple[int, int]:
    new = draw(st.integers(1, max_size))
    return draw(st.integers(1, new)), new


def _flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


@untimed
@given(st.lists(st.binary(max_size=8), max_size=70), st.data())
def test_generated_proofs_equal_the_rfc_definitions(entries: list[bytes], data: st.DataObject) -> None:
    tree = MemoryTree.of_entries(entries)
    assert tree.root() == rfc_mth(entries) == merkle.root_hash([merkle.leaf_hash(e) for e in entries])
    if entries:
        index = data.draw(st.integers(0, len(entries) - 1))
        assert tree.inclusion_proof(index) == rfc_path(index, entries)
        old = data.draw(st.integers(1, len(entries)))
        assert tree.consistency_proof(old) == rfc_subproof(old, entries, True)


@untimed
@given(index_in_tree())
def test_every_inclusion_proof_verifies_and_is_at_most_log2_hashes(case: tuple[int, int]) -> None:
    index, size = case
    proof = SHARED.inclusion_proof(index, size)
    assert len(proof) <= (size - 1).bit_length()
    merkle.verify_inclusion(index, size, merkle.leaf_hash(SHARED_ENTRIES[index]), proof, SHARED.root(size))


@untimed
@given(index_in_tree(), st.data())
def test_an_altered_proof_hash_fails_inclusion(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    proof = SHARED.inclusion_proof(index, size)
    if not proof:
        return  # a one-leaf tree: the proof is empty, the leaf is the root (tested with the leaf below)
    position = data.draw(st.integers(0, len(proof) - 1))
    proof[position] = _flip(proof[position], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError) as failure:
        merkle.verify_inclusion(index, size, merkle.leaf_hash(SHARED_ENTRIES[index]), proof, SHARED.root(size))
    assert failure.value.code == "proof.root_mismatch"


@untimed
@given(index_in_tree(), st.data())
def test_an_altered_leaf_fails_inclusion(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    leaf = _flip(merkle.leaf_hash(SHARED_ENTRIES[index]), data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, SHARED.inclusion_proof(index, size), SHARED.root(size))


@untimed
@given(index_in_tree(), st.data())
def test_an_altered_index_fails_inclusion(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    other = data.draw(st.integers(0, size + 5).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            other, size, merkle.leaf_hash(SHARED_ENTRIES[index]), SHARED.inclusion_proof(index, size), SHARED.root(size)
        )


@untimed
@given(index_in_tree(), st.data())
def test_an_altered_size_fails_inclusion_against_that_sizes_root(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    other = data.draw(st.integers(1, 1100).filter(lambda s: s != size))
    proof = SHARED.inclusion_proof(index, size)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, other, merkle.leaf_hash(SHARED_ENTRIES[index]), proof, SHARED.root(other))


@untimed
@given(two_sizes())
def test_every_consistency_proof_verifies_and_is_at_most_log2_plus_one_hashes(case: tuple[int, int]) -> None:
    old, new = case
    proof = SHARED.consistency_proof(old, new)
    assert len(proof) <= (new - 1).bit_length() + 1
    merkle.verify_consistency(old, new, SHARED.root(old), SHARED.root(new), proof)


@untimed
@given(two_sizes(), st.data())
def test_an_altered_consistency_proof_hash_fails(case: tuple[int, int], data: st.DataObject) -> None:
    old, new = case
    proof = SHARED.consistency_proof(old, new)
    if not proof:
        return  # equal sizes: nothing to alter (the roots are compared directly, tested below)
    position = data.draw(st.integers(0, len(proof) - 1))
    proof[position] = _flip(proof[position], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, SHARED.root(old), SHARED.root(new), proof)


@untimed
@given(two_sizes(), st.data(), st.sampled_from(["old", "new"]))
def test_an_altered_root_fails_consistency(case: tuple[int, int], data: st.DataObject, which: str) -> None:
    old, new = case
    old_root, new_root = SHARED.root(old), SHARED.root(new)
    bit = data.draw(st.integers(0, 255))
    if which == "old":
        old_root = _flip(old_root, bit)
    else:
        new_root = _flip(new_root, bit)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, SHARED.consistency_proof(old, new))


@untimed
@given(two_sizes(), st.data(), st.sampled_from(["old", "new"]))
def test_an_altered_size_fails_consistency_against_that_sizes_root(
    case: tuple[int, int], data: st.DataObject, which: str
) -> None:
    old, new = case
    proof = SHARED.consistency_proof(old, new)
    if which == "old":
        old = data.draw(st.integers(1, new).filter(lambda s: s != case[0]) if new > 1 else st.just(0))
    else:
        new = data.draw(st.integers(old, 1100).filter(lambda s: s != case[1]))
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, SHARED.root(old) if old else merkle.EMPTY_ROOT, SHARED.root(new), proof)


@settings(max_examples=50, deadline=None)
@given(two_sizes(), st.integers(-1, 1))
def test_a_truncated_or_extended_consistency_proof_fails_on_its_length(case: tuple[int, int], change: int) -> None:
    old, new = case
    proof = SHARED.consistency_proof(old, new)
    if change == 0 or (change < 0 and not proof):
        return
    altered = proof[:-1] if change < 0 else [*proof, proof[-1] if proof else merkle.EMPTY_ROOT]
    with pytest.raises(ProofError) as failure:
        merkle.verify_consistency(old, new, SHARED.root(old), SHARED.root(new), altered)
    assert failure.value.code == "proof.wrong_length"


def test_subtree_hash_refuses_a_range_that_is_not_a_subtree() -> None:
    assert merkle.is_subtree(4, 7) and merkle.is_subtree(0, 5) and not merkle.is_subtree(2, 6)
    with pytest.raises(ValueError, match="not a subtree"):
        merkle.subtree_hash(2, 6, SHARED.node)
    assert merkle.subtree_hash(4, 7, SHARED.node) == rfc_mth(SHARED_ENTRIES[4:7])


def test_memory_tree_refuses_nodes_and_sizes_it_does_not_have() -> None:
    tree = MemoryTree.of_entries([b"a", b"b", b"c"])
    with pytest.raises(IndexError):
        tree.node(1, 1)
    with pytest.raises(ValueError, match="beyond"):
        tree.root(4)
    with pytest.raises(ValueError, match="not in a tree"):
        tree.inclusion_proof(3)
