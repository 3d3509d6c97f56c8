"""A fake of pythonnet's `clr` and the slice of `Microsoft.Skype.Bots.Media` the windows adapter uses.

Shaped after Microsoft's reference for the media library (microsoft-graph-comms-samples
`docs/bot_media/Microsoft.Skype.Bots.Media.*.html`): `MediaPlatform.CreateMediaConfiguration(IAudioSocket)`
returns a `JObject` and throws `InvalidOperationException` ("MediaPlatform is not initialized") or
`SkypeMediaException` ("The media platform is currently overloaded and cannot handle new calls");
`SkypeMediaException` derives from `System.Exception`.

Exceptions behave as pythonnet exposes .NET exceptions: every `System.Exception` subclass is a Python class
whose Python base is `Exception` (pythonnet's `ExceptionClassObject` / `TypeManager.CreateType` use
Python's `Exception` as the base of `System.Exception`), so catching `RuntimeError` does not catch them.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest


class FakeEvent:
    """A .NET event: `+=` and `-=` handlers, raised with (sender, args)."""

    def __init__(self) -> None:
        self.handlers: list[Callable[..., None]] = []

    def __iadd__(self, handler: Callable[..., None]) -> FakeEvent:
        self.handlers.append(handler)
        return self

    def __isub__(self, handler: Callable[..., None]) -> FakeEvent:
        self.handlers.remove(handler)
        return self

    def fire(self, args: Any) -> None:
        for handler in list(self.handlers):
            handler(None, args)


class DotNetException(Exception):
    """`System.Exception` as pythonnet exposes it: a Python `Exception`, not a `RuntimeError`; `str()` is the
    exception's `ToString()` without the type name (so it carries the .NET stack trace), `Message` the
    message alone."""

    @property
    def Message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.Message}\n   at Microsoft.Skype.Bots.Media.MediaPlatform.CreateMediaConfiguration(IAudioSocket)"


class InvalidOperationException(DotNetException):
    pass


class SkypeMediaException(DotNetException):
    pass


def install(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Put the fake `clr`, `System`, `System.Net` and `Microsoft.Skype.Bots.Media` into `sys.modules`.

    Returns a record of what the adapter did; set `record.configuration_error` to an exception instance to
    make `CreateMediaConfiguration` throw it, or `record.socket_error` to make the `AudioSocket`
    constructor throw."""
    record = types.SimpleNamespace(
        references=[],
        initialized=None,
        sockets=[],
        shutdown=False,
        configuration_error=None,
        socket_error=None,
        video_sockets=[],
        configured_with=None,
    )

    class Settings:
        pass

    class AudioSocket:
        def __init__(self, settings: Any) -> None:
            if record.socket_error is not None:
                raise record.socket_error
            self.settings = settings
            self.AudioMediaReceived = FakeEvent()
            self.MediaStreamFailure = FakeEvent()
            self.DominantSpeakerChanged = FakeEvent()
            self.disposed = False
            record.sockets.append(self)

        def Dispose(self) -> None:
            self.disposed = True

    class VideoSocket:
        """`IVideoSocket`: `VideoMediaReceived`, `Subscribe(VideoResolution, msi)`, `Unsubscribe()`."""

        def __init__(self, settings: Any) -> None:
            self.settings = settings
            self.VideoMediaReceived = FakeEvent()
            self.subscriptions: list[tuple[str, int] | None] = []
            self.disposed = False
            record.video_sockets.append(self)

        def Subscribe(self, resolution: str, msi: int) -> None:
            self.subscriptions.append((resolution, msi))

        def Unsubscribe(self) -> None:
            self.subscriptions.append(None)

        def Dispose(self) -> None:
            self.disposed = True

    class GenericList(list):  # type: ignore[type-arg]
        """`System.Collections.Generic.List<T>` as pythonnet exposes it: `List[T]()`, `.Add(item)`."""

        def __class_getitem__(cls, item: Any) -> Any:  # type: ignore[override]
            return cls

        def Add(self, item: Any) -> None:
            self.append(item)

    class JObject:
        def __init__(self, value: dict[str, Any]) -> None:
            self.value = value

        def ToString(self) -> str:
            return json.dumps(self.value)

    class MediaPlatform:
        MediaPlatformHealthChanged = FakeEvent()

        @staticmethod
        def Initialize(settings: Any) -> None:
            record.initialized = settings

        @staticmethod
        def CreateMediaConfiguration(socket: Any, videos: Any = None, vbss: Any = None) -> JObject:
            if record.configuration_error is not None:
                raise record.configuration_error
            record.configured_with = (socket, videos, vbss)
            return JObject(
                {"mpUri": "net.tcp://rec.contoso.example:20001/MediaProcessor", "callId": socket.settings.CallId}
            )

        @staticmethod
        def GetCurrentTimestamp() -> int:
            return 5_000_000

        @staticmethod
        def Shutdown() -> None:
            record.shutdown = True

    clr = types.ModuleType("clr")
    clr.AddReference = record.references.append  # type: ignore[attr-defined]
    media = types.ModuleType("Microsoft.Skype.Bots.Media")
    media.MediaPlatform = MediaPlatform  # type: ignore[attr-defined]
    media.MediaPlatformSettings = Settings  # type: ignore[attr-defined]
    media.MediaPlatformInstanceSettings = type("MediaPlatformInstanceSettings", (Settings,), {})  # type: ignore[attr-defined]
    media.AudioSocketSettings = type("AudioSocketSettings", (Settings,), {})  # type: ignore[attr-defined]
    media.AudioSocket = AudioSocket  # type: ignore[attr-defined]
    media.StreamDirection = types.SimpleNamespace(Recvonly="Recvonly")  # type: ignore[attr-defined]
    media.AudioFormat = types.SimpleNamespace(Pcm16K="Pcm16K")  # type: ignore[attr-defined]
    media.SkypeMediaException = SkypeMediaException  # type: ignore[attr-defined]
    media.VideoSocketSettings = type("VideoSocketSettings", (Settings,), {})  # type: ignore[attr-defined]
    media.VideoSocket = VideoSocket  # type: ignore[attr-defined]
    media.IVideoSocket = VideoSocket  # type: ignore[attr-defined]
    media.VideoColorFormat = types.SimpleNamespace(H264="H264", NV12="NV12")  # type: ignore[attr-defined]
    media.MediaType = types.SimpleNamespace(Video="Video", Vbss="Vbss")  # type: ignore[attr-defined]
    media.VideoFormat = types.SimpleNamespace(H264_1920x1080_1_875Fps="H264_1920x1080_1_875Fps")  # type: ignore[attr-defined]
    media.VideoResolution = types.SimpleNamespace(HD1080p="HD1080p")  # type: ignore[attr-defined]
    generic = types.ModuleType("System.Collections.Generic")
    generic.List = GenericList  # type: ignore[attr-defined]
    system = types.ModuleType("System")
    system.Exception = DotNetException  # type: ignore[attr-defined]
    system.InvalidOperationException = InvalidOperationException  # type: ignore[attr-defined]
    system_net = types.ModuleType("System.Net")
    system_net.IPAddress = types.SimpleNamespace(Parse=lambda text: ("IPAddress", text))  # type: ignore[attr-defined]
    for name, module in {
        "clr": clr,
        "Microsoft": types.ModuleType("Microsoft"),
        "Microsoft.Skype": types.ModuleType("Microsoft.Skype"),
        "Microsoft.Skype.Bots": types.ModuleType("Microsoft.Skype.Bots"),
        "Microsoft.Skype.Bots.Media": media,
        "System": system,
        "System.Net": system_net,
        "System.Collections": types.ModuleType("System.Collections"),
        "System.Collections.Generic": generic,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return record
