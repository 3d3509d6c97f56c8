"""Recorder events survive a queue outage and a restart, and reach the queue in order."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from azure.core.exceptions import ServiceRequestError

from devstack.testkit.teams_platform import wait_until
from recorder_vm.events import EventPublisher, QueueSink
from tests.conftest import Azurite
from verbatim.contracts.recorder import ParticipantsChanged, parse_recorder_event
from verbatim.platform.clients import queue_client
from verbatim.platform.settings import StorageConnection


def _event(sequence: int) -> ParticipantsChanged:
    return ParticipantsChanged(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        recording_id="rec-1",
        call_id="call-1",
        sequence=sequence,
        recorder_instance="rec-a",
        participants=[],
    )


class FlakySink:
    """Fails while `down` is set, like a queue service that cannot be reached."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.bodies: list[str] = []
        self.attempts = 0

    def send(self, body: str) -> None:
        self.attempts += 1
        if self.down.is_set():
            raise ServiceRequestError("connection refused")
        self.bodies.append(body)


def test_events_published_during_an_outage_are_delivered_in_order_when_it_ends(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down.set()
    publisher = EventPublisher(tmp_path / "outbox", sink, first_backoff=0.05, max_backoff=0.2)
    publisher.start()
    events = [_event(n) for n in range(5)]
    for event in events:
        publisher.publish(event)
    wait_until(lambda: sink.attempts >= 3, timeout=5)
    assert publisher.pending == 5 and sink.bodies == []
    sink.down.clear()
    assert publisher.flush(timeout=10)
    assert [parse_recorder_event(body).event_id for body in sink.bodies] == [e.event_id for e in events]
    publisher.stop()


def test_events_left_by_a_previous_process_are_sent_first(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down.set()
    first = EventPublisher(tmp_path / "outbox", sink)
    old = [_event(0), _event(1)]
    for event in old:
        first.publish(event)  # never started: the process "died" with these on disk
    sink.down.clear()
    second = EventPublisher(tmp_path / "outbox", sink)
    new = _event(2)
    second.publish(new)
    second.start()
    assert second.flush(timeout=10)
    assert [parse_recorder_event(body).sequence for body in sink.bodies] == [0, 1, 2]
    second.stop()


def test_the_queue_sink_creates_the_queue_and_speaks_base64_like_the_functions_trigger(
    azurite_service: Azurite, tmp_path: Path
) -> None:
    connection = StorageConnection(name="AzureWebJobsStorage", connection_string=azurite_service.connection_string)
    name = f"events-{uuid.uuid4().hex[:8]}"
    publisher = EventPublisher(tmp_path / "outbox", QueueSink(queue_client(connection, name)))
    publisher.start()
    event = _event(0)
    publisher.publish(event)
    assert publisher.flush(timeout=10)
    publisher.stop()
    (message,) = list(queue_client(connection, name).receive_messages())
    assert parse_recorder_event(message.content) == event
