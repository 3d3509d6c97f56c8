"""The chaos run's queue faults on Azurite (issue 23): a held-back message is delivered after the messages sent
after it, never lost; a doubled one is delivered twice."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from azure.storage.queue import QueueClient

from devstack.chaos.faults import FaultInjector, PlannedFault
from devstack.chaos.run import task_hub_backlog
from devstack.demo import DemoStack
from devstack.stack import StackConfig, StackPorts
from tests.conftest import Azurite

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(azurite_service: Azurite) -> Iterator[DemoStack]:
    config = StackConfig(ports=replace(StackPorts(), azurite=azurite_service.ports))
    demo = DemoStack(config, [])
    yield demo
    demo.close()


@pytest.fixture
def queue(azurite_service: Azurite) -> Iterator[QueueClient]:
    client = QueueClient.from_connection_string(
        azurite_service.connection_string, f"chaos-{uuid.uuid4().hex[:12]}", message_encode_policy=None
    )
    client.create_queue()
    yield client
    client.delete_queue()


def drain(queue: QueueClient, expected: int, timeout: float = 30.0) -> list[str]:
    """Receive (and delete) messages as a queue trigger would, until `expected` came or the time is up."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for message in queue.receive_messages(max_messages=1, visibility_timeout=30):
            got.append(str(message.content))
            queue.delete_message(message)
        time.sleep(0.2)
    return got


def test_a_held_back_message_is_delivered_after_the_later_ones_and_not_lost(
    stack: DemoStack, queue: QueueClient
) -> None:
    queue.send_message("first")
    fault = PlannedFault(0.0, "reorder-queue-message", queue.queue_name, seconds=5.0, count=3)
    injector = FaultInjector(stack, [fault], echo=lambda _: None)

    note = injector._reorder_queue_message(fault)
    queue.send_message("second")
    queue.send_message("third")

    assert "held back 3 s" in note
    assert drain(queue, 3) == ["second", "third", "first"]


def test_a_doubled_message_is_delivered_twice(stack: DemoStack, queue: QueueClient) -> None:
    queue.send_message("only")
    fault = PlannedFault(0.0, "duplicate-queue-message", queue.queue_name, seconds=5.0)

    FaultInjector(stack, [fault], echo=lambda _: None)._duplicate_queue_message(fault)

    assert drain(queue, 2) == ["only", "only"]


def test_the_settling_sees_durable_work_waiting_in_the_task_hub_s_queues(azurite_service: Azurite) -> None:
    """What the settling counts as the stack still working when no orchestration's status changes: the messages
    in the task hub's control and work-item queues (activities queued behind a backlog)."""
    hub = f"chaos{uuid.uuid4().hex[:10]}"
    config = StackConfig(ports=replace(StackPorts(), azurite=azurite_service.ports), task_hub=hub)
    demo = DemoStack(config, [])
    queues = [
        QueueClient.from_connection_string(azurite_service.connection_string, f"{hub}-{kind}")
        for kind in ("control-00", "workitems")
    ]
    try:
        assert task_hub_backlog(demo) == -1  # not created yet: no reading
        for client in queues:
            client.create_queue()
        assert task_hub_backlog(demo) == 0
        queues[0].send_message("an event")
        for _ in range(2):
            queues[1].send_message("an activity")
        assert task_hub_backlog(demo) == 3
    finally:
        for client in queues:
            with contextlib.suppress(Exception):
                client.delete_queue()
        demo.close()
