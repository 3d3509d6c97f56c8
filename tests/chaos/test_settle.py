"""Settling (`devstack.chaos.run._settle`) waits for what the stack still owes before the invariants are judged.

Chaos seed 1 (2026-12-07, 16:18, every fix of that day): `no-orphan-evidence` found `access.opus` and `access.json`
of two sealed recordings named by no seal. Both were being made by the `access-copies` trigger when the Functions
host was killed (+72 s and +282 s): the copy and its access manifest were written, the ledger entry and the record
were not. The killed host had received five `access-copies` messages (Azurite's queue state at the end: dequeued
once, invisible until 16:29:25-16:33:16, 10 minutes after they were received); the run had settled 53 s after its
traffic (every verdict final, no orchestration running) and ended at 16:27, before they came back. The access copies
are sealed after the recording's orchestration ends, so neither a final verdict nor a completed orchestration says
they are done: settling must also wait until no sealed record says its access copies are pending.

The stack's readers are replaced here by what they would answer, round by round (no stack: this is the waiting
logic only; `tests/e2e/test_chaos.py` runs it on a real one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.chaos import run


@pytest.fixture
def quiet_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every verdict final and no orchestration running (no calls to ask about), no durable work queued."""
    monkeypatch.setattr(run, "orchestrations", lambda stack: [])
    monkeypatch.setattr(run, "task_hub_backlog", lambda stack: 0)
    monkeypatch.setattr(run, "SETTLE_POLL_SECONDS", 0.0, raising=False)
    yield


class Stack:
    """What settling asks of the stack itself: firing a timer function (the call-record back-fill)."""

    def __init__(self) -> None:
        self.fired: list[str] = []

    def fire(self, function: str) -> None:
        self.fired.append(function)


def answers(rounds: list[list[str]]) -> tuple[list[int], Any]:
    """A reader of the pending access copies that answers `rounds` in turn (then nothing pending)."""
    asked = [0]

    def pending(stack: object) -> list[str]:
        asked[0] += 1
        return rounds[asked[0] - 1] if asked[0] <= len(rounds) else []

    return asked, pending


def test_settling_waits_until_no_sealed_part_says_its_access_copies_are_pending(
    quiet_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = ["a01f5065-9da4-4e55-be43-869c931815c9 part 0", "d954bc31-105c-4e16-a83c-5568fc6b15e3 part 0"]
    asked, pending = answers([copies, copies, copies[1:]])
    monkeypatch.setattr(run, "pending_access_copies", pending, raising=False)

    actions = run._settle(Stack(), [], 600.0, lambda _: None)  # type: ignore[arg-type]

    assert asked[0] == 4  # settled in the first round in which nothing was pending, not before
    assert actions[-1].startswith("settled after")
    assert any("waited for 2 access copies still pending" in a and copies[0] in a for a in actions)


def test_access_copies_still_pending_at_the_limit_are_named_in_what_settling_reports(
    quiet_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "pending_access_copies", lambda stack: ["b98cc0fb part 0"], raising=False)
    monkeypatch.setattr(run, "SETTLE_STRETCH", 1.0)  # the limit as given, however the copies move

    actions = run._settle(Stack(), [], 0.05, lambda _: None)  # type: ignore[arg-type]

    assert actions[-1] == "not settled after 0 s (1 access copies still pending: b98cc0fb part 0)"


def test_a_cosmos_that_does_not_answer_is_not_taken_for_no_pending_copy(
    quiet_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = [0]

    def paused(stack: object) -> list[str]:
        asked[0] += 1
        if asked[0] < 3:
            raise TimeoutError("the Cosmos emulator is paused (test)")
        return []

    monkeypatch.setattr(run, "pending_access_copies", paused, raising=False)

    actions = run._settle(Stack(), [], 600.0, lambda _: None)  # type: ignore[arg-type]

    assert asked[0] == 3 and actions[-1].startswith("settled after")


def test_settling_lasts_past_the_grace_for_a_recorders_report_which_the_runs_stack_sets_short(tmp_path: Any) -> None:
    """The last calls' unrecorded users are `pending (awaiting_recorder_report)` until the grace after the call has
    ended and its re-evaluation is delivered: the run's stack sets a grace of a minute (15 in Azure), and settling
    lasts at least that, the re-evaluation's margin and a minute, whatever the profile says."""
    from dataclasses import replace

    from devstack.stack import StackConfig, app_environment
    from verbatim.platform.settings import Settings
    from verbatim.reconciliation.service import DUE_MARGIN_SECONDS

    for profile in run.PROFILES.values():
        assert profile.report_grace_seconds == 60
        assert run.settle_limit(profile, []) >= profile.report_grace_seconds + DUE_MARGIN_SECONDS + 60
    short = replace(run.PROFILES["ci"], settle_seconds=30.0, report_grace_seconds=120)
    assert run.settle_limit(short, []) == 120 + DUE_MARGIN_SECONDS + 60

    environment = app_environment(StackConfig(state_dir=tmp_path, recorder_report_grace_seconds=60))
    assert Settings.model_validate(environment).reconciliation_recorder_report_grace_seconds == 60
    local = Settings.model_validate(app_environment(StackConfig(state_dir=tmp_path)))
    assert local.reconciliation_recorder_report_grace_seconds == 30  # `make run`, the whole-stack tests
