"""Types shared by the media adapters and the capture pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

FRAME_SAMPLES = 320  # 20 ms at 16 kHz
FRAME_BYTES = 640  # 16-bit mono
FRAME_TICKS = 200_000  # 20 ms in 100-ns ticks
MIXED_SOURCE = 0


class MediaSessionError(Exception):
    """The media platform could not create a call's media session (overloaded, not initialised, or any
    error the media library raised); the call cannot be answered with media."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One received audio buffer: 16 kHz 16-bit mono PCM, normally 20 ms.

    `source_id` is 0 for the mixed stream, otherwise the speaker's media source id (unmixed audio);
    `timestamp_ticks` is the frame's start in 100-ns ticks since the Unix epoch.
    """

    source_id: int
    timestamp_ticks: int
    pcm: bytes
    is_silence: bool = False


class MediaHandler(Protocol):
    """What a media session calls back into (the call's capture). Called on the platform's threads:
    `on_audio` must only copy and return."""

    def on_audio(self, frame: AudioFrame) -> None: ...

    def on_dominant_speaker(self, source_id: int | None) -> None: ...

    def on_media_failure(self, reason: str) -> None: ...

    def on_media_ended(self) -> None: ...


class MediaSession(Protocol):
    """The media side of one call, created before answering."""

    @property
    def session_id(self) -> str: ...

    def media_config(self) -> dict[str, Any]:
        """The answer's `mediaConfig` (`#microsoft.graph.appHostedMediaConfig` with the platform's blob)."""
        ...

    def close(self) -> None: ...


class MediaPlatform(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def healthy(self) -> bool: ...

    def create_session(self, call_id: str, handler: MediaHandler, *, unmixed: bool) -> MediaSession: ...
