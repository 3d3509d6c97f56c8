"""The chaos run's plan (issue 23) is a pure function of its seed: the same seed gives the same calls and faults,
nobody is in two calls at once, every kind of call is placed, and a short run still has the faults it must cover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.chaos.faults import (
    FAULT_KINDS,
    LIBFAKETIME,
    SKEW_SECONDS,
    SPILL_BUDGET_BYTES,
    PlannedFault,
    condition_env,
    load_schedule,
)
from devstack.chaos.run import PROFILES, plan
from devstack.chaos.traffic import BUSY_MARGIN_SECONDS, KINDS, POLICY_USERS


def people(call_spec: dict[str, object]) -> list[str]:
    return [p["user"] for p in call_spec["participants"] if "user" in p]  # type: ignore[attr-defined,index]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_same_seed_plans_the_same_calls_and_faults_and_another_seed_does_not(profile: str) -> None:
    first, again, other = plan(7, PROFILES[profile]), plan(7, PROFILES[profile]), plan(8, PROFILES[profile])
    assert [(c.at, c.seconds, c.scenario.spec) for c in first[0]] == [
        (c.at, c.seconds, c.scenario.spec) for c in again[0]
    ]
    assert first[1] == again[1]
    assert [c.scenario.spec for c in first[0]] != [c.scenario.spec for c in other[0]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nobody_is_in_two_calls_at_once(seed: int) -> None:
    calls, _ = plan(seed, PROFILES["full"])
    for a in calls:
        for b in calls:
            if a.index < b.index and b.at < a.at + a.seconds + BUSY_MARGIN_SECONDS:
                shared = set(people(a.scenario.spec)) & set(people(b.scenario.spec))
                assert not shared, (a.scenario.key, b.scenario.key, shared)


def test_a_full_run_places_every_kind_of_call_and_expects_a_recorded_verdict_for_each_policy_user() -> None:
    calls, faults = plan(1, PROFILES["full"])
    assert {c.kind for c in calls} == {k.name for k in KINDS}
    for call in calls:
        assert {e.user for e in call.scenario.expected} == set(people(call.scenario.spec)) & set(POLICY_USERS)
        assert all(e.verdict == "recorded" for e in call.scenario.expected)
    assert {f.kind for f in faults} == set(FAULT_KINDS)


@pytest.mark.parametrize("seed", range(1, 6))
def test_the_ci_subset_always_kills_a_recorder_pauses_storage_and_the_functions_host_and_throttles_graph(
    seed: int,
) -> None:
    _, faults = plan(seed, PROFILES["ci"])
    assert {(f.kind, f.target.rstrip("-2")) for f in faults} >= {
        ("kill", "recorder"),
        ("pause", "functions"),
        ("pause", "azurite"),
        ("graph-errors", "graph"),
    }
    # ... and holds a queue message back, skews two clocks and runs a recorder with a small disk buffer.
    assert {f.kind for f in faults} >= {"reorder-queue-message", "clock-skew", "spill-full"}


@pytest.mark.parametrize("seed", [*range(1, 6), 23])
def test_the_ci_subset_kills_a_recorder_with_calls_in_flight_and_its_faults_fall_while_calls_are_up(seed: int) -> None:
    calls, faults = plan(seed, PROFILES["ci"])
    timed = [f for f in faults if f.kind not in ("clock-skew", "spill-full")]
    assert timed[0].kind == "kill" and timed[0].target.startswith("recorder")
    assert any(c.at < timed[0].at < c.at + c.seconds for c in calls)
    last_end = max(c.at + c.seconds for c in calls)
    assert all(f.at < last_end for f in timed), [(f.kind, f.at) for f in timed]


@pytest.mark.parametrize("seed", range(1, 6))
def test_every_run_skews_two_clocks_within_the_documented_tens_of_milliseconds_and_fills_a_recorders_buffer(
    seed: int,
) -> None:
    _, faults = plan(seed, PROFILES["full"])
    skews = [f for f in faults if f.kind == "clock-skew"]
    assert {f.target for f in skews} >= {"functions"} and len(skews) == 2
    assert all(SKEW_SECONDS[0] <= abs(f.seconds) <= SKEW_SECONDS[1] and f.at == 0 for f in skews)
    (spill,) = [f for f in faults if f.kind == "spill-full"]
    assert spill.target.startswith("recorder") and SPILL_BUDGET_BYTES[0] <= (spill.count or 0) <= SPILL_BUDGET_BYTES[1]


def test_the_whole_run_faults_become_the_components_environment() -> None:
    env = dict(
        condition_env(
            [
                PlannedFault(0, "clock-skew", "recorder-2", seconds=-0.045),
                PlannedFault(0, "clock-skew", "functions", seconds=0.08),
                PlannedFault(0, "spill-full", "recorder-2", count=40_000),
            ]
        )
    )
    assert dict(env["recorder-2"]) == {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": "-0.045",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
        "RECORDER_SPILL_MAX_BYTES": "40000",
    }
    assert dict(env["functions"])["FAKETIME"] == "+0.080"


def test_a_scripted_schedule_is_read_in_time_order_and_an_unknown_fault_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(
        json.dumps(
            [
                {"at": 20, "kind": "pause", "target": "cosmos", "seconds": 5},
                {"at": 3, "kind": "kill", "target": "recorder"},
            ]
        )
    )
    assert load_schedule(path) == [PlannedFault(3, "kill", "recorder"), PlannedFault(20, "pause", "cosmos", 5)]
    path.write_text(json.dumps([{"at": 1, "kind": "unplug", "target": "recorder"}]))
    with pytest.raises(ValueError, match="unknown fault kind"):
        load_schedule(path)
