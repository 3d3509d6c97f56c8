"""Answers go first: an invitation waiting for its answer (5 s for policy-based recording, Graph `call: answer`) is
answered before the recorder spends anything on calls it has already answered — their recording status, capture
start and recording.started wait while it waits (learn.microsoft.com/graph/api/call-updaterecordingstatus documents
no deadline for the status, only that no media is kept before its success reply). The wait is bounded
(`ANSWERS_FIRST_SECONDS`): a call's recording is delayed, never starved, by invitations that keep coming.

Observed where Teams would observe it: on the test-side platform, which holds the later invitation's answer a while
(`answer_delay`) and notes, when the earlier call's `updateRecordingStatus` arrives, whether that answer had been
given."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from devstack.testkit.teams_platform import FakePlatform
from recorder_vm import service
from tests.conftest import Azurite
from tests.recorder.inprocess import on_platform, recorder_settings, running_recorder, url_of

ANSWER_HELD_SECONDS = 1.5  # the platform holds the waiting invitation's answer this long (the budget is 5 s)


def later_answer_given_when_earlier_status_arrived(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path
) -> bool:
    """Call A is answered; then invitation B arrives and its answer is held by the platform; meanwhile A is
    established (`establishing`, `established`), which makes the recorder report A's `recording` status. Returns
    whether B's answer had reached the platform when A's status did."""
    settings = recorder_settings(azurite_service, platform, tmp_path / "state")
    url = url_of(settings)
    call_a, call_b = f"call-a-{uuid.uuid4()}", f"call-b-{uuid.uuid4()}"  # the platform outlives this test
    seen: dict[str, bool] = {}

    def on_status(call_id: str, status: str) -> None:
        if call_id == call_a and status == "recording":  # (the recorder's shutdown reports notRecording later)
            seen["b answered"] = platform.calls[call_b].answer is not None

    async def scenario() -> None:
        async with running_recorder(settings):
            a = await on_platform(platform, platform.invite(url, call_a))
            await on_platform(platform, asyncio.wait_for(a.answer_event.wait(), 10))
            assert a.answer is not None
            platform.answer_delay = ANSWER_HELD_SECONDS
            b = await on_platform(platform, platform.invite(url, call_b))  # B now waits for its answer
            for state in ("establishing", "established"):
                notification = platform.call_notification(call_a, state)
                assert await on_platform(platform, platform.post(a.answer["callbackUri"], notification)) == 202
            await on_platform(platform, asyncio.wait_for(a.status_event.wait(), 20))
            await on_platform(platform, asyncio.wait_for(b.answer_event.wait(), 20))
            assert b.answer is not None and a.statuses == ["recording"]

    platform.on_recording_status = on_status
    try:
        asyncio.run(scenario())
    finally:
        platform.on_recording_status = None
        platform.answer_delay = 0.0
    return seen["b answered"]


def test_an_answered_calls_recording_status_waits_for_the_answer_of_an_invitation_still_waiting(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "ANSWERS_FIRST_SECONDS", 30.0)  # longer than the answer is held: order decides
    assert later_answer_given_when_earlier_status_arrived(azurite_service, platform, tmp_path)


def test_the_wait_is_bounded_so_a_call_is_recorded_while_an_answer_is_still_outstanding(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "ANSWERS_FIRST_SECONDS", 0.1)  # far shorter than the answer is held
    assert not later_answer_given_when_earlier_status_arrived(azurite_service, platform, tmp_path)
