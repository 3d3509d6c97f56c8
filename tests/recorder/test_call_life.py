"""The life of a call as the platform drives it: out-of-order states, keepAlive, a refused recording
status, a call that ends before it was established; and the recorded user is never removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.recorder.audio import decode, speech, with_silence
from tests.recorder.conftest import RecorderFactory, RecorderProcess
from tests.recorder.platform import CallScript, FakePlatform, wait_until
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
