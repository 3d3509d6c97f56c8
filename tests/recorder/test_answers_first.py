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
import concurrent.futures
import contextlib
import threading
import uuid
from pathlib import Path

import pytest

from devstack.testkit.teams_platform import CallRecord, FakePlatform
from recorder_vm import service
from tests.conftest import Azurite
from tests.recorder.inprocess import on_platform, recorder_settings, running_recorder, url_of
from verbatim.contracts.recorder import CaptureProgress

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


def test_an_invitation_is_answered_while_an_ended_calls_final_progress_is_still_being_written(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path
) -> None:
    """A call's final progress (`stopped`) is a table write — blocking I/O, seconds when storage is slow. It must
    not hold the signalling loop: an invitation arriving meanwhile is answered before that write completes. The
    invitation is posted, and its answer awaited, from a thread of its own (the recorder's loop may be the one held)."""
    settings = recorder_settings(azurite_service, platform, tmp_path / "state")
    url = url_of(settings)
    call_a, call_b = f"call-a-{uuid.uuid4()}", f"call-b-{uuid.uuid4()}"
    writing = threading.Event()  # A's final progress write has begun (and waits for `release`)
    release = threading.Event()
    answered_while_writing: list[bool] = []

    def invite_while_writing() -> None:
        if not writing.wait(60):
            return
        try:
            b = platform.calls.setdefault(call_b, CallRecord(call_b))
            platform.submit(platform.invite(url, call_b))
            with contextlib.suppress(TimeoutError, concurrent.futures.TimeoutError):
                platform.submit(asyncio.wait_for(b.answer_event.wait(), 10)).result(15)
            answered_while_writing.append(b.answer is not None)
        finally:
            release.set()

    async def scenario() -> None:
        async with running_recorder(settings) as runtime:
            recorder = runtime.recorder
            sink = recorder._progress_sink
            assert sink is not None

            def slow_storage(progress: CaptureProgress) -> None:
                if progress.call_id == call_a and progress.state in ("stopped", "failed"):
                    writing.set()
                    release.wait(60)
                sink(progress)

            recorder._progress_sink = slow_storage
            a = await on_platform(platform, platform.invite(url, call_a))
            await on_platform(platform, asyncio.wait_for(a.answer_event.wait(), 10))
            assert a.answer is not None
            for state in ("establishing", "established", "terminated"):
                notification = platform.call_notification(call_a, state)
                assert await on_platform(platform, platform.post(a.answer["callbackUri"], notification)) == 202
                if state == "established":
                    await on_platform(platform, asyncio.wait_for(a.status_event.wait(), 10))
            await asyncio.to_thread(prober.join, 90)

    prober = threading.Thread(target=invite_while_writing, name="invite-while-writing")
    prober.start()
    try:
        asyncio.run(scenario())
    finally:
        release.set()
        prober.join(90)
    assert answered_while_writing == [True]
