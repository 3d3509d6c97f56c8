"""Media that arrives before Teams has accepted the `recording` status is never persisted.

call: updateRecordingStatus (Graph v1.0): "You may NOT use the Media Access API to record or otherwise
persist media content ... without first calling the updateRecordingStatus API to indicate that recording
has begun, and receiving a success reply from that API." Media flows as soon as the call is being
established, so frames stamped before the success reply must not reach the evidence."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory, RecorderProcess
from verbatim.contracts.recorder import RecordingStopped

SAMPLE_RATE = 16000


def _tone(seconds: float, hertz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * hertz * t) * 8000).astype("<i2")


def _recording(recorder: RecorderProcess, call_id: str) -> bool:
    calls = httpx.get(f"{recorder.url}/admin/calls", timeout=5).json()["calls"]
    return any(c["call_id"] == call_id and c["state"] == "recording" for c in calls)


def test_audio_from_before_the_recording_status_reply_is_not_in_the_evidence(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    call_id = "pre-roll-call"
    before = _tone(1.0)  # heard while the call is being established, before recording is allowed
    after = with_silence(speech("Only this may be kept."), 0.2)

    async def call() -> None:
        record = await platform.invite(recorder.url, call_id)
        await asyncio.wait_for(record.answer_event.wait(), 5.0)
        assert record.answer is not None
        callback = record.answer["callbackUri"]
        await platform.post(callback, platform.call_notification(call_id, "establishing"))
        socket = await platform.open_media(json.loads(record.answer["mediaConfig"]["blob"]), call_id)
        try:
            await platform.send_audio(socket, before, start_ticks=time.time_ns() // 100)
            await asyncio.sleep(0.5)  # the recorder has received the early frames
            await platform.post(callback, platform.call_notification(call_id, "established"))
            await asyncio.wait_for(record.status_event.wait(), 5.0)
            await asyncio.to_thread(wait_until, lambda: _recording(recorder, call_id), 10.0)
            await platform.send_audio(socket, after, start_ticks=time.time_ns() // 100)
            await socket.send_str(json.dumps({"type": "end"}))
        finally:
            await socket.close()
        await platform.post(callback, platform.call_notification(call_id, "terminated"))

    platform.run(call())
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    (stopped,) = [e for e in recorder.events() if isinstance(e, RecordingStopped)]
    evidence = decode(recorder.container_client().download_blob(stopped.blob_name).readall())
    assert np.array_equal(evidence, after)  # lossless, and nothing from before the reply
