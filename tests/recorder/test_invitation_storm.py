"""An invitation storm against the real recorder process: many invitations at once, each answered call established
as Teams does it (`establishing`, `established`, then `updateRecordingStatus`). Answers go first — the recorder's
events wait in its outbox while invitations wait for their answers (recorder_vm.events) — and nothing may be lost
or reordered for that, not even when the recorder is killed the moment the storm's calls are recording."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import httpx

from devstack.testkit.teams_platform import CallRecord, FakePlatform, wait_until
from recorder_vm.calls_api import SIGNALLING_CONNECTIONS
from tests.recorder.conftest import RecorderFactory, RecorderProcess
from verbatim.contracts.recorder import RecorderEvent, RecordingFailed, RecordingStarted, RecordingStopped


def storm(platform: FakePlatform, recorder: RecorderProcess, count: int) -> list[CallRecord]:
    """`count` invitations posted at once; each answered call established on its callbackUri until its status."""
    calls = [str(uuid.uuid4()) for _ in range(count)]

    async def one(call_id: str) -> CallRecord:
        record = await platform.invite(recorder.url, call_id)
        await asyncio.wait_for(record.answer_event.wait(), 30)
        assert record.answer is not None, record.rejected
        for state in ("establishing", "established"):
            await platform.post(record.answer["callbackUri"], platform.call_notification(call_id, state))
        await asyncio.wait_for(record.status_event.wait(), 30)
        return record

    async def all_of() -> list[CallRecord]:
        return list(await asyncio.gather(*(one(call_id) for call_id in calls)))

    return platform.run(all_of(), timeout=120)


def recording(recorder: RecorderProcess, call_ids: set[str]) -> bool:
    """Every one of these calls is `recording` on the recorder: its recording.started has been published (the
    session publishes it in the same step of the loop as it enters that state)."""
    calls = httpx.get(f"{recorder.url}/admin/calls", timeout=10).json()["calls"]
    return call_ids <= {call["call_id"] for call in calls if call["state"] == "recording"}


def by_recording(events: list[RecorderEvent]) -> dict[str, list[RecorderEvent]]:
    grouped: dict[str, list[RecorderEvent]] = defaultdict(list)
    for event in events:
        grouped[event.recording_id].append(event)
    return grouped


def test_a_storm_of_established_calls_loses_no_event_and_each_calls_events_stay_in_order(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder(RECORDER_MAX_CONCURRENT_CALLS="200")
    warm = httpx.get(f"{recorder.url}/admin/stats", timeout=10).json()["graph_connections_opened"]
    assert warm == SIGNALLING_CONNECTIONS  # opened at start-up (recorder_vm.graph_connections)
    records = storm(platform, recorder, 40)
    assert all(record.statuses == ["recording"] for record in records)
    stats = httpx.get(f"{recorder.url}/admin/stats", timeout=10).json()
    assert stats["answered"] == 40 and stats["answering"] == 0  # every answer counted out again
    assert stats["graph_connections_opened"] == warm  # 80 requests to Graph, no TLS handshake among them

    async def end_all() -> None:
        await asyncio.gather(
            *(
                platform.post(record.answer["callbackUri"], platform.call_notification(record.call_id, "terminated"))
                for record in records
                if record.answer is not None
            )
        )

    platform.run(end_all(), timeout=60)

    def ended() -> bool:
        grouped = by_recording(recorder.events())
        return len(grouped) == 40 and all(len(events) >= 2 for events in grouped.values())

    wait_until(ended, timeout=60)
    grouped = by_recording(recorder.events())
    assert {events[0].call_id for events in grouped.values()} == {record.call_id for record in records}
    for events in grouped.values():
        assert [event.sequence for event in events] == [0, 1]  # sorted by sequence: none missing, none repeated
        started, final = events
        assert isinstance(started, RecordingStarted) and isinstance(final, RecordingStopped | RecordingFailed)
        assert started.occurred_at <= final.occurred_at  # published in that order, not only numbered so


def test_events_still_in_the_outbox_when_the_recorder_is_killed_after_a_storm_are_delivered_by_its_restart(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    """SIGKILL the moment every call of the storm is recording: each recording.started was published (in the
    outbox, perhaps not yet fsynced or sent); the instance's next process sends what is left, in order."""
    recorder = start_recorder(RECORDER_MAX_CONCURRENT_CALLS="200")
    records = storm(platform, recorder, 40)
    call_ids = {record.call_id for record in records}
    wait_until(lambda: recording(recorder, call_ids), timeout=30)
    recorder.kill()
    left = len(list((recorder.state_dir / "outbox").glob("*.json")))
    print(f"{left} events were left in the killed recorder's outbox")

    restarted = start_recorder(
        instance_id=recorder.instance_id,  # the same state directory, hence the same outbox
        RECORDER_EVENTS_QUEUE=recorder.events_queue,
        CAPTURES_CONTAINER=recorder.container,
    )
    restarted.event_log = recorder._events  # one record of the queue for both processes

    def delivered() -> set[str]:
        return {event.call_id for event in restarted.events() if isinstance(event, RecordingStarted)}

    wait_until(lambda: delivered() == call_ids, timeout=60)
    started = [event for event in restarted.events() if isinstance(event, RecordingStarted)]
    assert len({event.recording_id for event in started}) == 40
