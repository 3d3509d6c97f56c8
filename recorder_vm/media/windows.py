"""Microsoft's real-time media library (`Microsoft.Skype.Bots.Media`, .NET, Windows only) through pythonnet.

Kept deliberately small: initialise the platform with this instance's settings, create one receive-only
`AudioSocket` (Pcm16K) per call, hand `MediaPlatform.CreateMediaConfiguration` to the answer, and turn the
socket's events into `MediaHandler` calls. `AudioMediaReceived` copies the native buffer into Python bytes
and disposes it at once (the library requires every buffer to be disposed, and events are serialised, so
the handler must return quickly). `clr` is imported only when this adapter is selected; the Python logic is
unit-tested against a fake `clr` namespace, the .NET side is verified on a Windows VM.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import time
import uuid
from typing import Any

from recorder_vm.media.base import (
    MAX_VIDEO_SOCKETS,
    MIXED_SOURCE,
    AudioFrame,
    MediaHandler,
    MediaSessionError,
    VideoFrame,
    VideoSocketKind,
)
from recorder_vm.settings import RecorderSettings

log = logging.getLogger(__name__)

MEDIA_ASSEMBLY = "Microsoft.Skype.Bots.Media"
NO_DOMINANT_SPEAKER = 0xFFFFFFFF
UNIX_EPOCH_TICKS = 621_355_968_000_000_000  # .NET DateTime ticks at 1970-01-01


def _load_media_namespace(settings: RecorderSettings) -> Any:
    """Import pythonnet's `clr`, load the media assembly and return its namespace module."""
    clr = importlib.import_module("clr")
    if settings.media_library_dir:
        import sys

        sys.path.append(settings.media_library_dir)
    clr.AddReference(MEDIA_ASSEMBLY)
    return importlib.import_module(MEDIA_ASSEMBLY)


def _copy_native(address: Any, length: int) -> bytes:
    """Copy `length` bytes from a native buffer (`IntPtr`) into Python."""
    return ctypes.string_at(int(address.ToInt64()), length)


def _video_socket(media: Any, call_id: str, *, vbss: bool) -> Any:
    """A receive-only H.264 video socket, or the VBSS socket, as Microsoft's PolicyRecordingBot makes them
    (`VideoSocketSettings`: `Recvonly`, `VideoColorFormat.H264`; the VBSS socket with `MediaType.Vbss` and
    `VideoFormat.H264_1920x1080_1_875Fps`, "fps 1.875 is required for h264 in vbss scenario")."""
    settings = media.VideoSocketSettings()
    settings.StreamDirections = media.StreamDirection.Recvonly
    settings.ReceiveColorFormat = media.VideoColorFormat.H264
    settings.CallId = call_id
    if vbss:
        generic = importlib.import_module("System.Collections.Generic")
        formats = generic.List[media.VideoFormat]()
        formats.Add(media.VideoFormat.H264_1920x1080_1_875Fps)
        settings.MediaType = media.MediaType.Vbss
        settings.SupportedSendVideoFormats = formats
    return media.VideoSocket(settings)


class WindowsMediaSession:
    def __init__(
        self,
        media: Any,
        call_id: str,
        handler: MediaHandler,
        *,
        unmixed: bool,
        video_sockets: int = 0,
        vbss: bool = False,
    ) -> None:
        self._media = media
        self.call_id = call_id
        self.handler = handler
        self.unmixed = unmixed
        self._session_id = str(uuid.uuid4())
        self.frames = 0
        self.video_units = 0
        self._closed = False
        self._clock_offset = 0
        self._videos: list[Any] = []
        self._vbss: Any = None
        self._video_handlers: list[tuple[Any, Any]] = []
        settings = media.AudioSocketSettings()
        settings.StreamDirections = media.StreamDirection.Recvonly
        settings.SupportedAudioFormat = media.AudioFormat.Pcm16K
        settings.CallId = call_id
        settings.ReceiveUnmixedMeetingAudio = unmixed
        # pythonnet raises .NET exceptions as subclasses of Python's Exception (not RuntimeError), so any
        # of them is caught here; the library documents InvalidOperationException (platform not initialised)
        # and SkypeMediaException (overloaded) for CreateMediaConfiguration.
        try:
            self.socket = media.AudioSocket(settings)
        except Exception as error:
            raise MediaSessionError(f"creating the audio socket failed: {_describe(error)}") from error
        self.socket.AudioMediaReceived += self._audio_received
        self.socket.MediaStreamFailure += self._stream_failure
        self.socket.DominantSpeakerChanged += self._dominant_speaker_changed
        try:
            for index in range(max(0, min(video_sockets, MAX_VIDEO_SOCKETS))):
                self._videos.append(self._attach(_video_socket(media, call_id, vbss=False), "video", index))
            if vbss:
                self._vbss = self._attach(_video_socket(media, call_id, vbss=True), "vbss", 0)
        except Exception as error:
            self.close()
            raise MediaSessionError(f"creating the video sockets failed: {_describe(error)}") from error
        try:
            if self._videos or self._vbss is not None:
                generic = importlib.import_module("System.Collections.Generic")
                videos = generic.List[media.IVideoSocket]()
                for socket in self._videos:
                    videos.Add(socket)
                configuration = media.MediaPlatform.CreateMediaConfiguration(self.socket, videos, self._vbss)
            else:
                configuration = media.MediaPlatform.CreateMediaConfiguration(self.socket)
            self._configuration = str(configuration.ToString())
            # Buffer timestamps are the media platform's clock (100-ns units); map them onto Unix-epoch ticks.
            self._clock_offset = time.time_ns() // 100 - int(media.MediaPlatform.GetCurrentTimestamp())
        except Exception as error:
            self.close()
            raise MediaSessionError(f"creating the media configuration failed: {_describe(error)}") from error

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def video_sockets(self) -> int:
        return len(self._videos)

    @property
    def vbss_socket(self) -> bool:
        return self._vbss is not None

    def subscribe_video(self, socket_id: int, source_id: int) -> None:
        """`IVideoSocket.Subscribe(VideoResolution, msi)`, as the sample subscribes (HD1080p)."""
        if not 0 <= socket_id < len(self._videos):
            raise MediaSessionError(f"video socket {socket_id} does not exist")
        self._videos[socket_id].Subscribe(self._media.VideoResolution.HD1080p, source_id)

    def unsubscribe_video(self, socket_id: int) -> None:
        if 0 <= socket_id < len(self._videos):
            self._videos[socket_id].Unsubscribe()

    def subscribe_vbss(self, source_id: int) -> None:
        if self._vbss is None:
            raise MediaSessionError("this media session has no VBSS socket")
        self._vbss.Subscribe(self._media.VideoResolution.HD1080p, source_id)

    def _attach(self, socket: Any, kind: VideoSocketKind, index: int) -> Any:
        def received(_sender: Any, args: Any) -> None:
            self._video_received(kind, index, args)

        socket.VideoMediaReceived += received
        self._video_handlers.append((socket, received))
        return socket

    def media_config(self) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": self._configuration}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.socket.AudioMediaReceived -= self._audio_received
        self.socket.MediaStreamFailure -= self._stream_failure
        self.socket.DominantSpeakerChanged -= self._dominant_speaker_changed
        self.socket.Dispose()
        for socket, received in self._video_handlers:
            socket.VideoMediaReceived -= received
            socket.Dispose()
        self._video_handlers.clear()

    # --- .NET event handlers (called on the media library's threads) ---

    def _audio_received(self, _sender: Any, args: Any) -> None:
        buffer = args.Buffer
        try:
            ticks = int(buffer.Timestamp) + self._clock_offset
            if self.unmixed:
                for unmixed in buffer.UnmixedAudioBuffers or ():
                    pcm = _copy_native(unmixed.Data, int(unmixed.Length))
                    self.handler.on_audio(AudioFrame(int(unmixed.ActiveSpeakerId), ticks, pcm))
            else:
                pcm = _copy_native(buffer.Data, int(buffer.Length))
                self.handler.on_audio(AudioFrame(MIXED_SOURCE, ticks, pcm, bool(buffer.IsSilence)))
            self.frames += 1
        finally:
            buffer.Dispose()

    def _video_received(self, kind: VideoSocketKind, index: int, args: Any) -> None:
        """`VideoMediaReceived`: one H.264 access unit (`VideoMediaBuffer`), copied out and the buffer disposed."""
        buffer = args.Buffer
        try:
            data = _copy_native(buffer.Data, int(buffer.Length))
            video_format = buffer.VideoFormat
            self.handler.on_video(
                VideoFrame(
                    kind,
                    index,
                    int(buffer.MediaSourceId),
                    int(buffer.Timestamp) + self._clock_offset,
                    data,
                    int(getattr(video_format, "Width", 0) or 0),
                    int(getattr(video_format, "Height", 0) or 0),
                )
            )
            self.video_units += 1
        finally:
            buffer.Dispose()

    def _stream_failure(self, _sender: Any, _args: Any) -> None:
        self.handler.on_media_failure("MediaStreamFailure raised by the audio socket")

    def _dominant_speaker_changed(self, _sender: Any, args: Any) -> None:
        current = int(args.CurrentDominantSpeaker)
        self.handler.on_dominant_speaker(None if current == NO_DOMINANT_SPEAKER else current)


class WindowsMediaPlatform:
    def __init__(self, settings: RecorderSettings) -> None:
        self._settings = settings
        self._media: Any = None
        self._healthy = False

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        media = _load_media_namespace(self._settings)
        system_net = importlib.import_module("System.Net")
        instance = media.MediaPlatformInstanceSettings()
        instance.CertificateThumbprint = self._settings.certificate_thumbprint
        instance.InstanceInternalPort = self._settings.media_port
        instance.InstancePublicPort = self._settings.media_public_port
        instance.InstancePublicIPAddress = system_net.IPAddress.Parse(self._settings.media_public_ip)
        instance.ServiceFqdn = self._settings.service_fqdn
        platform_settings = media.MediaPlatformSettings()
        platform_settings.ApplicationId = self._settings.bot_app_id
        platform_settings.MediaPlatformInstanceSettings = instance
        media.MediaPlatform.MediaPlatformHealthChanged += self._health_changed
        media.MediaPlatform.Initialize(platform_settings)
        self._media = media
        self._healthy = True
        log.info("windows media platform initialised", extra={"media_port": self._settings.media_port})

    async def stop(self) -> None:
        if self._media is not None:
            self._media.MediaPlatform.Shutdown()
            self._healthy = False

    def create_session(
        self, call_id: str, handler: MediaHandler, *, unmixed: bool, video_sockets: int = 0, vbss: bool = False
    ) -> WindowsMediaSession:
        if self._media is None:
            raise MediaSessionError("the media platform is not initialised")
        return WindowsMediaSession(
            self._media, call_id, handler, unmixed=unmixed, video_sockets=video_sockets, vbss=vbss
        )

    def _health_changed(self, _sender: Any, args: Any) -> None:
        # Normal, HeavilyLoaded or Overloaded: only Normal takes new calls (readiness), the rest keep theirs.
        status = str(getattr(args, "CurrentHealth", "")) or "unknown"
        self._healthy = status == "Normal"
        log.warning("media platform health changed", extra={"health": status})


def _describe(error: BaseException) -> str:
    """`TypeName: message` of a (.NET) exception, for the failure event and the log. pythonnet's `str()` of a
    .NET exception is its `ToString()`, stack trace included; its `Message` is the message alone."""
    message = getattr(error, "Message", None)
    if not isinstance(message, str) or not message:
        message = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {message}"


def describe_blob(blob: str) -> dict[str, Any]:
    """The media configuration blob as JSON, for diagnostics (it holds no secret)."""
    try:
        parsed = json.loads(blob)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
