"""The policy-recording answer window (5 s) holds while the recorder is busy."""

from __future__ import annotations

import asyncio
import uuid

from devstack.testkit.audio import speech, with_silence
from devstack.testkit.teams_platform import CallRecord, CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory
from verbatim.contracts.recorder import RecordingStarted


def test_fifty_simultaneous_invitations_are_all_answered_within_five_seconds_while_calls_stream(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    source = with_silence(speech("Background load while fifty invitations arrive at once."), 0.5)
    streaming = [platform.submit(platform.drive(recorder.url, CallScript(audio=source))) for _ in range(5)]
    wait_until(lambda: sum(isinstance(e, RecordingStarted) for e in recorder.events()) == 5, timeout=20)

    async def invite_all() -> list[CallRecord]:
        records = await asyncio.gather(*(platform.invite(recorder.url, str(uuid.uuid4())) for _ in range(50)))
        await asyncio.gather(*(asyncio.wait_for(record.answer_event.wait(), 10) for record in records))
        return list(records)

    records = platform.run(invite_all())
    latencies = sorted(record.answer_seconds or 99.0 for record in records)
    assert all(record.answer is not None for record in records)
    assert latencies[-1] < 5.0, latencies
    print(f"answer latency, 50 simultaneous invitations: p50 {latencies[24]:.3f} s, max {latencies[-1]:.3f} s")
    for call in streaming:
        call.result(timeout=60)
