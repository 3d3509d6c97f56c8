"""The life of a call as the platform drives it: out-of-order states, keepAlive, a refused recording
status, a call that ends before it was established; and the recorded user is never removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory, RecorderProcess
from verbatim.contracts.recorder import RecordingFailed, RecordingStarted, RecordingStopped


@pytest.fixture
def no_participant_removal(platform: FakePlatform) -> Iterator[None]:
    yield
    assert not [request for request in platform.graph_requests if "/participants/" in request]


def _stopped(recorder: RecorderProcess) -> list[RecordingStopped]:
    return [e for e in recorder.events() if isinstance(e, RecordingStopped)]


def test_established_before_establishing_still_records_once_and_keepalive_is_sent(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    recorder = start_recorder(RECORDER_KEEPALIVE_SECONDS="1")
    source = with_silence(speech("The states arrive out of order and the call is kept alive."), 0.5)
    script = CallScript(audio=source, realtime=True, establish_order=("established", "establishing", "established"))
    record = platform.run(platform.drive(recorder.url, script))
    wait_until(lambda: len(_stopped(recorder)) == 1, timeout=30)
    assert record.statuses == ["recording"]
    assert record.keepalives >= 2
    audio = decode(recorder.container_client().download_blob(_stopped(recorder)[0].blob_name).readall())
    assert abs(len(audio) - len(source)) <= 1600


def test_a_refused_recording_status_persists_nothing_and_reports_failed(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    recorder = start_recorder()
    platform.fail_recording_status = 403
    try:
        script = CallScript(audio=with_silence(speech("Nothing of this may be kept."), 0.2), realtime=False)
        record = platform.run(platform.drive(recorder.url, script, answer_timeout=5), timeout=60)
    except TimeoutError:
        record = platform.calls[script.call_id]
    finally:
        platform.fail_recording_status = None
    wait_until(lambda: any(isinstance(e, RecordingFailed) for e in recorder.events()), timeout=20)
    (failed,) = [e for e in recorder.events() if isinstance(e, RecordingFailed)]
    assert failed.stage == "recording_status" and not failed.committed and failed.blob_name is None
    assert not any(isinstance(e, RecordingStarted) for e in recorder.events())
    container = recorder.container_client()
    assert not container.exists() or not list(container.list_blobs(include=["uncommittedblobs"]))
    assert not record.deleted  # it stays in the call; Teams and the policy decide what happens to the user


def test_a_call_that_ends_before_it_is_established_reports_that_nothing_was_recorded(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()

    async def ring_then_hang_up() -> None:
        record = await platform.invite(recorder.url, "short-call")
        await record.answer_event.wait()
        assert record.answer is not None
        callback = record.answer["callbackUri"]
        await platform.post(callback, platform.call_notification("short-call", "establishing"))
        await platform.post(
            callback,
            platform.call_notification("short-call", "terminated", result_info={"code": 480, "subcode": 10076}),
        )

    platform.run(ring_then_hang_up())
    wait_until(lambda: any(isinstance(e, RecordingFailed) for e in recorder.events()), timeout=20)
    (failed,) = [e for e in recorder.events() if isinstance(e, RecordingFailed)]
    assert failed.call_id == "short-call" and "before recording started" in failed.reason
    assert recorder.health().json()["active_calls"] == 0


def _failed(recorder: RecorderProcess) -> list[RecordingFailed]:
    return [e for e in recorder.events() if isinstance(e, RecordingFailed)]


def test_keepalive_goes_on_while_the_bot_stays_in_a_call_whose_capture_failed(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    # call: keepAlive (Graph v1.0): a call without a successful request within 45 minutes "of the previous
    # request, or the start of the call" ends (408/8537). After a failure the bot keeps its leg in the call,
    # so it must keep the call alive too.
    recorder = start_recorder(RECORDER_KEEPALIVE_SECONDS="1")
    script = CallScript(
        audio=with_silence(speech("The media path is lost after this."), 0.2),
        realtime=False,
        stream_failure=True,
        terminate=False,
    )
    record = platform.run(platform.drive(recorder.url, script))
    wait_until(lambda: len(_failed(recorder)) == 1, timeout=20)
    assert _failed(recorder)[0].stage == "media"
    after_failure = record.keepalives
    wait_until(lambda: record.keepalives >= after_failure + 2, timeout=20)
    assert recorder.health().json()["active_calls"] == 0  # not capturing, not counted against capacity
    assert not record.deleted

    async def hang_up() -> None:
        assert record.answer is not None
        await platform.post(
            record.answer["callbackUri"],
            platform.call_notification(script.call_id, "terminated", result_info={"code": 200, "subcode": 4097}),
        )

    platform.run(hang_up())
    wait_until(lambda: script.call_id not in [c["call_id"] for c in _calls(recorder)], timeout=20)


def test_keepalive_starts_with_the_answer_even_when_recording_is_refused(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    recorder = start_recorder(RECORDER_KEEPALIVE_SECONDS="1")
    platform.fail_recording_status = 403
    try:
        script = CallScript(audio=with_silence(speech("Refused."), 0.2), realtime=False, terminate=False)
        try:
            record = platform.run(platform.drive(recorder.url, script), timeout=60)
        except TimeoutError:
            record = platform.calls[script.call_id]
        wait_until(lambda: len(_failed(recorder)) == 1, timeout=20)
        wait_until(lambda: record.keepalives >= 2, timeout=20)
    finally:
        platform.fail_recording_status = None


def test_a_failed_keepalive_is_retried_well_before_the_next_interval(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    interval = 3.0
    recorder = start_recorder(RECORDER_KEEPALIVE_SECONDS=str(interval))
    script = CallScript(audio=with_silence(speech("Kept alive."), 0.2), realtime=False, terminate=False)
    platform.fail_keepalives = 2
    try:
        record = platform.run(platform.drive(recorder.url, script))
        wait_until(lambda: record.keepalives >= 1, timeout=30)
    finally:
        platform.fail_keepalives = 0
    attempts = record.keepalive_attempts
    assert [status for _, status in attempts[:3]] == [500, 500, 200]
    # Waiting a whole interval after each failure would put the success two intervals after the first failure.
    assert attempts[2][0] - attempts[0][0] < interval


def _calls(recorder: RecorderProcess) -> list[dict[str, object]]:
    import httpx

    calls: list[dict[str, object]] = httpx.get(f"{recorder.url}/admin/calls", timeout=5).json()["calls"]
    return calls


def test_failed_is_reported_only_after_the_recording_has_ended(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    # call: updateRecordingStatus (Graph v1.0): "If your application begins recording any meeting, it must
    # end the recording prior to calling the updateRecordingStatus API to indicate that the recording has
    # ended." Ended: no more media is taken and all that was received is written; committing may follow.
    recorder = start_recorder()
    seen: list[tuple[str, object]] = []

    def at_status(call_id: str, status: str) -> None:
        if status != "recording":
            (call,) = [c for c in _calls(recorder) if c["call_id"] == call_id]
            seen.append((status, call["capture_halted"]))

    platform.on_recording_status = at_status
    try:
        script = CallScript(
            audio=with_silence(speech("Stopped before it is reported."), 0.2),
            realtime=False,
            stream_failure=True,
            terminate=False,
        )
        record = platform.run(platform.drive(recorder.url, script))
        wait_until(lambda: len(_failed(recorder)) == 1, timeout=30)
    finally:
        platform.on_recording_status = None
    assert record.statuses == ["recording", "failed"]
    assert seen == [("failed", True)]
    assert _failed(recorder)[0].committed


def test_a_call_whose_states_arrive_capitalised_is_recorded(
    platform: FakePlatform, start_recorder: RecorderFactory, no_participant_removal: None
) -> None:
    recorder = start_recorder()
    source = with_silence(speech("Capitals do not stop the recording."), 0.2)
    script = CallScript(audio=source, realtime=False, establish_order=("Establishing", "Established"))
    record = platform.run(platform.drive(recorder.url, script))
    assert record.statuses == ["recording"]
    wait_until(lambda: len(_stopped(recorder)) == 1, timeout=30)
