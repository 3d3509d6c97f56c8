"""One chaos run: start a stack of its own on free ports, let seeded traffic flow while the fault schedule is carried
out, wait for the calls to end and the stack to settle, check the invariants, print the fault log and the results,
and keep them as JSON in the run's state dir (`chaos-report.json`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from azure.storage.queue import QueueServiceClient

from devstack.chaos.audit import (
    LoggedStack,
    ReadLog,
    check_no_orphan_evidence,
    check_reads_audited,
    pending_access_copies,
)
from devstack.chaos.faults import (
    CONDITIONS,
    FaultCatalogue,
    FaultInjector,
    FaultRecord,
    PlannedFault,
    condition_env,
    plan_conditions,
    plan_faults,
)
from devstack.chaos.invariants import InvariantResult, check_all, orchestrations, read_verdicts
from devstack.chaos.traffic import (
    POLICY_USERS,
    PlacedCall,
    PlannedCall,
    TrafficGenerator,
    TrafficProfile,
    chaos_tenant,
    plan_traffic,
)
from devstack.demo import DemoError, DemoStack, wait_until
from devstack.emulators import REPO_ROOT
from devstack.funchost.queues import PROCESSING_VISIBILITY
from devstack.stack import StackConfig, StackPorts, running
from verbatim.reconciliation.service import DUE_MARGIN_SECONDS

CALL_RECORD_DELAY_SECONDS = 2.0
# Settling: when the call-record back-fill is fired if verdicts are still missing, and what "still running" is.
BACKFILL_AFTER_SECONDS = 45.0
RUNNING = frozenset({"Running", "Pending", "ContinuedAsNew"})
# How far settling may be stretched past its limit while recording orchestrations still make progress.
SETTLE_STRETCH = 3.0
SETTLE_POLL_SECONDS = 3.0


@dataclass(frozen=True)
class ChaosProfile:
    """A run's size: its traffic, its recorder instances, which faults it must include, how long it may settle."""

    name: str
    traffic: TrafficProfile
    recorders: int = 2
    cover: tuple[str, ...] = ()  # faults drawn first (in a seeded order), so a short run has each of them
    lead: tuple[str, ...] = ()  # of those, the ones drawn before the others
    first_fault_at: float = 8.0
    fault_spacing: tuple[float, float] = (6.0, 14.0)  # seconds from the end of one fault to the start of the next
    pause_seconds: tuple[float, float] = (6.0, 15.0)  # how long storage, Cosmos or the Functions host is stopped
    queue_window: float = 10.0  # how long a queue fault waits for a message
    conditions: tuple[str, ...] = CONDITIONS  # the whole-run faults
    settle_seconds: float = 300.0
    # The run's stack waits this long after a call for a recorder's report before judging the call unrecorded
    # (`RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS`, 15 minutes in Azure): longer than any fault here holds a
    # report back — a Functions host or storage paused (at most 15 s), a queue message held back (at most 20 s) —
    # with a margin for a loaded machine's backlog, and short enough that a truly unrecorded call's `missing`
    # comes within the settling (see `settle_limit`). A Functions host kill holds its messages for 10 minutes: a
    # report held so comes after this grace (a `missing` alert, then `reconciliation.resolved` when it is sealed).
    report_grace_seconds: int = 60


PROFILES: dict[str, ChaosProfile] = {
    # `make chaos`: ~6 minutes of traffic, 4 calls at a time, a fault every 6-14 s.
    "full": ChaosProfile("full", TrafficProfile(seconds=360.0, concurrency=4, call_seconds=(12.0, 30.0))),
    # Inside `make test`: 30 s of traffic, the faults the issue names first, each once, 3-6 s apart.
    "ci": ChaosProfile(
        "ci",
        TrafficProfile(seconds=30.0, concurrency=3, call_seconds=(8.0, 12.0)),
        # The Functions host is paused, not killed, here: a killed host's received queue messages come back only
        # after 10 minutes (see `settle_limit`), longer than this run may take. `make chaos` kills it.
        cover=("kill-recorder", "pause-azurite", "graph-503", "pause-functions", "reorder-queue-message"),
        first_fault_at=4.0,
        fault_spacing=(2.0, 4.0),
        pause_seconds=(4.0, 8.0),  # so that the faults fall while calls are up (each is a test of them)
        lead=("kill-recorder",),  # first: the recorder is killed with calls in flight
        queue_window=4.0,
        settle_seconds=150.0,
    ),
}


@dataclass
class ChaosReport:
    seed: int
    profile: str
    started_at: datetime
    calls: list[PlacedCall]
    faults: list[FaultRecord]
    invariants: list[InvariantResult]
    settle_actions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: str = ""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.invariants)

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "profile": self.profile,
            "startedAt": self.started_at.isoformat(),
            "seconds": round(self.seconds, 1),
            "loadAverage": self.load,
            "ok": self.ok,
            "faults": [r.as_json() for r in self.faults],
            "settle": self.settle_actions,
            "calls": [_call_json(c) for c in self.calls],
            "invariants": [r.as_json() for r in self.invariants],
        }


def _call_json(call: PlacedCall) -> dict[str, Any]:
    result = call.result
    return {
        "key": call.planned.scenario.key,
        "kind": call.planned.kind,
        "plannedAt": call.planned.at,
        "seconds": call.planned.seconds,
        "placedAt": call.placed_at.isoformat(),
        "endedAt": call.ended_at.isoformat() if call.ended_at else None,
        "error": call.error,
        "callId": result.call_id if result else None,
        "outcome": result.outcome if result else None,
        "simulator": _sim_summary(call.state),
        "verdicts": [
            {k: v.get(k) for k in ("userPrincipalName", "verdict", "reason", "coverage", "recordingIds")}
            for v in (result.verdicts if result else [])
        ],
    }


def _sim_summary(state: dict[str, Any]) -> dict[str, Any]:
    """What the simulator says happened to a call: its outcome, each person's state, each recorder leg."""
    return {
        "outcome": state.get("outcome"),
        "participants": [
            {k: p.get(k) for k in ("key", "id", "state", "reason", "joinedAt", "leftAt")}
            for c in state.get("conversations", [])
            for p in c.get("participants", [])
        ],
        "recorders": [
            {k: r.get(k) for k in ("observedParticipant", "backend", "state", "reason", "invitedAt", "endedAt")}
            | {"resultInfo": r.get("resultInfo")}
            for r in state.get("recorders", [])
        ],
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def plan(seed: int, profile: ChaosProfile) -> tuple[list[PlannedCall], list[PlannedFault]]:
    """The run's traffic and fault schedule: a pure function of the seed and the profile."""
    config = StackConfig(recorders=profile.recorders)
    recorders = tuple(r.name for r in config.recorder_instances())
    catalogue = FaultCatalogue(
        recorders=recorders,
        first_at=profile.first_fault_at,
        spacing=profile.fault_spacing,
        pause_seconds=profile.pause_seconds,
        cover=profile.cover,
        lead=profile.lead,
        queue_window=profile.queue_window,
    )
    conditions = plan_conditions(seed, recorders, profile.conditions)
    return plan_traffic(seed, profile.traffic), conditions + plan_faults(seed, profile.traffic.seconds, catalogue)


def run_chaos(
    seed: int,
    profile: ChaosProfile,
    *,
    state_dir: Path | None = None,
    schedule: Sequence[PlannedFault] | None = None,
    echo: Callable[[str], None] = print,
) -> ChaosReport:
    calls, planned_faults = plan(seed, profile)
    if schedule is not None:
        planned_faults = list(schedule)
    started_at = datetime.now(UTC)
    state_dir = state_dir or REPO_ROOT / ".devstack" / "chaos" / f"{profile.name}-seed{seed}-{started_at:%Y%m%dT%H%M%S}"
    config = replace(
        StackConfig(
            state_dir=state_dir,
            recorders=profile.recorders,
            tenant_path=chaos_tenant(state_dir / "chaos-tenant.yaml"),
            component_env=condition_env([f for f in planned_faults if f.kind in CONDITIONS]),
            recorder_report_grace_seconds=profile.report_grace_seconds,
        ),
        ports=StackPorts.free(recorders=profile.recorders),
    )
    echo(
        f"chaos: seed {seed}, profile {profile.name}: {len(calls)} calls, {len(planned_faults)} faults; "
        f"state {state_dir}"
    )
    began = time.monotonic()
    with running(config, echo=lambda _: None) as components:
        reads = ReadLog()
        stack = LoggedStack(config, components, echo=echo, reads=reads)
        faults_stack = LoggedStack(config, components, echo=echo, reads=reads)
        traffic_stack = LoggedStack(config, components, echo=echo, reads=reads)
        try:
            _prime(stack)
            traffic = TrafficGenerator(traffic_stack, calls, echo)
            injector = FaultInjector(faults_stack, planned_faults, echo)
            t0 = time.monotonic()
            traffic.start(t0)
            injector.start(t0)
            try:
                _follow(stack, traffic, calls)
                injector.join()
            finally:
                traffic.stop()
                injector.stop()
                injector.resume_all()
            settle = _settle(stack, traffic.placed, settle_limit(profile, injector.log), echo)
            echo("chaos: checking the invariants ...")
            results = check_all(stack, traffic.placed, injector.log)
            still_sealing = [
                str(i["instanceId"]).removeprefix("recording-").split("-part-")[0]
                for i in orchestrations(stack)
                if str(i.get("instanceId", "")).startswith("recording-") and i.get("runtimeStatus") in RUNNING
            ]
            results += [check_no_orphan_evidence(stack, still_sealing), check_reads_audited(stack, reads)]
            report = ChaosReport(
                seed,
                profile.name,
                started_at,
                traffic.placed,
                injector.log,
                results,
                settle,
                time.monotonic() - began,
                load_average(),
            )
        finally:
            for each in (stack, faults_stack, traffic_stack):
                each.close()
    (state_dir / "chaos-report.json").write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
    return report


def settle_limit(profile: ChaosProfile, log: Sequence[FaultRecord]) -> float:
    """How long the run may wait for the stack to settle: the profile's limit, at least the grace for a recorder's
    report and a minute (the last call's unrecorded users are `pending (awaiting_recorder_report)` until the grace
    has ended and its re-evaluation is delivered), or longer after a Functions host was killed — the queue messages
    it had received stay invisible for the listener's 10 minutes before they are delivered again (as in Azure:
    azure-webjobs-sdk#1040; `PROCESSING_VISIBILITY` of the local host)."""
    least = max(profile.settle_seconds, profile.report_grace_seconds + DUE_MARGIN_SECONDS + 60.0)
    kills = [r.ended_at for r in log if r.fault.kind == "kill" and r.fault.target == "functions" and r.ended_at]
    if not kills:
        return least
    since = (datetime.now(UTC) - max(kills)).total_seconds()
    return max(least, PROCESSING_VISIBILITY + 60.0 - since)


def _prime(stack: DemoStack, recorded: Sequence[str] = POLICY_USERS) -> None:
    """What the demo does first, for the run's larger tenant: short call-record delays, and the policy coverage audit
    run once, so that reconciliation knows each user's policy at the time of the first call."""
    users = [u["id"] for u in stack.sim("GET", "/sim/tenant")["users"] if u["userPrincipalName"] in recorded]
    stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": CALL_RECORD_DELAY_SECONDS})
    stack.fire("audit_policy_coverage")
    wait_until(lambda: stack.policies_observed(users), 60, "the policy coverage audit")


def _follow(stack: DemoStack, traffic: TrafficGenerator, calls: Sequence[PlannedCall]) -> None:
    """Follow the placed calls until every planned one is placed and has ended."""
    last_end = max((c.at + c.seconds for c in calls), default=0.0)
    deadline = time.monotonic() + last_end + 180.0
    while time.monotonic() < deadline:
        for placed in list(traffic.placed):
            _refresh(stack, placed)
        if len(traffic.placed) == len(calls) and all(p.result is None or p.ended_at for p in traffic.placed):
            return
        time.sleep(2.0)


def _refresh(stack: DemoStack, placed: PlacedCall) -> None:
    if placed.result is None or placed.ended_at is not None:
        return
    try:
        placed.state = stack.call_state(placed.result)
    except Exception:  # the simulator is never a fault target; a failed poll is retried on the next round
        return
    if placed.state.get("state") == "ended":
        ends = [c["endedAt"] for c in placed.state.get("conversations", []) if c.get("endedAt")]
        placed.ended_at = datetime.fromisoformat(max(ends)) if ends else datetime.now(UTC)


def task_hub_backlog(stack: DemoStack) -> int:
    """Messages in the task hub's control and work-item queues: durable work the host has not done yet (-1 when they
    cannot be read). An orchestration waiting for its activities shows no change of its own while they queue."""
    service = QueueServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    hub = stack.config.task_hub.lower()
    try:
        return sum(
            int(service.get_queue_client(name).get_queue_properties().approximate_message_count or 0)
            for name in (f"{hub}-control-00", f"{hub}-workitems")
        )
    except Exception:  # a paused or busy Azurite: no reading this round
        return -1


def _settle(stack: DemoStack, placed: Sequence[PlacedCall], seconds: float, echo: Callable[[str], None]) -> list[str]:
    """Wait until every policy user of every call has a final verdict, no recording orchestration runs and no sealed
    part's access copies are pending; after 45 s (or half the limit), fire the call-record back-fill (an hourly timer
    in Azure: the net for call records whose change notifications were lost).

    The access copies are made and sealed by the `access-copies` trigger after the recording's orchestration has
    ended, so a final verdict and a completed orchestration do not mean they are done: a Functions host killed with
    deliveries in hand leaves them (a copy written, not sealed yet) until the messages come back 10 minutes later
    (seed 1 at 16:18, two `access.opus` + `access.json` judged orphans 53 s into settling)."""
    actions: list[str] = []
    started = time.monotonic()

    def settled() -> bool:
        done = True
        for call in placed:
            if call.result is None or not call.planned.policy_users:
                continue
            try:
                read_verdicts(stack, call.result)
            except (DemoError, httpx.TransportError):  # kept in the run's API errors; asked again next round
                return False
            for upn in call.planned.policy_users:
                verdict = call.result.verdict_of(upn)
                done = done and verdict is not None and verdict.get("verdict") != "pending"
        return done

    progress: dict[str, str] = {}  # running orchestration -> its last update, to tell slow from stuck
    moved = [time.monotonic()]
    backlog = [task_hub_backlog(stack)]

    def sealing() -> bool:
        running = {
            str(i["instanceId"]): str(i.get("lastUpdatedTime"))
            for i in orchestrations(stack)
            if str(i.get("instanceId", "")).startswith("recording-") and i.get("runtimeStatus") in RUNNING
        }
        waiting = task_hub_backlog(stack)
        if (
            any(progress.get(key) != value for key, value in running.items())
            or len(running) < len(progress)
            or waiting != backlog[0]  # the host works through its task hub's queues: activities still run
        ):
            moved[0] = time.monotonic()
        backlog[0] = waiting
        progress.clear()
        progress.update(running)
        return bool(running)

    copies: list[list[str]] = [[]]  # the parts whose access copies were pending in the last round

    def copies_pending() -> bool:
        try:
            pending = pending_access_copies(stack)
        except Exception:  # Cosmos not answering this round: not known to be done; asked again next round
            return True
        if pending != copies[0]:
            moved[0] = time.monotonic()  # copies sealed (or new ones asked for): the stack still works
        copies[0] = pending
        return bool(pending)

    echo("chaos: traffic over; waiting for every verdict ...")
    backfilled = False
    limit = seconds
    while time.monotonic() - started < limit:
        busy = sealing()  # every round: it also notes whether the orchestrations still progress
        copying = copies_pending()  # every round, likewise
        if settled() and not busy:
            if not copying:
                actions.append(f"settled after {time.monotonic() - started:.0f} s")
                return actions
            if not any(a.startswith("every verdict final") for a in actions):
                actions.append(
                    f"every verdict final at +{time.monotonic() - started:.0f} s; waited for "
                    f"{len(copies[0])} access cop{'y' if len(copies[0]) == 1 else 'ies'} still pending "
                    f"({_some(copies[0]) or 'Cosmos not answering'})"
                )
        if not backfilled and time.monotonic() - started > min(seconds / 2, BACKFILL_AFTER_SECONDS):
            stack.fire("backfill_call_records")
            backfilled = True
            actions.append(f"fired backfill_call_records at +{time.monotonic() - started:.0f} s of settling")
        elapsed = time.monotonic() - started
        if elapsed >= limit - 3.0 and limit < seconds * SETTLE_STRETCH and time.monotonic() - moved[0] < 60.0:
            # Recording orchestrations are still moving (a loaded machine seals slowly): slow is not stuck.
            limit = min(seconds * SETTLE_STRETCH, limit + 60.0)
            if not any(a.startswith("extended") for a in actions):
                actions.append(f"extended past {seconds:.0f} s while orchestrations or access copies progressed")
        time.sleep(SETTLE_POLL_SECONDS)
    still = f" ({len(copies[0])} access copies still pending: {_some(copies[0])})" if copies[0] else ""
    actions.append(f"not settled after {limit:.0f} s{still}")
    return actions


def _some(names: Sequence[str], shown: int = 5) -> str:
    """The first few of a list, and how many more."""
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def render(report: ChaosReport) -> str:
    """The fault log, the calls and the invariant results, as `make chaos` prints them."""
    lines = [
        "",
        f"Chaos run: seed {report.seed}, profile {report.profile}, {len(report.calls)} calls, "
        f"{len(report.faults)} faults, {report.seconds:.0f} s, load average {report.load}",
        "",
        "Fault log:",
    ]
    for record in report.faults:
        took = (record.ended_at - record.started_at).total_seconds() if record.ended_at else 0.0
        lines.append(
            f"  +{record.offset:6.1f} s  {record.started_at:%H:%M:%S.%f}"[:-3]
            + f"  {took:5.1f} s  {record.fault.describe():<58} {record.note}"
            + (f"  ERROR {record.error}" if record.error else "")
        )
    lines += ["", "Calls:"]
    for call in report.calls:
        verdicts = ", ".join(
            f"{str(v.get('userPrincipalName', '?')).split('.')[0]} {v.get('verdict')}"
            + (f" ({v.get('reason')})" if v.get("reason") not in (None, "recorded") else "")
            for v in (call.result.verdicts if call.result else [])
        )
        outcome = call.result.outcome if call.result else f"not placed: {call.error}"
        lines.append(
            f"  {call.planned.scenario.key:<20} +{call.planned.at:6.1f} s {call.planned.seconds:5.1f} s  "
            f"{outcome:<16} {verdicts or '-'}"
        )
    lines += ["", "Settling: " + "; ".join(report.settle_actions), "", "Invariants:"]
    for result in report.invariants:
        lines.append(
            f"  {'PASS' if result.ok else 'FAIL'}  {result.name:<32} ({result.checked} checked)  {result.promise}"
        )
        lines += [f"        - {violation}" for violation in result.violations]
    lines.append("")
    lines.append("chaos: every invariant holds" if report.ok else "chaos: INVARIANTS VIOLATED")
    return "\n".join(lines)
