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

from recorder_vm.media.base import MIXED_SOURCE, AudioFrame, MediaHandler, MediaSessionError
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


class WindowsMediaSession:
    def __init__(self, media: Any, call_id: str, handler: MediaHandler, *, unmixed: bool) -> None:
        self._media = media
        self.call_id = call_id
        self.handler = handler
        self.unmixed = unmixed
        self._session_id = str(uuid.uuid4())
        self.frames = 0
        self._closed = False
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
            self._configuration = str(media.MediaPlatform.CreateMediaConfiguration(self.socket).ToString())
            # Buffer timestamps are the media platform's clock (100-ns units); map them onto Unix-epoch ticks.
            self._clock_offset = time.time_ns() // 100 - int(media.MediaPlatform.GetCurrentTimestamp())
        except Exception as error:
            self.close()
            raise MediaSessionError(f"creating the media configuration failed: {_describe(error)}") from error

    @property
    def session_id(self) -> str:
        return self._session_id

    # Video is not wired through the media library yet (docs/video.md): the session has no video sockets.
    @property
    def video_sockets(self) -> int:
        return 0

    @property
    def vbss_socket(self) -> bool:
        return False

    def subscribe_video(self, socket_id: int, source_id: int) -> None:
        raise MediaSessionError("this media session has no video sockets")

    def unsubscribe_video(self, socket_id: int) -> None:
        raise MediaSessionError("this media session has no video sockets")

    def subscribe_vbss(self, source_id: int) -> None:
        raise MediaSessionError("this media session has no VBSS socket")

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
        if video_sockets or vbss:
            # Video sockets through the media library are not wired yet (docs/video.md): audio only.
            log.warning("video requested but the windows media adapter captures audio only")
        return WindowsMediaSession(self._media, call_id, handler, unmixed=unmixed)

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
