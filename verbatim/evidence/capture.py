"""Where a capture lives and how its manifest is named, read and written.

The recorder writes, in the captures container (`verbatim.evidence.names`), under one folder per recording and
capture generation: `<recording id>/g<generation>/audio.flac` (the mixed track), `source-<id>.flac` (optional
unmixed tracks) and `capture.json` (the capture manifest, `verbatim.contracts.recorder.CaptureManifest`). The
lifecycle verifies it and writes the sealed copy into the recordings container.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from verbatim.contracts.recorder import (
    AudioEncoding,
    CaptureBlock,
    CaptureGap,
    CaptureManifest,
    CaptureProgress,
    CaptureTrack,
)
from verbatim.evidence import names

__all__ = [
    "AudioEncoding",
    "CaptureBlock",
    "CaptureGap",
    "CaptureManifest",
    "CaptureProgress",
    "CaptureTrack",
    "capture_prefix",
    "manifest_blob_name",
    "manifest_body",
    "read_manifest",
    "track_blob_name",
    "write_manifest",
]

MIXED_TRACK = names.MIXED_TRACK
MANIFEST_NAME = names.CAPTURE_MANIFEST


def capture_prefix(recording_id: str, generation: int = 0) -> str:
    """`<recording id>/g<generation>` in the captures container."""
    return names.capture_prefix(recording_id, generation)


def track_blob_name(prefix: str, track: str = MIXED_TRACK) -> str:
    """`audio.flac` (the mixed track), `source-<id>.flac`, or a video stream's `video-<id>.h264`/`screen-<id>.h264`."""
    if track == MIXED_TRACK:
        return f"{prefix}/audio.flac"
    return f"{prefix}/{track}{names.VIDEO_SUFFIX}" if names.is_video_track(track) else f"{prefix}/{track}.flac"


def manifest_blob_name(prefix: str) -> str:
    return f"{prefix}/{MANIFEST_NAME}"


def manifest_body(manifest: CaptureManifest) -> bytes:
    """The bytes of a capture manifest blob (JSON)."""
    return manifest.model_dump_json(indent=2).encode()


def write_manifest(container: ContainerClient, blob_name: str, manifest: CaptureManifest, **options: Any) -> None:
    """Write (or replace) a capture manifest; `options` go to the SDK call (timeouts, retries)."""
    container.upload_blob(
        blob_name,
        manifest_body(manifest),
        overwrite=True,
        content_settings=ContentSettings(content_type="application/json"),
        **options,
    )


def read_manifest(container: ContainerClient, blob_name: str) -> CaptureManifest | None:
    try:
        body = container.download_blob(blob_name).readall()
    except ResourceNotFoundError:
        return None
    return CaptureManifest.model_validate_json(body)
