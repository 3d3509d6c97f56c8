"""The right edge of a Merkle tree (no I/O): the roots of the perfect subtrees a tree of `size` leaves is made
of, one per 1-bit of `size`, largest first. Enough to append leaves and compute the root without reading the
tree: the sequencing state carries it, so the root of every sequenced size is known at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from verbatim.ledger.merkle import EMPTY_ROOT, HASH_SIZE, node_hash


@dataclass(frozen=True)
class RightEdge:
    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of {self.size} leaves has {self.size.bit_count()} edge hashes, not {len(self.hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError("edge hashes are 32 bytes")

    def extend(self, leaf_hashes: Iterable[bytes]) -> RightEdge:
        """The edge after appending these leaves."""
        size, hashes = self.size, list(self.hashes)
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise ValueError("leaf hashes are 32 bytes")
            hashes.append(leaf)
            # A perfect subtree completes for every trailing 1-bit of the old size: merge it with its left twin.
            carry = size
            while carry & 1:
                right = hashes.pop()
                hashes[-1] = node_hash(hashes[-1], right)
                carry >>= 1
            size += 1
        return RightEdge(size, tuple(hashes))

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result
