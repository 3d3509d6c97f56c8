"""Mixing of unmixed speaker frames into the mixed record, for calls answered with unmixed audio.

The media library delivers either mixed or unmixed audio, not both; the mixed track stays the record, so
when only speakers' frames arrive their 20 ms slots are summed (with clipping) into one mixed frame.
"""

from __future__ import annotations

import numpy as np

from recorder_vm.media.base import FRAME_TICKS, MIXED_SOURCE, AudioFrame


class SlotMixer:
    def __init__(self) -> None:
        self._ticks: int | None = None
        self._sum: np.ndarray | None = None

    def add(self, frame: AudioFrame) -> AudioFrame | None:
        """Add a speaker's frame; returns the previous slot's mix when this frame starts a new slot."""
        samples = np.frombuffer(frame.pcm, dtype="<i2").astype(np.int32)
        if (
            self._ticks is not None
            and self._sum is not None
            and abs(frame.timestamp_ticks - self._ticks) < FRAME_TICKS // 2
        ):
            if len(samples) == len(self._sum):
                self._sum += samples
            return None
        done = self.flush()
        self._ticks = frame.timestamp_ticks
        self._sum = samples
        return done

    def flush(self) -> AudioFrame | None:
        if self._ticks is None or self._sum is None:
            return None
        pcm = np.clip(self._sum, -32768, 32767).astype("<i2").tobytes()
        frame = AudioFrame(MIXED_SOURCE, self._ticks, pcm)
        self._ticks = None
        self._sum = None
        return frame
