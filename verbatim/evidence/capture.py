"""Where a capture lives and how its manifest is named, read and written.

The recorder writes, in the recordings container, under one folder per recording:
`<yyyy>/<mm>/<dd>/<recording id>/audio.flac` (the mixed evidence), `source-<id>.flac` (optional unmixed
tracks) and `capture.json` (the capture manifest, `verbatim.contracts.recorder.CaptureManifest`). The
lifecycle's seal writes its own `manifest.json` beside them.
"""

from __future__ import annotations

from datetime import datetime
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

MIXED_TRACK = "mixed"
MANIFEST_NAME = "capture.json"


def capture_prefix(recording_id: str, started: datetime) -> str:
    return f"{started:%Y/%m/%d}/{recording_id}"


def track_blob_name(prefix: str, track: str = MIXED_TRACK) -> str:
    return f"{prefix}/audio.flac" if track == MIXED_TRACK else f"{prefix}/{track}.flac"


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
