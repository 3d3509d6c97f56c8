"""A segment of the package staged as blocks of the package's block blob. Bytes are gathered into blocks of
`BLOCK_BYTES`, each staged as soon as it is full; a member at least a block long is streamed instead, as a block
of its own (the bytes gathered before it at its head), split into blocks of at most `MAX_BLOCK_BYTES`. So a
segment of any size passes through a bounded buffer, and every block but a segment's last is at least
`BLOCK_BYTES` long: a package of large media (long calls, video) holds up to its blocks' sizes, not 50,000 x 8 MiB.
Nothing is visible until the assembly commits the block list; staging a block again (a retried activity) replaces
it, so a retry that writes the same bytes leaves the same package.

Azure: up to 50,000 committed blocks of at most 4,000 MiB per blob, and uncommitted blocks are discarded after a
week (Put Block / Put Block List reference; "Scalability and performance targets for Blob storage"); block ids of
one blob must all have the same length.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from verbatim.platform.blobs import BlobStore

BLOCK_BYTES = 8 * 1024 * 1024
MAX_BLOCK_BYTES = 4000 * 1024 * 1024  # Azure's largest block (service version 2019-12-12 and later)


def block_id(segment: str, number: int) -> str:
    """Same length for every block of a package: a 8-character segment tag and a 6-digit number."""
    if len(segment) != 8:
        raise ValueError("a segment tag is 8 characters")
    return f"{segment}{number:06d}"


class BlockSink:
    def __init__(
        self,
        store: BlobStore,
        blob: str,
        segment: str,
        block_bytes: int | None = None,
        max_block_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._blob = blob
        self._segment = segment
        self.block_bytes = block_bytes or BLOCK_BYTES
        self.max_block_bytes = max_block_bytes or MAX_BLOCK_BYTES
        self._buffer = bytearray()
        self.block_ids: list[str] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self.block_bytes:
            self._stage(bytes(self._buffer[: self.block_bytes]))
            del self._buffer[: self.block_bytes]

    def streams(self, length: int) -> bool:
        """Whether `stream` takes a member of `length` bytes as blocks of its own."""
        return length >= self.block_bytes

    def stream(self, chunks: Iterable[bytes], length: int) -> None:
        """Exactly `length` bytes (at least a block's) from `chunks`, streamed into blocks of their own, the first
        one headed by the bytes gathered so far; a tail shorter than a block is gathered with what follows.
        ValueError when the chunks come to another length."""
        source = _Chunks(chunks)
        head = bytes(self._buffer)
        self._buffer.clear()
        left = length
        while left >= self.block_bytes:
            size = min(left, self.max_block_bytes - len(head))
            part = itertools.chain([head] if head else [], source.take(size))
            name = block_id(self._segment, len(self.block_ids))
            self._store.stage_block_stream(self._blob, name, part, len(head) + size)
            self.block_ids.append(name)
            left -= size
            head = b""
        self._buffer += head
        for chunk in source.take(left):
            self.write(chunk)
        if source.more():
            raise ValueError(f"the member has more than its {length} bytes")

    def _stage(self, data: bytes) -> None:
        name = block_id(self._segment, len(self.block_ids))
        self._store.stage_block(self._blob, name, data)
        self.block_ids.append(name)

    def close(self) -> list[str]:
        if self._buffer or not self.block_ids:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        return self.block_ids


class _Chunks:
    """Chunks handed out in runs of a given number of bytes (a chunk that crosses the end of a run is split)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._source: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def take(self, size: int) -> Iterator[bytes]:
        while size > 0:
            chunk = self._pending or next(self._source, b"")
            self._pending = b""
            if not chunk:
                return
            if len(chunk) > size:
                chunk, self._pending = chunk[:size], chunk[size:]
            size -= len(chunk)
            yield chunk

    def more(self) -> bool:
        if not self._pending:
            self._pending = next(self._source, b"")
        return bool(self._pending)
