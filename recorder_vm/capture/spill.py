"""The local disk buffer for blocks that could not be staged while storage was unreachable.

One directory per blob (its name made file-safe); one file per block, named by the block id's sequence and
holding the block's bytes; the block id is recomputed from the content, so a file is self-checking. A
process-wide byte budget guards the disk: `reserve` refuses a block that would overflow it, which the
capture turns into a `failed` recording status before anything is lost silently. Survives restarts: the
recorder stages what it finds here at start-up.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from verbatim.evidence.blocks import BlockId


class SpillOverflow(Exception):
    """The disk buffer would exceed its budget."""


@dataclass(frozen=True)
class SpilledBlock:
    blob_name: str
    sequence: int
    path: Path

    def read(self) -> tuple[str, bytes]:
        data = self.path.read_bytes()
        return BlockId.for_content(self.sequence, data).encode(), data


def _dir_name(blob_name: str) -> str:
    return base64.urlsafe_b64encode(blob_name.encode()).decode().rstrip("=")


def _blob_name(dir_name: str) -> str:
    padded = dir_name + "=" * (-len(dir_name) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


class SpillBuffer:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self._used = sum(path.stat().st_size for path in root.glob("*/*.blk"))

    @property
    def used_bytes(self) -> int:
        return self._used

    def put(self, blob_name: str, sequence: int, data: bytes) -> SpilledBlock:
        """Keep a block on disk; `SpillOverflow` when the budget would be exceeded."""
        with self._lock:
            if self._used + len(data) > self.max_bytes:
                raise SpillOverflow(f"local buffer full: {self._used + len(data)} bytes would exceed {self.max_bytes}")
            self._used += len(data)
        directory = self.root / _dir_name(blob_name)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{sequence:08d}.blk"
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        return SpilledBlock(blob_name, sequence, path)

    def remove(self, block: SpilledBlock) -> None:
        try:
            size = block.path.stat().st_size
            block.path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self._used -= size
        with contextlib.suppress(OSError):  # other blocks are still there
            block.path.parent.rmdir()

    def blocks(self, blob_name: str) -> list[SpilledBlock]:
        directory = self.root / _dir_name(blob_name)
        return sorted(
            (SpilledBlock(blob_name, int(path.stem), path) for path in directory.glob("*.blk")),
            key=lambda block: block.sequence,
        )

    def all_blocks(self) -> Iterator[SpilledBlock]:
        """Every spilled block on disk (recovery after a restart), grouped by blob, in order."""
        for directory in sorted(self.root.iterdir()):
            if directory.is_dir():
                yield from self.blocks(_blob_name(directory.name))
