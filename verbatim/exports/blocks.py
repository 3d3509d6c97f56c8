"""A segment of the package staged as blocks of the package's block blob: bytes are gathered into blocks of
`block_bytes` and each is staged as soon as it is full, so a segment of any size passes through a bounded
buffer. Nothing is visible until the assembly commits the block list; staging a block again (a retried
activity) replaces it, so a retry that writes the same bytes leaves the same package.

Azure: up to 50,000 committed blocks of at most 4,000 MiB per blob, and uncommitted blocks are discarded after a
week (Put Block / Put Block List reference); block ids of one blob must all have the same length.
"""

from __future__ import annotations

from verbatim.platform.blobs import BlobStore

BLOCK_BYTES = 8 * 1024 * 1024


def block_id(segment: str, number: int) -> str:
    """Same length for every block of a package: a 8-character segment tag and a 6-digit number."""
    if len(segment) != 8:
        raise ValueError("a segment tag is 8 characters")
    return f"{segment}{number:06d}"


class BlockSink:
    def __init__(self, store: BlobStore, blob: str, segment: str, block_bytes: int = BLOCK_BYTES) -> None:
        self._store = store
        self._blob = blob
        self._segment = segment
        self.block_bytes = block_bytes
        self._buffer = bytearray()
        self.block_ids: list[str] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self.block_bytes:
            self._stage(bytes(self._buffer[: self.block_bytes]))
            del self._buffer[: self.block_bytes]

    def _stage(self, data: bytes) -> None:
        name = block_id(self._segment, len(self.block_ids))
        self._store.stage_block(self._blob, name, data)
        self.block_ids.append(name)

    def close(self) -> list[str]:
        if self._buffer or not self.block_ids:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        return self.block_ids
