"""Types shared by the media adapters and the capture pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


VideoSocketKind = Literal["video", "vbss"]
MAX_VIDEO_SOCKETS = 10  # main-video receive streams per media session (Microsoft's real-time media concepts)


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One received H.264 access unit (`VideoColorFormat.H264`: a whole decodable frame, Annex B).

    `socket` is "video" (a camera, on video socket `socket_id`) or "vbss" (the screen-sharing socket);
    `source_id` the sender's media source id; `timestamp_ticks` 100-ns ticks since the Unix epoch.
    """

    socket: VideoSocketKind
    socket_id: int
    source_id: int
    timestamp_ticks: int
    data: bytes
    width: int = 0
    height: int = 0


class MediaHandler(Protocol):
    """What a media session calls back into (the call's capture). Called on the platform's threads:
    `on_audio` must only copy and return."""

    def on_audio(self, frame: AudioFrame) -> None: ...

    def on_dominant_speaker(self, source_id: int | None) -> None: ...

    def on_video(self, frame: VideoFrame) -> None:
        """A video or screen-sharing frame of a subscribed source (only copy and return)."""
        ...

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

    @property
    def video_sockets(self) -> int:
        """Receive-only video sockets of this session (0: audio only)."""
        ...

    @property
    def vbss_socket(self) -> bool:
        """Whether the session has the screen-sharing (VBSS) socket."""
        ...

    def subscribe_video(self, socket_id: int, source_id: int) -> None:
        """Receive `source_id`'s main video on video socket `socket_id` (replacing what it received)."""
        ...

    def unsubscribe_video(self, socket_id: int) -> None: ...

    def subscribe_vbss(self, source_id: int) -> None:
        """Receive the screen share of `source_id` on the VBSS socket."""
        ...


class MediaPlatform(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def healthy(self) -> bool: ...

    def create_session(
        self, call_id: str, handler: MediaHandler, *, unmixed: bool, video_sockets: int = 0, vbss: bool = False
    ) -> MediaSession: ...
