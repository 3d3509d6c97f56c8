"""The chaos run's plan (issue 23) is a pure function of its seed: the same seed gives the same calls and faults,
nobody is in two calls at once, every kind of call is placed, and a short run still has the faults it must cover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.chaos.faults import (
    FAKETIME_SITE,
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
        "PYTHONPATH": str(FAKETIME_SITE),
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


SKEWED_PROCESS = """
import json, queue, threading, time
before = time.time()
time.sleep(0.01)  # Python 3.11: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which libfaketime#426 breaks
lock = threading.Lock()
lock.acquire()
timed_out = not lock.acquire(timeout=0.01)  # a monotonic deadline handed to the kernel (futex) as it is
try:
    queue.Queue().get(timeout=0.01)
except queue.Empty:
    pass
print(json.dumps({"wall": before, "timed_out": timed_out}))
"""


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="Debian package libfaketime (scripts/apt-packages.txt)")
def test_a_skewed_component_s_wall_clock_is_off_and_its_sleeps_and_timed_waits_still_work() -> None:
    """The clock-skew fault shifts a component's wall clock and nothing else. libfaketime 0.9.10 with its monotonic
    clock left alone fails every `time.sleep` of Python 3.11 with EINVAL (wolfcw/libfaketime#426): the skewed
    Functions host's storage SDK retries failed at once in `make chaos SEED=1` (a queue listener task died on it,
    its message invisible for 10 minutes; chaos defect 5's `OSError: [Errno 22]`). Faking the monotonic clock too
    is no way out: a lock's timeout then never expires (the kernel waits for a faked deadline)."""
    [(_, pairs)] = condition_env([PlannedFault(0, "clock-skew", "functions", seconds=-30.0)])
    start = time.time()
    ran = subprocess.run(
        [sys.executable, "-c", SKEWED_PROCESS],
        env={**os.environ, **dict(pairs)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    end = time.time()
    assert ran.returncode == 0, ran.stderr[-2000:]
    seen = json.loads(ran.stdout)
    assert seen["timed_out"]
    assert start - 30.0 - 1.0 <= seen["wall"] <= end - 30.0 + 1.0  # 30 s behind this process's clock
