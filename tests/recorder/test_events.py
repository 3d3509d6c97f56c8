"""Recorder events survive a queue outage and a restart, and reach the queue in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError

from devstack.testkit.teams_platform import wait_until
from recorder_vm import events as events_module
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


class RecordingSink:
    """Keeps what was sent, and notes each send in a shared journal (to compare with the fsyncs)."""

    def __init__(self, journal: list[tuple[str, str]]) -> None:
        self.bodies: list[str] = []
        self._journal = journal

    def send(self, body: str) -> None:
        self._journal.append(("send", parse_recorder_event(body).event_id))
        self.bodies.append(body)


def test_publish_never_waits_for_the_disk_and_every_event_is_fsynced_before_it_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers go first: `publish` runs on the signalling loop, where an fsync would hold up every invitation still
    waiting for its answer; the sender thread fsyncs each event's file before it sends it."""
    journal: list[tuple[str, str]] = []
    fsync = os.fsync

    def journaled_fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        journal.append((f"fsync on {threading.current_thread().name}", name.split("-", 1)[1].removesuffix(".json")))
        fsync(fd)

    monkeypatch.setattr(events_module.os, "fsync", journaled_fsync)
    sink = RecordingSink(journal)
    publisher = EventPublisher(tmp_path / "outbox", sink)
    published = [_event(n) for n in range(20)]
    for event in published:
        publisher.publish(event)
    assert journal == []  # published (20 files in the outbox), nothing synced by the publishing thread
    assert publisher.pending == 20
    publisher.start()
    assert publisher.flush(timeout=10)
    publisher.stop()
    expected: list[tuple[str, str]] = []
    for event in published:
        expected += [("fsync on recorder-events", event.event_id), ("send", event.event_id)]
    assert journal == expected


def test_while_answers_are_waiting_the_sender_holds_back_and_then_delivers_everything_in_order(tmp_path: Path) -> None:
    waiting = threading.Event()
    waiting.set()
    sink = FlakySink()
    publisher = EventPublisher(tmp_path / "outbox", sink, hold=waiting.is_set, max_hold=600.0)
    publisher.start()
    published = [_event(n) for n in range(10)]
    for event in published:
        publisher.publish(event)
    wait_until(lambda: publisher.held >= 1, timeout=10)
    assert sink.attempts == 0 and publisher.pending == 10  # held: invitations are waiting for their answers
    waiting.clear()
    assert publisher.flush(timeout=10)
    publisher.stop()
    assert [parse_recorder_event(body).event_id for body in sink.bodies] == [e.event_id for e in published]


def test_answers_that_never_stop_waiting_do_not_starve_delivery(tmp_path: Path) -> None:
    """A steady stream of invitations (one always waiting) delays each pass over the outbox by `max_hold` at most."""
    sink = FlakySink()
    publisher = EventPublisher(tmp_path / "outbox", sink, hold=lambda: True, max_hold=0.05)
    publisher.start()
    published = [_event(n) for n in range(30)]
    for event in published:
        publisher.publish(event)
    assert publisher.flush(timeout=20)
    publisher.stop()
    assert publisher.held >= 1
    assert [parse_recorder_event(body).event_id for body in sink.bodies] == [e.event_id for e in published]


def test_events_published_from_many_threads_at_once_are_all_delivered_each_in_its_publishing_order(
    tmp_path: Path,
) -> None:
    """A storm: four publishers at once while the queue fails now and then; nothing is lost and each publisher's
    events (one call's, in the recorder) arrive in the order they were published."""
    sink = FlakySink()
    publisher = EventPublisher(tmp_path / "outbox", sink, first_backoff=0.01, max_backoff=0.05)
    publisher.start()
    streams = {
        f"rec-{n}": [_event(s).model_copy(update={"recording_id": f"rec-{n}"}) for s in range(100)] for n in range(4)
    }

    def publish_all(events: list[ParticipantsChanged]) -> None:
        for index, event in enumerate(events):
            if index % 37 == 0:
                sink.down.set()
            elif index % 37 == 5:
                sink.down.clear()
            publisher.publish(event)

    threads = [threading.Thread(target=publish_all, args=(events,)) for events in streams.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.down.clear()
    assert publisher.flush(timeout=30)
    publisher.stop()
    delivered = [parse_recorder_event(body) for body in sink.bodies]
    assert len({event.event_id for event in delivered}) == 400
    for recording_id, events in streams.items():
        mine = [event.sequence for event in delivered if event.recording_id == recording_id]
        assert mine == [event.sequence for event in events]


CRASHING_PUBLISHER = """
import os, signal, sys, uuid
from datetime import UTC, datetime
from pathlib import Path
from recorder_vm.events import EventPublisher
from verbatim.contracts.recorder import ParticipantsChanged

class Unreachable:
    def send(self, body):
        raise ConnectionError("not now")

publisher = EventPublisher(Path(sys.argv[1]), Unreachable())
for sequence in range(50):
    publisher.publish(ParticipantsChanged(
        event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), recording_id="rec-1", call_id="call-1",
        sequence=sequence, recorder_instance="rec-a", participants=[]))
os.kill(os.getpid(), signal.SIGKILL)  # the instant the last publish returned: nothing fsynced, nothing sent
"""


def test_events_published_by_a_process_killed_the_moment_publish_returned_are_all_delivered_by_the_next(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_PUBLISHER, str(outbox)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL
    sink = FlakySink()
    publisher = EventPublisher(outbox, sink)
    publisher.start()
    assert publisher.flush(timeout=10)
    publisher.stop()
    assert [parse_recorder_event(body).sequence for body in sink.bodies] == list(range(50))
