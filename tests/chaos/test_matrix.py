"""The fault matrix of docs/reliability.md (`python -m devstack.chaos.matrix`): one row per fault and component."""

from __future__ import annotations

from devstack.chaos.matrix import matrix


def _fault(kind: str, target: str) -> dict[str, object]:
    return {"kind": kind, "target": target, "startedAt": "2026-12-07T14:00:05+00:00", "endedAt": None}


def test_recorder_instances_share_a_row_and_the_recorder_events_queue_has_its_own() -> None:
    call = {
        "placedAt": "2026-12-07T14:00:00+00:00",
        "endedAt": "2026-12-07T14:00:20+00:00",
        "outcome": "ended",
        "verdicts": [{"verdict": "recorded", "reason": "recorded"}],
    }
    faults = [_fault("kill", "recorder"), _fault("kill", "recorder-2"), _fault("poison-message", "recorder-events")]
    rows = matrix([{"faults": faults, "calls": [call]}])[2:]
    assert rows == [
        "| kill | recorder | 2 | ended 2 | recorded 2 |",
        "| poison-message | recorder-events | 1 | ended 1 | recorded 1 |",
    ]
