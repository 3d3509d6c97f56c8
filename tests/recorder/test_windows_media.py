"""The windows media adapter's Python logic, against a fake `clr` namespace (the .NET side runs on a VM)."""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from recorder_vm.media import create_media_platform
from recorder_vm.media.base import AudioFrame, MediaSessionError, VideoFrame
from recorder_vm.settings import RecorderSettings
from tests.recorder import fake_clr as fake_clr_module


class IntPtr:
    def __init__(self, address: int) -> None:
        self._address = address

    def ToInt64(self) -> int:
        return self._address


class Native:
    """Bytes at a real native address, as the media library hands them out."""

    def __init__(self, data: bytes) -> None:
        self.buffer = ctypes.create_string_buffer(data, len(data))
        self.pointer = IntPtr(ctypes.addressof(self.buffer))
        self.length = len(data)


class FakeBuffer:
    def __init__(self, native: Native, *, timestamp: int, unmixed: list[Any] | None = None) -> None:
        self.Data = native.pointer
        self.Length = native.length
        self.Timestamp = timestamp
        self.IsSilence = False
        self.UnmixedAudioBuffers = unmixed
        self.disposed = False

    def Dispose(self) -> None:
        self.disposed = True


class Unmixed:
    def __init__(self, speaker: int, native: Native) -> None:
        self.ActiveSpeakerId = speaker
        self.Data = native.pointer
        self.Length = native.length
        self.OriginalSenderTimestamp = 0


class Args:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@pytest.fixture
def fake_clr(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    yield fake_clr_module.install(monkeypatch)


class Handler:
    def __init__(self, fail: bool = False) -> None:
        self.frames: list[AudioFrame] = []
        self.dominant: list[int | None] = []
        self.failures: list[str] = []
        self.videos: list[VideoFrame] = []
        self.fail = fail

    def on_audio(self, frame: AudioFrame) -> None:
        self.frames.append(frame)
        if self.fail:
            raise RuntimeError("handler broke")

    def on_dominant_speaker(self, source_id: int | None) -> None:
        self.dominant.append(source_id)

    def on_video(self, frame: VideoFrame) -> None:
        self.videos.append(frame)
        if self.fail:
            raise RuntimeError("handler broke")

    def on_media_failure(self, reason: str) -> None:
        self.failures.append(reason)

    def on_media_ended(self) -> None:
        pass


def _windows_settings() -> RecorderSettings:
    return RecorderSettings.model_validate(
        {
            "media_platform": "windows",
            "certificate_thumbprint": "ABCDEF0123456789",
            "service_fqdn": "rec.contoso.example",
            "media_public_port": 20001,
            "media_public_ip": "203.0.113.10",
            "media_port": 8445,
            "bot_app_id": "bot-app-id",
        }
    )


def test_the_sim_platform_never_imports_clr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "clr", raising=False)
    create_media_platform(RecorderSettings.model_validate({"media_platform": "sim"}))
    assert "clr" not in sys.modules


def test_windows_settings_must_name_the_instance_endpoint() -> None:
    with pytest.raises(ValueError, match="RECORDER_CERTIFICATE_THUMBPRINT"):
        RecorderSettings.model_validate({"media_platform": "windows"})


def test_the_platform_is_initialised_with_this_instances_settings(fake_clr: types.SimpleNamespace) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    assert fake_clr.references == ["Microsoft.Skype.Bots.Media"]
    instance = fake_clr.initialized.MediaPlatformInstanceSettings
    assert fake_clr.initialized.ApplicationId == "bot-app-id"
    assert (instance.CertificateThumbprint, instance.InstanceInternalPort, instance.InstancePublicPort) == (
        "ABCDEF0123456789", 8445, 20001,
    )  # fmt: skip
    assert instance.InstancePublicIPAddress == ("IPAddress", "203.0.113.10")
    assert instance.ServiceFqdn == "rec.contoso.example"
    assert platform.healthy
    asyncio.run(platform.stop())
    assert fake_clr.shutdown


def test_a_session_is_a_receive_only_pcm16k_socket_whose_configuration_goes_into_the_answer(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    session = platform.create_session("call-9", Handler(), unmixed=False)
    (socket,) = fake_clr.sockets
    assert (socket.settings.StreamDirections, socket.settings.SupportedAudioFormat) == ("Recvonly", "Pcm16K")
    assert socket.settings.CallId == "call-9" and socket.settings.ReceiveUnmixedMeetingAudio is False
    config = session.media_config()
    assert config["@odata.type"] == "#microsoft.graph.appHostedMediaConfig"
    assert json.loads(config["blob"])["callId"] == "call-9"
    session.close()
    assert socket.disposed and not socket.AudioMediaReceived.handlers


def test_received_audio_is_copied_out_of_the_native_buffer_and_the_buffer_is_always_disposed(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    handler = Handler()
    platform.create_session("call-1", handler, unmixed=False)
    (socket,) = fake_clr.sockets
    pcm = bytes(range(256)) * 2 + bytes(128)
    native = Native(pcm)
    buffer = FakeBuffer(native, timestamp=5_000_000 + 200_000)
    socket.AudioMediaReceived.fire(Args(Buffer=buffer))
    (frame,) = handler.frames
    assert frame.pcm == pcm and frame.source_id == 0 and buffer.disposed
    ctypes.memset(native.buffer, 0, len(pcm))  # the library reuses its memory after Dispose
    assert frame.pcm == pcm
    # Platform timestamps (100 ns, the library's clock) are mapped onto Unix-epoch ticks: 20 ms after 'now'.
    assert abs(frame.timestamp_ticks - (time.time_ns() // 100 + 200_000)) < 10_000_000

    broken = Handler(fail=True)
    platform.create_session("call-2", broken, unmixed=False)
    second = FakeBuffer(Native(pcm), timestamp=1)
    with pytest.raises(RuntimeError):
        fake_clr.sockets[1].AudioMediaReceived.fire(Args(Buffer=second))
    assert second.disposed


def test_unmixed_buffers_become_one_frame_per_speaker(fake_clr: types.SimpleNamespace) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    handler = Handler()
    platform.create_session("call-1", handler, unmixed=True)
    (socket,) = fake_clr.sockets
    assert socket.settings.ReceiveUnmixedMeetingAudio is True
    a, b = Native(b"\x01\x00" * 320), Native(b"\x02\x00" * 320)
    socket.AudioMediaReceived.fire(
        Args(Buffer=FakeBuffer(Native(bytes(640)), timestamp=9, unmixed=[Unmixed(7, a), Unmixed(9, b)]))
    )
    assert [(f.source_id, f.pcm[:2]) for f in handler.frames] == [(7, b"\x01\x00"), (9, b"\x02\x00")]


def test_dominant_speaker_and_stream_failure_events_reach_the_handler(fake_clr: types.SimpleNamespace) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    handler = Handler()
    platform.create_session("call-1", handler, unmixed=False)
    (socket,) = fake_clr.sockets
    socket.DominantSpeakerChanged.fire(Args(CurrentDominantSpeaker=7))
    socket.DominantSpeakerChanged.fire(Args(CurrentDominantSpeaker=0xFFFFFFFF))
    socket.MediaStreamFailure.fire(Args())
    assert handler.dominant == [7, None]
    assert handler.failures and "MediaStreamFailure" in handler.failures[0]


def test_a_loaded_media_platform_makes_the_instance_not_ready(fake_clr: types.SimpleNamespace) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    event = sys.modules["Microsoft.Skype.Bots.Media"].MediaPlatform.MediaPlatformHealthChanged  # type: ignore[attr-defined]
    event.fire(Args(CurrentHealth="HeavilyLoaded", PreviousHealth="Normal"))
    assert not platform.healthy
    event.fire(Args(CurrentHealth="Normal", PreviousHealth="HeavilyLoaded"))
    assert platform.healthy


@pytest.mark.parametrize(
    "error",
    [
        fake_clr_module.SkypeMediaException("The media platform is currently overloaded and cannot handle new calls."),
        fake_clr_module.InvalidOperationException("MediaPlatform is not initialized."),
    ],
    ids=["overloaded", "not-initialised"],
)
def test_a_dotnet_exception_from_create_media_configuration_disposes_the_socket_and_is_a_media_session_error(
    fake_clr: types.SimpleNamespace, error: Exception
) -> None:
    # The media library documents both exceptions for CreateMediaConfiguration (bot_media reference,
    # MediaPlatform.CreateMediaConfiguration); pythonnet raises them as Exception subclasses, not RuntimeError.
    assert not isinstance(error, RuntimeError)
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    fake_clr.configuration_error = error
    with pytest.raises(MediaSessionError, match=type(error).__name__) as raised:
        platform.create_session("call-1", Handler(), unmixed=False)
    assert raised.value.__cause__ is error
    (socket,) = fake_clr.sockets
    assert socket.disposed
    assert not socket.AudioMediaReceived.handlers and not socket.MediaStreamFailure.handlers
    assert not socket.DominantSpeakerChanged.handlers


def test_a_dotnet_exception_from_the_socket_constructor_is_a_media_session_error(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    fake_clr.socket_error = fake_clr_module.DotNetException("native media stack refused the socket")
    with pytest.raises(MediaSessionError, match="refused the socket"):
        platform.create_session("call-1", Handler(), unmixed=False)


def test_a_session_asked_of_an_uninitialised_platform_is_a_media_session_error(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    with pytest.raises(MediaSessionError, match="not initialised"):
        platform.create_session("call-1", Handler(), unmixed=False)


class VideoBuffer:
    """`VideoMediaBuffer`: `Data`, `Length`, `MediaSourceId`, `Timestamp`, `VideoFormat`, `Dispose()`."""

    def __init__(self, native: Native, *, source: int, timestamp: int) -> None:
        self.Data = native.pointer
        self.Length = native.length
        self.MediaSourceId = source
        self.Timestamp = timestamp
        self.VideoFormat = Args(Width=1920, Height=1080)
        self.disposed = False

    def Dispose(self) -> None:
        self.disposed = True


def test_video_sockets_and_the_vbss_socket_are_made_as_microsofts_sample_makes_them(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    session = platform.create_session("call-3", Handler(), unmixed=False, video_sockets=2, vbss=True)
    assert (session.video_sockets, session.vbss_socket) == (2, True)
    first, second, vbss = fake_clr.video_sockets
    for socket in (first, second, vbss):
        assert (socket.settings.StreamDirections, socket.settings.ReceiveColorFormat) == ("Recvonly", "H264")
    assert vbss.settings.MediaType == "Vbss"
    assert list(vbss.settings.SupportedSendVideoFormats) == ["H264_1920x1080_1_875Fps"]
    audio, videos, vbss_socket = fake_clr.configured_with
    assert audio is fake_clr.sockets[0] and list(videos) == [first, second] and vbss_socket is vbss
    session.subscribe_video(1, 20001)
    session.subscribe_vbss(30003)
    session.unsubscribe_video(1)
    assert second.subscriptions == [("HD1080p", 20001), None] and vbss.subscriptions == [("HD1080p", 30003)]
    with pytest.raises(MediaSessionError):
        session.subscribe_video(2, 1)
    session.close()
    assert all(s.disposed and not s.VideoMediaReceived.handlers for s in fake_clr.video_sockets)


def test_an_audio_only_session_asks_for_no_video_socket(fake_clr: types.SimpleNamespace) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    session = platform.create_session("call-4", Handler(), unmixed=False)
    assert fake_clr.video_sockets == [] and fake_clr.configured_with[1:] == (None, None)
    assert (session.video_sockets, session.vbss_socket) == (0, False)


def test_received_video_is_copied_out_with_its_source_and_time_and_the_buffer_is_always_disposed(
    fake_clr: types.SimpleNamespace,
) -> None:
    platform = create_media_platform(_windows_settings())
    asyncio.run(platform.start())
    handler = Handler()
    platform.create_session("call-5", handler, unmixed=False, video_sockets=1, vbss=True)
    _camera, vbss = fake_clr.video_sockets
    unit = b"\x00\x00\x00\x01\x65" + bytes(range(200))
    native = Native(unit)
    buffer = VideoBuffer(native, source=20001, timestamp=5_000_000 + 400_000)
    vbss.VideoMediaReceived.fire(Args(Buffer=buffer))
    (frame,) = handler.videos
    assert (frame.socket, frame.socket_id, frame.source_id, frame.data) == ("vbss", 0, 20001, unit)
    assert (frame.width, frame.height) == (1920, 1080) and buffer.disposed
    ctypes.memset(native.buffer, 0, len(unit))  # the library reuses its memory after Dispose
    assert frame.data == unit
    assert abs(frame.timestamp_ticks - (time.time_ns() // 100 + 400_000)) < 10_000_000

    broken = Handler(fail=True)
    platform.create_session("call-6", broken, unmixed=False, video_sockets=1)
    failing = VideoBuffer(Native(unit), source=1, timestamp=1)
    with pytest.raises(RuntimeError):
        fake_clr.video_sockets[-1].VideoMediaReceived.fire(Args(Buffer=failing))
    assert failing.disposed
