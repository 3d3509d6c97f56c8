"""What ffprobe reads in a media file (its streams and its container's format), for the tests that check a copy
plays as a recipient's player would see it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON for `path`: `streams` (one per track, in order) and `format`."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    probe: dict[str, Any] = json.loads(result.stdout)
    return probe
