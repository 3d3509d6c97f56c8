"""Recorder events fold into the recording record idempotently and in any order."""

from __future__ import annotations

import itertools

from tests.lifecycle.events import failed_before_media, joined, started, stopped
from verbatim.lifecycle.records import InMemoryRecordingStore, apply_event, record_event


def test_events_in_any_order_give_the_same_record() -> None:
    events = [started("r1"), joined("r1"), stopped("r1", "ab" * 32, 30.0)]
    records = []
    for order in itertools.permutations(events):
        record = None
        for event in order:
            record = apply_event(record, event)
        records.append(record)

    assert all(r == records[0] for r in records)
    final = records[0]
    assert final is not None
    assert final.status == "stopped"
    assert final.facts.observed_user is not None and final.facts.observed_user.upn == "trader@contoso.com"
    assert final.sequences_seen == [0, 1, 2]


def test_a_redelivered_event_changes_nothing() -> None:
    store = InMemoryRecordingStore()
    event = joined("r2")
    record_event(store, started("r2"))
    once = record_event(store, event)
    twice = record_event(store, event)

    assert once == twice


def test_the_roster_keeps_everyone_who_was_ever_in_the_call() -> None:
    record = apply_event(apply_event(None, started("r3")), joined("r3"))

    assert sorted(p.participant_id for p in record.facts.participants) == ["p1", "p2", "p3"]


def test_a_failure_before_any_media_is_terminal() -> None:
    record = apply_event(None, failed_before_media("r4"))
    late = apply_event(record, started("r4").model_copy(update={"sequence": 1}))

    assert record.status == "failed"
    assert late.status == "failed"
    assert record.failure_stage == "answer"


def test_a_failure_before_any_media_keeps_the_calls_tenant() -> None:
    event = failed_before_media("r5").model_copy(update={"tenant_id": "932899f8-2ea1-4604-8413-27bd2892079f"})
    record = apply_event(None, event)

    assert record.facts.tenant_id == "932899f8-2ea1-4604-8413-27bd2892079f"
