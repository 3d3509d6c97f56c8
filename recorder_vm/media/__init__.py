"""The media platform interface: what the recorder needs from whatever delivers a call's audio.

Two adapters implement it: `sim` (the simulator's WebSocket media transport) and `windows` (Microsoft's
real-time media library through pythonnet). `create_media_platform` picks one from settings; the windows
adapter is imported only when selected.
"""

from __future__ import annotations

from recorder_vm.media.base import AudioFrame, MediaHandler, MediaPlatform, MediaSession

__all__ = ["AudioFrame", "MediaHandler", "MediaPlatform", "MediaSession", "create_media_platform"]


def create_media_platform(settings: object) -> MediaPlatform:
    from recorder_vm.settings import RecorderSettings

    assert isinstance(settings, RecorderSettings)
    if settings.media_platform == "windows":
        from recorder_vm.media.windows import WindowsMediaPlatform

        return WindowsMediaPlatform(settings)
    from recorder_vm.media.sim import SimMediaPlatform

    return SimMediaPlatform(
        host=settings.media_host,
        port=settings.media_port,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
    )
