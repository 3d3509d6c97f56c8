"""`recording.indexed`: reconciliation hears once per seal and once per recording marked not recorded — through
the index activity as the Functions host runs it — and a queue outage never fails the lifecycle. In memory:
the composition root is built around an in-memory recording store and queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import functions.lifecycle as triggers
from tests.lifecycle.events import T0, started
from verbatim.contracts.lifecycle import SealIndex, SealSummary
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.platform.queues import InMemoryQueue
from verbatim.platform.settings import reload_settings
from verbatim.reconciliation.service import parse_request
from verbatim.wiring import Container, use_container

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def activity(builder: Any) -> Callable[..., Any]:
    function: Callable[..., Any] = builder._function.get_user_function()
    return function


@pytest.fixture
def world() -> Iterator[tuple[LifecycleDeps, InMemoryQueue]]:
    queue = InMemoryQueue()
    store = InMemoryRecordingStore()
    deps = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        scratch=InMemoryBlobStore("lifecycle-scratch"),
        store=store,
        ledger=Ledger(InMemoryLedgerStore(), "main", None),
        retention=FixedRetention("default", 30),
        worm=InMemoryWorm(),
        reconciliation=queue,
        clock=lambda: NOW,
    )
    use_container(Container(reload_settings(), lifecycle=deps, reconciliation_requests=queue))
    yield deps, queue
    use_container(None)


def indexed(queue: InMemoryQueue) -> list[RecordingIndexed]:
    requests = [parse_request(body) for body in queue.bodies()]
    return [r for r in requests if isinstance(r, RecordingIndexed)]


def summary(recording_id: str) -> dict[str, Any]:
    seal = SealIndex(
        manifest_blob=f"{recording_id}/manifest.json",
        manifest_sha256="0" * 64,
        ledger_seq=7,
        evidence_blob=f"{recording_id}/mixed.flac",
        evidence_sha256="1" * 64,
        duration_seconds=12.0,
        interrupted=False,
        retention_class="default",
        retention_until=NOW,
        worm="emulator-not-enforced",
        sealed_at=NOW,
    )
    return SealSummary(recording_id=recording_id, status="complete", seal=seal).model_dump(mode="json")


def test_a_seal_sends_recording_indexed_exactly_once(world: tuple[LifecycleDeps, InMemoryQueue]) -> None:
    deps, queue = world
    record_event(deps.store, started("rec-1", at=T0))

    indexed_result = activity(triggers.index)({"summary": summary("rec-1"), "problems": []})

    assert indexed_result == {"recording_id": "rec-1", "status": "sealed"}
    messages = indexed(queue)
    assert [(m.recording_id, m.status) for m in messages] == [("rec-1", "sealed")]


def test_marking_not_recorded_sends_recording_indexed_exactly_once(
    world: tuple[LifecycleDeps, InMemoryQueue],
) -> None:
    deps, queue = world
    record_event(deps.store, started("rec-2", at=T0))

    activity(triggers.mark_not_recorded)({"recording_id": "rec-2", "reason": "failed: no media"})

    assert [(m.recording_id, m.status) for m in indexed(queue)] == [("rec-2", "not_recorded")]


def test_a_queue_outage_does_not_fail_the_seal(world: tuple[LifecycleDeps, InMemoryQueue]) -> None:
    deps, queue = world
    record_event(deps.store, started("rec-3", at=T0))
    queue.fail = True

    assert activity(triggers.index)({"summary": summary("rec-3"), "problems": []})["status"] == "sealed"
    assert deps.store.get("rec-3") is not None and deps.store.get("rec-3").status == "sealed"  # type: ignore[union-attr]
    assert announce_indexed(queue, deps.store.get("rec-3"), NOW) is False  # type: ignore[arg-type]
