"""The `recorder_events` trigger starts a recording's orchestration or signals the one already there, by the
instance's runtime status as Microsoft's "Manage instances in Durable Functions" lists them: Pending, Running,
ContinuedAsNew ("restarted itself with a new history. This is a transient state") and Suspended instances take the
event; a finished one does not. In memory: the durable client is a stand-in recording what the trigger asks of it
(the trigger module is the unit under test; tests/lifecycle/test_orchestration.py runs the real thing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

import functions.lifecycle as triggers
from tests.lifecycle.events import T0, started
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.platform.queues import InMemoryQueue
from verbatim.platform.settings import reload_settings
from verbatim.wiring import Container, use_container

Status = df.OrchestrationRuntimeStatus


class DurableClient:
    """What the trigger asked of the durable client, for an instance in `status` (None: no such instance)."""

    def __init__(self, status: Status | None) -> None:
        self.status = status
        self.started: list[str] = []
        self.raised: list[tuple[str, str]] = []

    async def get_status(self, instance: str) -> Any:
        return SimpleNamespace(runtime_status=self.status) if self.status is not None else None

    async def start_new(self, name: str, instance: str, client_input: Any) -> str:
        self.started.append(instance)
        return instance

    async def raise_event(self, instance: str, name: str, data: Any) -> None:
        self.raised.append((instance, name))


@pytest.fixture
def deps() -> Iterator[LifecycleDeps]:
    lifecycle = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        scratch=InMemoryBlobStore("lifecycle-scratch"),
        store=InMemoryRecordingStore(),
        ledger=Ledger(InMemoryLedgerStore(), "main", None),
        retention=FixedRetention("default", 30),
        worm=InMemoryWorm(),
        reconciliation=InMemoryQueue(),
    )
    use_container(Container(reload_settings(), lifecycle=lifecycle))
    yield lifecycle
    use_container(None)


def deliver(client: DurableClient, recording_id: str) -> None:
    # Under the durable client binding's wrapper, which builds the SDK's client from the host's JSON.
    trigger: Callable[..., Any] = triggers.recorder_events._function.get_user_function().__wrapped__  # type: ignore[attr-defined]
    message = func.QueueMessage(body=started(recording_id, at=T0).model_dump_json().encode())
    asyncio.run(trigger(message=message, client=client))


@pytest.mark.parametrize("status", [Status.Pending, Status.Running, Status.ContinuedAsNew, Status.Suspended])
def test_an_event_for_an_instance_that_takes_events_is_raised_to_it(deps: LifecycleDeps, status: Status) -> None:
    client = DurableClient(status)
    deliver(client, "rec-signalled")
    assert client.raised == [(triggers.instance_id("rec-signalled"), triggers.RECORDER_EVENT)]
    assert client.started == []
    assert deps.store.get("rec-signalled") is not None  # folded into the record first


@pytest.mark.parametrize("status", [Status.Completed, Status.Failed, Status.Terminated, Status.Canceled])
def test_an_event_after_the_lifecycle_ended_is_only_folded_into_the_record(deps: LifecycleDeps, status: Status) -> None:
    client = DurableClient(status)
    deliver(client, "rec-ended")
    assert client.raised == [] and client.started == []
    assert deps.store.get("rec-ended") is not None


def test_the_first_event_of_a_recording_starts_its_orchestration(deps: LifecycleDeps) -> None:
    client = DurableClient(None)
    deliver(client, "rec-new")
    assert client.started == [triggers.instance_id("rec-new")] and client.raised == []
