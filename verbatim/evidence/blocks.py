"""Self-describing block ids for the evidence block blobs.

A block id carries its position and the SHA-256 of its bytes, so anyone holding only the blob's uncommitted
block list (Azure does not let you read an uncommitted block) knows the order and can verify each block once
committed: 1 version byte, 3 bytes of big-endian sequence number, 32 bytes of SHA-256 = 36 bytes, 48 base64
characters (every id of a blob must have the same length).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

BLOCK_ID_VERSION = 1
MAX_SEQUENCE = 2**24 - 1  # 16.7 M blocks: over a year of 2-second blocks


@dataclass(frozen=True)
class BlockId:
    sequence: int
    sha256: bytes

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()

    def encode(self) -> str:
        if not 0 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"block sequence {self.sequence} out of range")
        if len(self.sha256) != 32:
            raise ValueError("a block id needs a 32-byte SHA-256 digest")
        raw = bytes([BLOCK_ID_VERSION]) + self.sequence.to_bytes(3, "big") + self.sha256
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def for_content(cls, sequence: int, content: bytes) -> BlockId:
        return cls(sequence, hashlib.sha256(content).digest())

    def matches(self, content: bytes) -> bool:
        return hashlib.sha256(content).digest() == self.sha256


def decode_block_id(block_id: str) -> BlockId | None:
    """The sequence and hash carried by a block id, or None when it is not one of ours."""
    try:
        raw = base64.b64decode(block_id, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 36 or raw[0] != BLOCK_ID_VERSION:
        return None
    return BlockId(int.from_bytes(raw[1:4], "big"), raw[4:])
