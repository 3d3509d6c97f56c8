"""Read what the fixture apps' functions recorded (JSON lines in the FUNCHOST_OBSERVATIONS file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def observations(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [record for record in records if kind is None or record["kind"] == kind]
