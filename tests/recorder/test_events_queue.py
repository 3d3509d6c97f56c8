"""The test side's record of a recorder's events must hold every event, however many were published.

CI once failed because it peeked the queue: a peek shows at most 32 messages, and a shared queue that had more
hid the newest recording.started (tests/recorder/test_with_simulator.py's delegate test)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.conftest import Azurite
from tests.recorder.conftest import EventLog
from verbatim.contracts.recorder import ParticipantsChanged
from verbatim.platform.clients import queue_client
from verbatim.platform.settings import StorageConnection


def test_every_event_is_seen_even_beyond_what_one_peek_shows(azurite_service: Azurite) -> None:
    queue = queue_client(
        StorageConnection(name="AzureWebJobsStorage", connection_string=azurite_service.connection_string),
        f"events-{uuid.uuid4().hex[:10]}",
    )
    queue.create_queue()
    published = [
        ParticipantsChanged(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            recording_id=f"rec-{n // 10:02d}",
            call_id="call",
            sequence=n % 10,
            recorder_instance="rec-a",
            participants=[],
        )
        for n in range(75)
    ]
    log = EventLog(queue)
    for event in published[:40]:
        queue.send_message(event.model_dump_json())
    assert [e.event_id for e in log.seen()] == [e.event_id for e in published[:40]]
    for event in published[40:]:
        queue.send_message(event.model_dump_json())
    assert [e.event_id for e in log.seen()] == [e.event_id for e in published]
