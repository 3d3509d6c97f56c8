"""A call record that reaches reconciliation before any recorder report on the call (the recorder's
`recording.started` still in a queue backlog, a Functions host restarting: chaos seed 2 at 08:08, 15 users
`missing (no_invitation)` whose recordings were sealed minutes later) must not page an officer for nothing.

Against Azurite and the Cosmos emulator, through the `reconciliation-requests` trigger."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import azure.functions as func
import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from functions import reconciliation
from tests.callrecords.helpers import cosmos_items, drain, handler
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform.settings import Settings
from verbatim.wiring import container_for
from verbatim.wiring.reconciliation import ReconciliationServices

reconcile = handler(reconciliation.reconcile)
CALL_ID = "c-grace"
CALL_END = T0 + timedelta(seconds=60)  # `call(...)` lasts 60 s


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(CALL_END + timedelta(seconds=30))  # the simulator's call record: seconds after the call


@pytest.fixture
def runtime(stack_env: Settings, clock: Clock) -> ReconciliationServices:
    drain(stack_env, "reconciliation-requests")  # the session's Azurite: other tests' messages
    services = container_for(stack_env).reconciliation
    services.reconciler.clock = clock
    services.reconciler.snapshots.add(snapshot(TRADER))
    services.reconciler.snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user
    services.reconciler.calls.save_if_newer(call(CALL_ID, [party(TRADER), party(CLIENT)]), {"id": CALL_ID})
    return services


def stored() -> func.QueueMessage:
    body = CallRecordStored(call_record_id=CALL_ID, version=1, type="peerToPeer", stored_at="2025-03-03T09:01:30Z")
    return func.QueueMessage(body=body.model_dump_json(by_alias=True).encode())


def alerts(settings: Settings) -> list[str]:
    return sorted(a["action"] for a in cosmos_items(settings, "audit") if a["category"] == "alert")


def verdict(settings: Settings) -> tuple[str, str]:
    (found,) = cosmos_items(settings, "verdicts")
    return found["verdict"], found["reason"]


def test_a_recorder_report_that_arrives_minutes_after_the_call_record_raises_no_alert(
    stack_env: Settings, runtime: ReconciliationServices, clock: Clock
) -> None:
    # The call record is stored 30 s after the call; the recorder's report on it is still in a queue backlog.
    reconcile(stored())
    assert alerts(stack_env) == []  # nothing is known to be wrong yet: nobody is paged

    # Minutes later the backlog is worked off: the recording is known, sealed, and its seal re-evaluates the call.
    clock.now = CALL_END + timedelta(minutes=5)
    record = recording("r-grace", CALL_ID, TRADER, start=T0 + timedelta(seconds=1), seconds=59)
    CosmosRecordingStore(container_for(stack_env).cosmos("recordings")).update("r-grace", lambda _: record)
    assert announce_indexed(container_for(stack_env).reconciliation_requests, record, clock.now)
    for message in drain(stack_env, "reconciliation-requests"):
        reconcile(func.QueueMessage(body=json.dumps(message).encode()))

    assert verdict(stack_env) == ("recorded", "recorded")
    assert alerts(stack_env) == []  # never `reconciliation.missing`, so never `reconciliation.resolved` either
