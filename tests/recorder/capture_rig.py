"""Captures built the way the recorder builds them, writing to a container of a real Azurite, for tests of the
capture pipeline itself (many calls in one process, storage taken away, a process killed): the rig is the one
place that knows how a `CallCapture` is put together."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from recorder_vm.capture.engine import CaptureEngine
from recorder_vm.capture.pipeline import CallCapture
from recorder_vm.capture.spill import SpillBuffer
from recorder_vm.capture.storage import AzureAsyncRecordingStore, AzureRecordingStore, StorageHealth
from recorder_vm.media.base import FRAME_SAMPLES, FRAME_TICKS, AudioFrame
from verbatim.evidence.capture import capture_prefix

SAMPLE_RATE = 16000


@dataclass
class CaptureRig:
    connection_string: str
    container_name: str
    spill_dir: Path
    block_seconds: float = 1.5
    queue_frames: int = 3000
    spill_max_bytes: int = 1024**3
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        service = BlobServiceClient.from_connection_string(self.connection_string)
        self.store = AzureRecordingStore(service, self.container_name, timeout_seconds=2.0)
        self.store.ensure_container()
        self.spill = SpillBuffer(self.spill_dir, self.spill_max_bytes)
        self.health = StorageHealth()
        self.engine = CaptureEngine(
            store_factory=lambda: AzureAsyncRecordingStore(
                AsyncBlobServiceClient.from_connection_string(self.connection_string),
                self.container_name,
                timeout_seconds=2.0,
            ),
            spill=self.spill,
            health=self.health,
            block_seconds=self.block_seconds,
        )
        self.engine.start()

    def container(self) -> ContainerClient:
        return BlobServiceClient.from_connection_string(self.connection_string).get_container_client(
            self.container_name
        )

    def capture(self, *, unmixed: bool = False) -> CallCapture:
        recording_id = str(uuid.uuid4())

        def failed(stage: str, reason: str) -> None:
            self.failures.append((recording_id, stage, reason))

        return CallCapture(
            recording_id=recording_id,
            call_id=str(uuid.uuid4()),
            call_chain_id=None,
            recorder_instance="capture-rig",
            prefix=capture_prefix(recording_id),
            engine=self.engine,
            queue_frames=self.queue_frames,
            unmixed=unmixed,
            on_failure=failed,
        )

    def close(self) -> None:
        self.engine.stop()


def frames_of(audio: np.ndarray, start_ticks: int, *, source_id: int = 0) -> list[AudioFrame]:
    """`audio` as the platform delivers it: 20 ms frames stamped back to back from `start_ticks`."""
    return [
        AudioFrame(source_id, start_ticks + n * FRAME_TICKS, audio[i : i + FRAME_SAMPLES].tobytes())
        for n, i in enumerate(range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES))
    ]


class Feeder:
    """Platform threads delivering frames to many calls, interleaved: `threads` threads, each owning a share of
    the calls, send each of its calls `burst` frames in turn, then pause `pause` seconds (0: as fast as possible).
    `sent[i]` counts the frames delivered to call i so far."""

    def __init__(
        self,
        captures: Sequence[CallCapture],
        frames: Sequence[Sequence[AudioFrame]],
        *,
        threads: int = 2,
        burst: int = 5,
        pause: float = 0.005,
    ) -> None:
        self.captures = captures
        self.frames = frames
        self.burst = burst
        self.pause = pause
        self.threads = threads
        self.sent = [0] * len(captures)
        self._limit = [0] * len(captures)

    def send(self, up_to: Sequence[int] | int) -> None:
        """Deliver frames to each call until it has had `up_to` frames (all calls' limits, or one for all)."""
        limits = [up_to] * len(self.captures) if isinstance(up_to, int) else list(up_to)
        self._limit = [min(limit, len(f)) for limit, f in zip(limits, self.frames, strict=True)]
        threads = [
            threading.Thread(target=self._run, args=(range(k, len(self.captures), self.threads),), daemon=True)
            for k in range(self.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _run(self, calls: range) -> None:
        while True:
            busy = False
            for call in calls:
                capture, frames = self.captures[call], self.frames[call]
                end = min(self.sent[call] + self.burst, self._limit[call])
                for n in range(self.sent[call], end):
                    capture.on_audio(frames[n])
                busy = busy or end > self.sent[call]
                self.sent[call] = end
            if not busy:
                return
            if self.pause:
                time.sleep(self.pause)


def now_ticks() -> int:
    return time.time_ns() // 100
