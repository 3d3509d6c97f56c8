"""Loading the documented Graph examples kept in tests/fixtures/graph/callrecords."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "callrecords"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    body.pop("_source", None)
    return body


def documented_record() -> dict[str, Any]:
    """The documented call record as our fetch assembles it: the record, every session (the expanded
    list-sessions example, the richest), and participants_v2."""
    record = load("callrecord-get-expanded.json")
    record.pop("sessions@odata.nextLink")
    record["sessions"] = load("callrecord-list-sessions-expanded.json")["value"]
    record["participants_v2"] = load("callrecord-get-participants-v2.json")["participants_v2"]
    return record
