"""A call record that reaches reconciliation before any recorder report on the call (the recorder's
`recording.started` still in a queue backlog, a Functions host restarting: chaos seed 2 at 08:08, 15 users
`missing (no_invitation)` whose recordings were sealed minutes later) must not page an officer for nothing.

While no recorder has reported on a user and the call ended less than the grace ago
(`RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS`), the verdict is `pending` (`awaiting_recorder_report`, no alert),
and the evaluation puts `recorder-report.grace-ended` on `reconciliation-requests`, visible when the grace ends;
then, still without a report, `missing` (`no_invitation`) and the alert, as before. A lost message is caught by
the daily report's re-evaluation. Against Azurite and the Cosmos emulator, through the queue trigger; the
service-layer cases (in memory) at the end."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import azure.functions as func
import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from functions import reconciliation
from tests.callrecords.helpers import cosmos_items, drain, handler
from tests.reconciliation.test_reconciler import World
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.contracts.reconciliation import RecorderReportGraceEnded
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform import clients
from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.queues import InMemoryQueue, MessageQueue
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.evaluate import RECORDER_REPORT_GRACE
from verbatim.reconciliation.service import DUE_MARGIN_SECONDS, parse_request
from verbatim.wiring import container_for
from verbatim.wiring.reconciliation import ReconciliationServices

reconcile = handler(reconciliation.reconcile)
CALL_ID = "c-grace"
CALL_END = T0 + timedelta(seconds=60)  # `call(...)` lasts 60 s
GRACE = timedelta(seconds=Settings().reconciliation_recorder_report_grace_seconds)  # the production default
DUE = CALL_END + GRACE


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(CALL_END + timedelta(seconds=30))  # the simulator's call record: seconds after the call


class Sent:
    """The real `reconciliation-requests` queue on Azurite, and what was sent on it (a delayed message cannot be
    received before it is due, so the test hands its body to the trigger when its clock says it is due)."""

    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self.messages: list[tuple[RecorderReportGraceEnded, int]] = []

    def send(self, body: str, delay_seconds: int = 0) -> None:
        self.queue.send(body, delay_seconds)
        self.messages.append((RecorderReportGraceEnded.model_validate_json(body), delay_seconds))


@pytest.fixture
def runtime(stack_env: Settings, clock: Clock) -> Iterator[ReconciliationServices]:
    queue = clients.queue_client(stack_env.runtime_storage_connection, "reconciliation-requests")
    queue.clear_messages()  # the session's Azurite: other tests' messages, visible or not
    services = container_for(stack_env).reconciliation
    assert services.reconciler.report_grace == GRACE and services.reconciler.requests is not None
    services.reconciler.requests = Sent(services.reconciler.requests)
    services.reconciler.clock = clock
    services.reconciler.snapshots.add(snapshot(TRADER))
    services.reconciler.snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user
    services.reconciler.calls.save_if_newer(call(CALL_ID, [party(TRADER), party(CLIENT)]), {"id": CALL_ID})
    yield services
    queue.clear_messages()  # the delayed ones too: they must not come up in a later test


def sent(runtime: ReconciliationServices) -> list[tuple[RecorderReportGraceEnded, int]]:
    assert isinstance(runtime.reconciler.requests, Sent)
    return runtime.reconciler.requests.messages


def on_azurite(settings: Settings) -> int:
    """Messages on `reconciliation-requests`, the invisible (delayed) ones included."""
    queue = clients.queue_client(settings.runtime_storage_connection, "reconciliation-requests")
    return int(queue.get_queue_properties().approximate_message_count)


def deliver(message: RecorderReportGraceEnded) -> None:
    reconcile(func.QueueMessage(body=message.model_dump_json(by_alias=True).encode()))


def stored() -> func.QueueMessage:
    body = CallRecordStored(call_record_id=CALL_ID, version=1, type="peerToPeer", stored_at="2025-03-03T09:01:30Z")
    return func.QueueMessage(body=body.model_dump_json(by_alias=True).encode())


def alerts(settings: Settings) -> list[str]:
    return sorted(a["action"] for a in cosmos_items(settings, "audit") if a["category"] == "alert")


def verdict(settings: Settings) -> tuple[str, str]:
    (found,) = cosmos_items(settings, "verdicts")
    return found["verdict"], found["reason"]


def history(settings: Settings) -> list[tuple[str, str]]:
    (found,) = cosmos_items(settings, "verdicts")
    return [(h["verdict"], h["reason"]) for h in found["history"]]


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
    assert history(stack_env) == [("pending", "awaiting_recorder_report")]
    assert alerts(stack_env) == []  # never `reconciliation.missing`, so never `reconciliation.resolved` either

    # The re-evaluation scheduled for the end of the grace comes all the same: it changes nothing.
    ((due, _),) = sent(runtime)
    clock.now = DUE + timedelta(seconds=DUE_MARGIN_SECONDS)
    deliver(due)
    assert verdict(stack_env) == ("recorded", "recorded")
    assert alerts(stack_env) == []


def test_without_a_report_the_end_of_the_grace_turns_the_verdict_missing_with_the_alert_as_before(
    stack_env: Settings, runtime: ReconciliationServices, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    reconcile(stored())

    (found,) = cosmos_items(stack_env, "verdicts")
    assert (found["verdict"], found["reason"], found["explained"]) == ("pending", "awaiting_recorder_report", False)
    assert "no recorder has reported on this user's call yet; judged at 2025-03-03T09:16:00" in found["reasonDetail"]
    assert alerts(stack_env) == []
    # The re-evaluation is on the queue, invisible until the grace has ended (and a margin).
    ((due, delay),) = sent(runtime)
    assert (due.call_record_id, due.due_at) == (CALL_ID, "2025-03-03T09:16:00.000000Z")
    assert delay == (DUE - clock.now).total_seconds() + DUE_MARGIN_SECONDS == 875
    assert on_azurite(stack_env) == 1 and drain(stack_env, "reconciliation-requests") == []

    # When it is due, no recorder has reported: the call was not recorded, and the officer is alerted.
    clock.now = DUE + timedelta(seconds=DUE_MARGIN_SECONDS)
    with caplog.at_level(logging.WARNING, logger="verbatim.reconciliation.service"):
        deliver(due)

    assert verdict(stack_env) == ("missing", "no_invitation")
    assert history(stack_env) == [("pending", "awaiting_recorder_report")]
    assert alerts(stack_env) == ["reconciliation.missing"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "policy user's call not fully recorded"
    ]
    assert len(sent(runtime)) == 1  # decided: nothing more to wait for


def test_a_call_record_that_arrives_after_the_grace_is_judged_at_once(
    stack_env: Settings, runtime: ReconciliationServices, clock: Clock
) -> None:
    clock.now = DUE + timedelta(minutes=40)  # in Microsoft 365 call records come minutes to hours after the call

    reconcile(stored())

    assert verdict(stack_env) == ("missing", "no_invitation")
    assert history(stack_env) == []
    assert alerts(stack_env) == ["reconciliation.missing"]
    assert sent(runtime) == [] and on_azurite(stack_env) == 0


def test_a_lost_reevaluation_is_decided_by_the_daily_report(
    stack_env: Settings, runtime: ReconciliationServices, clock: Clock
) -> None:
    reconcile(stored())
    assert verdict(stack_env) == ("pending", "awaiting_recorder_report")
    clients.queue_client(stack_env.runtime_storage_connection, "reconciliation-requests").clear_messages()  # lost

    clock.now = datetime.combine(T0.date() + timedelta(days=1), datetime.min.time(), T0.tzinfo) + timedelta(hours=3)
    run = runtime.reporter.run(T0.date())

    assert run.reevaluated_calls == 1
    assert verdict(stack_env) == ("missing", "no_invitation")
    assert alerts(stack_env) == ["reconciliation.missing"]
    assert (run.counts["expected"], run.counts["missing"], run.counts["pending"]) == (1, 1, 0)


# --- the service layer, in memory ---------------------------------------------------------------------------------


@pytest.fixture
def world() -> World:
    fresh = World()
    fresh.reconciler.clock = Clock(CALL_END + timedelta(seconds=30))
    fresh.reconciler.requests = InMemoryQueue()
    return fresh


def queued(world: World) -> list[tuple[RecorderReportGraceEnded, int]]:
    assert isinstance(world.reconciler.requests, InMemoryQueue)
    return [(RecorderReportGraceEnded.model_validate_json(b), d) for b, d in world.reconciler.requests.messages]


def test_the_grace_is_a_setting_of_15_minutes_by_default_bounded_and_zero_judges_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().reconciliation_recorder_report_grace_seconds == 900 == RECORDER_REPORT_GRACE.total_seconds()
    monkeypatch.setenv("RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS", "0")
    assert Settings().reconciliation_recorder_report_grace_seconds == 0
    monkeypatch.setenv("RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS", "3601")
    with pytest.raises(ValueError):
        Settings()

    world.reconciler.report_grace = timedelta(0)
    world.store_call(call("c1", [party(TRADER), party(CLIENT)]))
    world.reconciler.reconcile_call("c1")
    assert (world.verdict("c1").verdict, world.verdict("c1").reason) == ("missing", "no_invitation")
    assert queued(world) == []


def test_a_reevaluation_that_comes_before_the_grace_ended_schedules_another(world: World) -> None:
    world.store_call(call("c2", [party(TRADER), party(CLIENT)]))
    world.reconciler.handle(stored_request("c2"))

    world.reconciler.clock = Clock(DUE - timedelta(seconds=2))  # the storage service's clock ran ahead of ours
    ((due, _),) = queued(world)
    world.reconciler.handle(parse_request(due.model_dump_json(by_alias=True)))

    assert (world.verdict("c2").verdict, world.verdict("c2").reason) == ("pending", "awaiting_recorder_report")
    assert [(m.due_at, delay) for m, delay in queued(world)] == [
        (due.due_at, 875),
        (due.due_at, 2 + DUE_MARGIN_SECONDS),
    ]
    assert world.alerts() == []


def test_a_failure_to_schedule_the_reevaluation_fails_the_request_so_that_it_is_retried(world: World) -> None:
    world.store_call(call("c3", [party(TRADER), party(CLIENT)]))
    assert isinstance(world.reconciler.requests, InMemoryQueue)
    world.reconciler.requests.fail = True

    with pytest.raises(DependencyUnavailable):
        world.reconciler.handle(stored_request("c3"))
    assert world.verdict("c3").reason == "awaiting_recorder_report"

    world.reconciler.requests.fail = False  # the redelivered message: the verdict is unchanged, the message sent
    (outcome,) = world.reconciler.handle(stored_request("c3"))
    assert outcome.changed == 0 and len(queued(world)) == 1


def test_only_users_no_recorder_reported_on_wait_and_a_user_blocked_at_set_up_is_judged_at_once(world: World) -> None:
    # A recorder reported on the trader (the recording is still being sealed); the other trader's report is late.
    other = "u-trader-2"
    world.snapshots.add(snapshot(other))
    world.add(recording("r4", "c4", TRADER, status="stopped"))
    world.store_call(call("c4", [party(TRADER), party(other)], call_type="groupCall"))
    world.reconciler.reconcile_call("c4")
    assert (world.verdict("c4").verdict, world.verdict("c4").reason) == ("pending", "recording_pending")
    assert (world.verdict("c4", other).verdict, world.verdict("c4", other).reason) == (
        "pending",
        "awaiting_recorder_report",
    )

    # The call record itself says the strict user's call failed at set-up: no report can change that it was
    # not recorded, and no conversation took place (explained).
    world.store_call(call("c5", [party(TRADER), party(CLIENT)], seconds=3, setup_failure="recorder unavailable"))
    world.reconciler.reconcile_call("c5")
    assert (world.verdict("c5").verdict, world.verdict("c5").reason) == ("missing", "call_blocked_by_policy")


def stored_request(call_id: str) -> CallRecordStored:
    return CallRecordStored(call_record_id=call_id, version=1, type="peerToPeer", stored_at="2025-03-03T09:01:30Z")


def test_a_waiting_verdict_is_withdrawn_when_its_user_turns_out_to_need_no_recording(world: World) -> None:
    """A policy change in flight at call time (recording → not recording) makes the user a policy user until it is
    resolved; once the snapshots say the call needed no recording, the verdict that waited (and never alerted) goes,
    as a `policy_unknown` one does — it must not stay `pending` for ever."""
    world.store_call(call("c6", [party(TRADER), party(CLIENT)]))
    world.reconciler.reconcile_call("c6")
    assert world.verdict("c6").reason == "awaiting_recorder_report"

    world.snapshots = InMemoryPolicySnapshotStore(
        [snapshot(TRADER, records=False, since=T0 - timedelta(days=1)), snapshot(CLIENT, records=False)]
    )
    world.reconciler.snapshots = world.snapshots
    (outcome,) = world.reconciler.handle(stored_request("c6"))

    assert outcome.verdicts == [] and f"c6:{TRADER}" not in world.verdicts.verdicts
    assert world.alerts() == []
