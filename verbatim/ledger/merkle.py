"""RFC 9162 Merkle tree hashing and proofs for the ledger's log (no I/O; nothing but `hashlib`).

A log of n entries D[0:n] has the Merkle Tree Hash of RFC 9162 section 2.1.1 (the same tree as RFC 6962):
leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), and the empty tree hashes to
SHA-256(""). A *node* `(level, index)` is the root of the perfect subtree over the 2**level leaves starting
at index * 2**level; a `NodeSource` returns those hashes (from memory here, from tiles in blob storage in
the service), and every root, proof and subtree hash below is computed from perfect nodes alone.

Proofs are lists of 32-byte hashes in the order of RFC 9162 sections 2.1.3 and 2.1.4 (from the leaf's
sibling up). Verification raises `ProofError` with a stable `code`; `standalone_verifier.py` implements the
same checks independently (RFC 9162's iterative algorithms) and the tests hold the two to the same answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeSource = Callable[[int, int], bytes]
"""`(level, index)` -> the hash of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""


class ProofError(ValueError):
    """A proof that does not prove what it claims. `code` is stable, for machines; the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n >= 2)."""
    if n < 2:
        raise ValueError(f"no power of two below {n} splits a tree")
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of any list of leaf hashes (the root of a tree, or of any range of one)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # Pairs level by level, an unpaired last node promoted unchanged to the level above: the same tree as
    # the recursive definition (largest power of two on the left), without recursion.
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def is_subtree(start: int, end: int) -> bool:
    """Is [start, end) a subtree in RFC 9162's structure of every tree that contains it (start aligned to the
    smallest power of two >= its width)? Roots of such ranges are what proofs are made of."""
    if not 0 <= start < end:
        return False
    width = end - start
    return start % (1 << (width - 1).bit_length()) == 0


def subtree_hash(start: int, end: int, node: NodeSource) -> bytes:
    """MTH(D[start:end]) for a subtree range (`is_subtree`), from perfect nodes: the width's binary digits,
    largest first, are aligned perfect nodes, folded together from the right."""
    if not is_subtree(start, end):
        raise ValueError(f"[{start}, {end}) is not a subtree range")
    parts: list[bytes] = []
    position, width = start, end - start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            parts.append(node(level, position >> level))
            position += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def tree_root(size: int, node: NodeSource) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    top_down: list[bytes] = []
    m, start, end = index, 0, size
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if m < k:
            top_down.append(subtree_hash(start + k, end, node))
            end = start + k
        else:
            top_down.append(subtree_hash(start, start + k, node))
            m, start = m - k, start + k
    return top_down[::-1]


def consistency_proof(old_size: int, new_size: int, node: NodeSource) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1 (empty when the sizes are equal)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    top_down: list[bytes] = []
    m, start, end, whole_old_tree = old_size, 0, new_size, True
    while m != end - start:
        k = largest_power_of_two_below(end - start)
        if m <= k:
            top_down.append(subtree_hash(start + k, end, node))
            end = start + k
        else:
            top_down.append(subtree_hash(start, start + k, node))
            m, start, whole_old_tree = m - k, start + k, False
    if not whole_old_tree:
        top_down.append(subtree_hash(start, end, node))
    return top_down[::-1]


# --- verification ---

_RIGHT, _LEFT = True, False  # where the proof's hash sits at one level, seen from the path being proven


def _check_hash(value: bytes, what: str, code: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(code, f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}", "proof.malformed_hash")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf` at `index` in a tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError("proof.index_out_of_range", f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash", "proof.malformed_leaf_hash")
    _check_proof_hashes(proof)
    sides: list[bool] = []
    m, n = index, size
    while n > 1:
        k = largest_power_of_two_below(n)
        if m < k:
            sides.append(_RIGHT)
            n = k
        else:
            sides.append(_LEFT)
            m, n = m - k, n - k
    if len(proof) != len(sides):
        raise ProofError(
            "proof.wrong_length",
            f"an inclusion proof for leaf {index} in a tree of size {size} has {len(sides)} hashes, not {len(proof)}",
        )
    result = leaf
    for sibling, side in zip(proof, reversed(sides), strict=True):
        result = node_hash(result, sibling) if side is _RIGHT else node_hash(sibling, result)
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows `leaf` at `index` in the tree of `size` leaves with `root`."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(
            "proof.root_mismatch",
            f"the inclusion proof for leaf {index} leads to a root other than the tree of size {size} has",
        )


def roots_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """(old root, new root) that `proof` implies, given the old root; the caller compares both."""
    if not 0 < old_size <= new_size:
        raise ProofError(
            "proof.sizes_invalid",
            f"no consistency proof exists from size {old_size} to size {new_size} (sizes must satisfy 0 < old <= new)",
        )
    _check_proof_hashes(proof)
    if old_size == new_size:
        if proof:
            raise ProofError("proof.wrong_length", "trees of equal size need an empty consistency proof")
        return old_root, old_root
    steps: list[bool] = []
    m, n, whole_old_tree = old_size, new_size, True
    while m != n:
        k = largest_power_of_two_below(n)
        if m <= k:
            steps.append(_RIGHT)
            n = k
        else:
            steps.append(_LEFT)
            m, n, whole_old_tree = m - k, n - k, False
    expected = len(steps) + (0 if whole_old_tree else 1)
    if len(proof) != expected:
        raise ProofError(
            "proof.wrong_length",
            f"a consistency proof from size {old_size} to {new_size} has {expected} hashes, not {len(proof)}",
        )
    # The lowest node both trees share: the whole old tree (known) or the old tree's last subtree (proof[0]).
    seed, rest = (old_root, proof) if whole_old_tree else (proof[0], proof[1:])
    old, new = seed, seed
    for sibling, side in zip(rest, reversed(steps), strict=True):
        if side is _RIGHT:
            new = node_hash(new, sibling)
        else:
            old, new = node_hash(sibling, old), node_hash(sibling, new)
    return old, new


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    old, new = roots_from_consistency_proof(old_size, new_size, old_root, proof)
    if old != old_root:
        raise ProofError(
            "proof.old_root_mismatch",
            f"the consistency proof does not lead to the root of the tree of size {old_size}",
        )
    if new != new_root:
        raise ProofError(
            "proof.root_mismatch",
            f"the consistency proof from size {old_size} leads to a root other than the tree of size {new_size} has",
        )


class MemoryTree:
    """An append-only tree held in memory as its perfect nodes, level by level: a `NodeSource` for tests,
    benchmarks and small logs. Appending costs one leaf hash plus one node hash per completed level."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for value in leaf_hashes:
            self.append_leaf_hash(value)

    @classmethod
    def of_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        return cls(leaf_hash(entry) for entry in entries)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append_leaf_hash(self, value: bytes) -> int:
        """Add a leaf; returns its index."""
        if len(value) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(value)}")
        self._levels[0].append(value)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            if level + 1 == len(self._levels):
                self._levels.append([])
            below = self._levels[level]
            self._levels[level + 1].append(node_hash(below[-2], below[-1]))
            level += 1
        return self.size - 1

    def append(self, entry: bytes) -> int:
        return self.append_leaf_hash(leaf_hash(entry))

    def node(self, level: int, index: int) -> bytes:
        """A perfect node; IndexError if the tree does not have it (yet)."""
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise IndexError(f"node ({level}, {index}) is not in a tree of size {self.size}")
        return self._levels[level][index]

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is beyond the tree's {self.size} leaves")
        return size

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self._size(size), self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size(size), self.node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self._size(new_size), self.node)


__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "NodeSource",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "is_subtree",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "roots_from_consistency_proof",
    "subtree_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]
