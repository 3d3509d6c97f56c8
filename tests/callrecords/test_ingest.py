"""Ingestion: fetch with paging, store only newer versions, hand off once per version, retry later
instead of poisoning (not-yet 404s, throttling), and skip duplicates without calling Graph."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.callrecords.fake_graph import FakeGraph, call_record
from verbatim.callrecords.ingest import CallRecordIngestor, IngestPolicy
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.callrecords import CallRecordNotification, CallRecordStored
from verbatim.graph import GraphForbidden
from verbatim.platform.queues import InMemoryQueue
from verbatim.platform.times import format_datetime


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


class Rig:
    def __init__(self, **policy: object) -> None:
        self.graph = FakeGraph()
        self.client = self.graph.client()
        self.store = InMemoryCallRecordStore()
        self.notifications = InMemoryQueue()
        self.reconciliation = InMemoryQueue()
        self.clock = Clock()
        self.ingestor = CallRecordIngestor(
            graph_for=lambda tenant: self.client,
            store=self.store,
            notifications=self.notifications,
            reconciliation=self.reconciliation,
            policy=IngestPolicy(**policy),  # type: ignore[arg-type]
            clock=self.clock,
        )

    def message(self, record_id: str, **fields: object) -> CallRecordNotification:
        self.clock.tick()
        return CallRecordNotification(
            call_record_id=record_id,
            tenant_id="tenant-1",
            first_seen_at=format_datetime(self.clock.now),
            **fields,  # type: ignore[arg-type]
        )

    def handed_off(self) -> list[tuple[str, int]]:
        return [
            (m.call_record_id, m.version)
            for m in (CallRecordStored.model_validate_json(b) for b in self.reconciliation.bodies())
        ]


def test_a_record_is_fetched_with_all_session_and_participant_pages_and_stored() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1, users=("u1", "u2", "u3", "u4", "u5"), sessions=5))

    outcome = rig.ingestor.ingest(rig.message("c1"))

    assert (outcome.status, outcome.version, outcome.handed_off) == ("stored", 1, True)
    stored = rig.store.get("c1")
    assert stored is not None
    assert len(stored.sessions) == 5  # 2 + 2 + 1 over sessions@odata.nextLink
    assert stored.participant_keys == [f"user:u{n}" for n in range(1, 6)]  # 130-per-page paging, here 2
    assert rig.graph.count("GET", r"/sessions$") == 2
    assert rig.graph.count("GET", r"/participants_v2$") == 3
    raw = rig.store.get_raw("c1")
    assert raw is not None and len(raw["sessions"]) == 5 and "sessions@odata.nextLink" not in raw
    assert rig.handed_off() == [("c1", 1)]


def test_only_a_higher_version_replaces_and_each_version_is_handed_off_once() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 2))
    rig.ingestor.ingest(rig.message("c1"))
    rig.graph.publish(call_record("c1", 1))  # an older answer (e.g. a lagging replica)
    assert rig.ingestor.ingest(rig.message("c1")).status == "stale"
    rig.graph.publish(call_record("c1", 3))
    assert rig.ingestor.ingest(rig.message("c1")).status == "stored"
    assert rig.ingestor.ingest(rig.message("c1")).status == "unchanged"

    assert rig.store.get("c1").version == 3  # type: ignore[union-attr]
    assert rig.handed_off() == [("c1", 2), ("c1", 3)]


def test_a_duplicate_notification_received_before_the_last_fetch_costs_no_graph_request() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1))
    first, duplicate = rig.message("c1"), rig.message("c1")  # both received before any fetch
    rig.clock.tick()
    rig.ingestor.ingest(first)
    before = len(rig.graph.requests)

    assert rig.ingestor.ingest(duplicate).status == "skipped"
    assert len(rig.graph.requests) == before
    # A notification received after the fetch (a new version may exist) is fetched.
    rig.clock.tick(5)
    assert rig.ingestor.ingest(rig.message("c1")).status == "unchanged"


def test_a_404_soon_after_the_notification_is_retried_later_not_poisoned() -> None:
    rig = Rig(not_yet_retry_seconds=600)
    message = rig.message("late")

    outcome = rig.ingestor.ingest(message)

    assert (outcome.status, outcome.retry_in_seconds) == ("not_yet", 600)
    ((body, delay),) = rig.notifications.messages
    again = CallRecordNotification.model_validate_json(body)
    assert delay == 600 and again.attempt == 1 and again.first_seen_at == message.first_seen_at
    # Published later: the re-delivered message stores it.
    rig.graph.publish(call_record("late", 1))
    rig.clock.tick(600)
    assert rig.ingestor.ingest(again).status == "stored"


def test_a_404_long_after_the_notification_gives_up_without_requeueing() -> None:
    rig = Rig()
    message = rig.message("never")
    rig.clock.tick(151 * 60)

    assert rig.ingestor.ingest(message).status == "gone"
    assert rig.notifications.messages == []


def test_throttling_within_the_clients_patience_is_absorbed_by_its_retries() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1))
    rig.graph.fail_next(2, 429, retry_after="1")
    rig.graph.fail_next(1, 503)

    assert rig.ingestor.ingest(rig.message("c1")).status == "stored"
    assert rig.client.retries == 3


def test_throttling_beyond_the_clients_patience_requeues_with_the_servers_delay() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1))
    rig.graph.fail_next(1, 429, retry_after="300")  # longer than the client waits in-process

    outcome = rig.ingestor.ingest(rig.message("c1"))

    assert outcome.status == "retry_later" and outcome.retry_in_seconds is not None and outcome.retry_in_seconds >= 300
    ((body, delay),) = rig.notifications.messages
    assert delay >= 300 and json.loads(body)["attempt"] == 1
    assert rig.store.get("c1") is None


def test_a_message_that_keeps_failing_is_left_to_the_hosts_retries_and_poison_queue() -> None:
    rig = Rig(max_retry_attempts=3)
    rig.graph.publish(call_record("c1", 1))
    rig.graph.fail_next(1, 429, retry_after="300")

    with pytest.raises(Exception, match="Injected"):
        rig.ingestor.ingest(rig.message("c1", attempt=3))


def test_permission_errors_raise_so_the_message_is_not_silently_lost() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1))
    rig.graph.fail_next(1, 403)

    with pytest.raises(GraphForbidden):
        rig.ingestor.ingest(rig.message("c1"))


def test_a_crash_between_storing_and_handing_off_is_repaired_by_the_next_delivery() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 1))
    rig.reconciliation.fail = True
    with pytest.raises(Exception, match="unavailable"):
        rig.ingestor.ingest(rig.message("c1"))
    assert rig.store.get("c1") is not None  # stored, not handed off
    rig.reconciliation.fail = False

    outcome = rig.ingestor.ingest(rig.message("c1"))

    assert (outcome.status, outcome.handed_off) == ("unchanged", True)
    assert rig.handed_off() == [("c1", 1)]


def test_a_backfill_message_for_a_version_we_hold_is_skipped() -> None:
    rig = Rig()
    rig.graph.publish(call_record("c1", 2))
    rig.ingestor.ingest(rig.message("c1"))
    before = len(rig.graph.requests)

    assert rig.ingestor.ingest(rig.message("c1", source="backfill", known_version=2)).status == "skipped"
    assert len(rig.graph.requests) == before
    rig.graph.publish(call_record("c1", 3))
    assert rig.ingestor.ingest(rig.message("c1", source="backfill", known_version=3)).status == "stored"
