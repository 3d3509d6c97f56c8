"""The faults of a chaos run: a schedule (seeded random, or scripted from a JSON file) and the injector that
carries it out while traffic flows, logging every fault with its wall-clock start and end.

Process faults act on the process group of a component this run's stack started, by its PID, never by name:
`kill` is SIGKILL then a restart on the same ports and state dir (`devstack.stack.restart(crash=True)`, as a
service manager would), `pause` is SIGSTOP for N seconds then SIGCONT. The other faults are the simulator's own
(`POST /sim/faults`, devstack/simulator/README.md, Faults): Graph 429/503 on the call-records API, duplicated
change notifications, and change notifications dropped for a window."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devstack.demo import DemoStack
from devstack.stack import restart
from verbatim.platform import layout

FaultKind = Literal[
    "kill",
    "pause",
    "graph-errors",
    "duplicate-notifications",
    "drop-notifications",
    "duplicate-queue-message",
    "reorder-queue-message",
    "poison-message",
    "clock-skew",
    "spill-full",
]
FAULT_KINDS: tuple[str, ...] = (
    "kill",
    "pause",
    "graph-errors",
    "duplicate-notifications",
    "drop-notifications",
    "duplicate-queue-message",
    "reorder-queue-message",
    "poison-message",
    "clock-skew",
    "spill-full",
)
# Faults that hold for the whole run: applied to the components' environment when the stack starts (and kept by
# every restart), logged at +0 s.
CONDITIONS: tuple[str, ...] = ("clock-skew", "spill-full")
# libfaketime (Debian `libfaketime`, scripts/apt-packages.txt): shifts a process's wall clock (`time.time`,
# `datetime.now`) by a fixed offset and leaves its monotonic clock alone.
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
# What a skewed component's Python loads at start-up: its `time.sleep` made to work under libfaketime (the module's
# docstring says why).
FAKETIME_SITE = Path(__file__).resolve().parent / "faketime"
# Clock offsets of a component against the others, within what docs/resilience.md (Clocks) documents for a scale
# set kept by the Windows time service: tens of milliseconds.
SKEW_SECONDS = (0.02, 0.1)
# The disk buffer of a recorder under `spill-full`: a few blocks (a block is ~1.4 s of FLAC, ~20 KB), so a storage
# pause overflows it.
SPILL_BUDGET_BYTES = (24_000, 96_000)
# The queues between our own processes whose messages a fault doubles or poisons (verbatim.platform.layout).
FAULT_QUEUES: tuple[str, ...] = (
    layout.RECORDER_EVENTS_QUEUE,
    layout.CALLRECORD_NOTIFICATIONS_QUEUE,
    layout.RECONCILIATION_REQUESTS_QUEUE,
)
POISON_MARKER = "chaos-poison"
PROCESS_FAULTS = ("kill", "pause")
# What a random schedule draws from (a recorder kill twice as often: it is the fault the product is built around).
CHOICES: tuple[str, ...] = (
    "kill-recorder",
    "kill-recorder",
    "kill-functions",
    "pause-azurite",
    "pause-cosmos",
    "pause-functions",
    "pause-recorder",
    "graph-503",
    "graph-429",
    "duplicate-notifications",
    "drop-notifications",
    "duplicate-queue-message",
    "reorder-queue-message",
    "poison-message",
)
# The Graph paths the call-record pipeline reads (not the calling API: a 503 on `answer` is a refused call).
CALL_RECORDS_PATH = "/v1.0/communications/callRecords*"


@dataclass(frozen=True)
class PlannedFault:
    """One fault of a schedule: what, on which component, when (seconds after the traffic starts), how long."""

    at: float
    kind: str
    target: str  # a stack component (recorder, recorder-2, functions, azurite, cosmos) or `graph` / `notifications`
    seconds: float = 0.0  # pause: how long stopped; drop-notifications: the window
    status: int | None = None  # graph-errors: 429 or 503
    count: int | None = None  # graph-errors, duplicate-notifications: how many

    def describe(self) -> str:
        if self.kind == "pause":
            return f"SIGSTOP {self.target} for {self.seconds:g} s, then SIGCONT"
        if self.kind == "kill":
            return f"SIGKILL {self.target}, then restart it"
        if self.kind == "graph-errors":
            return f"Graph {self.status} on the next {self.count} call-record requests"
        if self.kind == "duplicate-notifications":
            return f"the next {self.count} change notifications delivered twice"
        if self.kind == "clock-skew":
            return f"{self.target}'s wall clock {self.seconds * 1000:+.0f} ms off the others, the whole run"
        if self.kind == "spill-full":
            return f"{self.target}'s disk buffer limited to {self.count} bytes, the whole run"
        if self.kind == "duplicate-queue-message":
            return f"the next message seen on {self.target} delivered twice"
        if self.kind == "reorder-queue-message":
            return f"the next message seen on {self.target} held back {self.count} s: delivered after later ones"
        if self.kind == "poison-message":
            return f"an undecodable message put on {self.target}"
        return f"change notifications dropped for {self.seconds:g} s"

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> PlannedFault:
        fault = cls(**item)
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r} (one of {', '.join(FAULT_KINDS)})")
        return fault


@dataclass(frozen=True)
class FaultCatalogue:
    """Which faults a random schedule draws from, and how far apart they fall."""

    recorders: tuple[str, ...]
    first_at: float = 8.0
    spacing: tuple[float, float] = (6.0, 14.0)
    pause_seconds: tuple[float, float] = (6.0, 15.0)
    recorder_pause_seconds: tuple[float, float] = (2.0, 4.0)  # under the platform's 5-s answer window
    cover: tuple[str, ...] = ()  # drawn first, each once, in a seeded order
    lead: tuple[str, ...] = ()  # of those, drawn before the others (a short run's recorder kill hits calls up)
    queue_window: float = 10.0  # how long a queue fault waits for a message to double or hold back

    def draw(self, rng: random.Random, at: float, choice: str | None = None) -> PlannedFault:
        choice = choice or rng.choice(CHOICES)
        at = round(at, 1)
        if choice == "kill-recorder":
            return PlannedFault(at, "kill", rng.choice(self.recorders))
        if choice == "kill-functions":
            return PlannedFault(at, "kill", "functions")
        if choice == "pause-functions":
            return PlannedFault(at, "pause", "functions", round(rng.uniform(*self.pause_seconds), 1))
        if choice == "pause-recorder":
            return PlannedFault(
                at, "pause", rng.choice(self.recorders), round(rng.uniform(*self.recorder_pause_seconds), 1)
            )
        if choice.startswith("pause-"):
            return PlannedFault(at, "pause", choice.removeprefix("pause-"), round(rng.uniform(*self.pause_seconds), 1))
        if choice.startswith("graph-"):
            return PlannedFault(at, "graph-errors", "graph", status=int(choice[-3:]), count=rng.randint(3, 8))
        if choice == "duplicate-notifications":
            return PlannedFault(at, "duplicate-notifications", "notifications", count=rng.randint(2, 5))
        if choice in ("duplicate-queue-message", "poison-message"):
            window = self.queue_window if choice.startswith("dup") else 0.0
            return PlannedFault(at, choice, rng.choice(FAULT_QUEUES), seconds=window)
        if choice == "reorder-queue-message":
            return PlannedFault(
                at, choice, rng.choice(FAULT_QUEUES), seconds=self.queue_window, count=rng.randint(5, 20)
            )
        return PlannedFault(at, "drop-notifications", "notifications", seconds=round(rng.uniform(10.0, 30.0), 1))


def plan_conditions(seed: int, recorders: Sequence[str], kinds: Sequence[str] = CONDITIONS) -> list[PlannedFault]:
    """The whole-run faults of a seed: one recorder instance's and the Functions host's clocks skewed (each by
    20-100 ms, either way), and one recorder instance's disk buffer small enough for a storage pause to fill."""
    rng = random.Random(seed * 104729 + 7)  # noqa: S311 - reproducible, apart from the schedule's generator
    conditions = [
        PlannedFault(0.0, "clock-skew", target, seconds=round(rng.choice((-1, 1)) * rng.uniform(*SKEW_SECONDS), 3))
        for target in (rng.choice(tuple(recorders)), "functions")
    ]
    conditions.append(
        PlannedFault(0.0, "spill-full", rng.choice(tuple(recorders)), count=rng.randint(*SPILL_BUDGET_BYTES))
    )
    return [c for c in conditions if c.kind in kinds]


def condition_env(conditions: Sequence[PlannedFault]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """`StackConfig.component_env` for the whole-run faults."""
    env: dict[str, dict[str, str]] = {}
    for fault in conditions:
        if fault.kind == "clock-skew":
            if not LIBFAKETIME.exists():
                raise FileNotFoundError(f"{LIBFAKETIME} (Debian package libfaketime) is needed to skew a clock")
            env.setdefault(fault.target, {}).update(
                {
                    "LD_PRELOAD": str(LIBFAKETIME),
                    "FAKETIME": f"{fault.seconds:+.3f}",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                    "FAKETIME_NO_CACHE": "1",
                    "PYTHONPATH": str(FAKETIME_SITE),
                }
            )
        elif fault.kind == "spill-full":
            env.setdefault(fault.target, {})["RECORDER_SPILL_MAX_BYTES"] = str(fault.count)
    return tuple((name, tuple(sorted(pairs.items()))) for name, pairs in sorted(env.items()))


def plan_faults(seed: int, seconds: float, catalogue: FaultCatalogue) -> list[PlannedFault]:
    """A seeded schedule: one fault at a time from `first_at`, each a random spacing after the previous one has
    ended, until `seconds` (the end of the traffic)."""
    rng = random.Random(seed * 7919 + 23)  # noqa: S311 - reproducible, apart from the traffic's generator
    first = list(catalogue.cover)
    rng.shuffle(first)
    first.sort(key=lambda choice: choice not in catalogue.lead)  # stable: the rest keep their seeded order
    faults = []
    at = catalogue.first_at
    while at < seconds or first:
        fault = catalogue.draw(rng, at, first.pop(0) if first else None)
        faults.append(fault)
        at += fault.seconds + rng.uniform(*catalogue.spacing)
    return faults


def load_schedule(path: Path) -> list[PlannedFault]:
    """A scripted schedule: a JSON list of faults, e.g. `[{"at": 10, "kind": "kill", "target": "recorder"}]`."""
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{path}: a schedule is a JSON list of faults")
    return sorted((PlannedFault.from_json(item) for item in items), key=lambda f: f.at)


@dataclass
class FaultRecord:
    """One fault as it happened: the log line of a run."""

    fault: PlannedFault
    started_at: datetime
    ended_at: datetime | None = None
    offset: float = 0.0  # seconds after the traffic started
    pids: list[int] = field(default_factory=list)  # the process group hit (and, after a kill, the new one)
    note: str = ""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self.fault),
            "startedAt": self.started_at.isoformat(),
            "endedAt": self.ended_at.isoformat() if self.ended_at else None,
            "offset": round(self.offset, 2),
            "pids": self.pids,
            "note": self.note,
            "error": self.error,
        }


class FaultInjector:
    """Carries out a schedule on a thread of its own; every fault is logged (`log`) as it starts and ends."""

    def __init__(self, stack: DemoStack, schedule: Sequence[PlannedFault], echo: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.schedule = list(schedule)
        self.echo = echo
        self.log: list[FaultRecord] = []
        self._paused: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self._t0 = 0.0

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread.start()

    def stop(self) -> None:
        """No further fault starts; one under way is finished (a paused process is always resumed)."""
        self._stop.set()

    def join(self) -> None:
        self._thread.join()
        self.resume_all()

    def resume_all(self) -> None:
        for group in list(self._paused):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGCONT)
            self._paused.discard(group)

    def _run(self) -> None:
        for fault in self.schedule:
            if fault.kind in CONDITIONS:  # applied when the stack started: logged for the whole run
                now = datetime.now(UTC)
                self.log.append(FaultRecord(fault, now, now, note="since the stack started"))
                continue
            delay = self._t0 + fault.at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            record = FaultRecord(fault, datetime.now(UTC), offset=time.monotonic() - self._t0)
            self.log.append(record)
            self.echo(f"chaos: +{record.offset:6.1f} s  {fault.describe()}")
            try:
                self._inject(fault, record)
            except Exception as error:  # logged with the fault; the run goes on and the report shows it
                record.error = f"{type(error).__name__}: {error}"
                self.echo(f"chaos: the fault failed: {record.error}")
            finally:
                record.ended_at = datetime.now(UTC)

    def _group(self, name: str) -> int:
        component = next((c for c in self.stack.components if c.name == name), None)
        if component is None or component.process.pid is None:
            raise LookupError(f"no running component named {name!r} in this run's stack")
        return component.process.pid

    def _inject(self, fault: PlannedFault, record: FaultRecord) -> None:
        if fault.kind == "kill":
            record.pids.append(self._group(fault.target))
            restart(self.stack.components, fault.target, self.stack.config, crash=True)
            record.pids.append(self._group(fault.target))
            record.note = f"pid {record.pids[0]} killed; restarted as pid {record.pids[1]}"
        elif fault.kind == "pause":
            group = self._group(fault.target)
            record.pids.append(group)
            os.killpg(group, signal.SIGSTOP)
            self._paused.add(group)
            try:
                time.sleep(fault.seconds)
            finally:
                os.killpg(group, signal.SIGCONT)
                self._paused.discard(group)
            record.note = f"pid {group} stopped {fault.seconds:g} s"
        elif fault.kind == "graph-errors":
            body: dict[str, Any] = {
                "kind": "http",
                "path": CALL_RECORDS_PATH,
                "status": fault.status,
                "count": fault.count,
            }
            if fault.status == 429:
                body["retryAfterSeconds"] = 2
            record.note = f"/sim/faults {self.stack.sim('POST', '/sim/faults', body)['id']}"
        elif fault.kind == "duplicate-notifications":
            added = self.stack.sim("POST", "/sim/faults", {"kind": "duplicateNotifications", "count": fault.count})
            record.note = f"/sim/faults {added['id']}"
        elif fault.kind == "drop-notifications":
            added = self.stack.sim("POST", "/sim/faults", {"kind": "dropDeliveries", "durationSeconds": fault.seconds})
            record.note = f"/sim/faults {added['id']}"
            time.sleep(fault.seconds)  # one fault at a time: the window is this fault's duration
        elif fault.kind == "duplicate-queue-message":
            record.note = self._duplicate_queue_message(fault)
        elif fault.kind == "reorder-queue-message":
            record.note = self._reorder_queue_message(fault)
        elif fault.kind == "poison-message":
            marker = f"{POISON_MARKER}-{uuid.uuid4()}"
            poison = json.dumps({"schema": "chaos.poison", "marker": marker, "payload": "{not json"})
            self._queue(fault.target, encoded=True).send_message(poison)
            record.note = marker
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _queue(self, name: str, *, encoded: bool) -> QueueClient:
        service = QueueServiceClient.from_connection_string(self.stack.config.ports.azurite.connection_string)
        if encoded:  # base64 text, as the app's queue clients write (verbatim.platform.queues)
            return service.get_queue_client(
                name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
            )
        return service.get_queue_client(name, message_encode_policy=None, message_decode_policy=None)

    def _reorder_queue_message(self, fault: PlannedFault) -> str:
        """Take the first message seen on the queue within the fault's window (before the host does) and put it
        back, as stored, to become visible `count` seconds later: the messages sent after it are delivered first.
        It is sent again before the original is deleted, so it is delayed, never lost."""
        queue = self._queue(fault.target, encoded=False)
        hold = int(fault.count or 10)
        deadline = time.monotonic() + fault.seconds
        while time.monotonic() < deadline:
            for message in queue.receive_messages(max_messages=1, visibility_timeout=30):
                queue.send_message(message.content, visibility_timeout=hold)
                queue.delete_message(message)
                return f"message {message.id} (dequeued {message.dequeue_count}x) held back {hold} s"
            time.sleep(0.05)
        return f"no message seen on {fault.target} in {fault.seconds:g} s: nothing reordered"

    def _duplicate_queue_message(self, fault: PlannedFault) -> str:
        """Copy the first message seen on the queue (as stored) within the fault's window: delivered twice."""
        queue = self._queue(fault.target, encoded=False)
        deadline = time.monotonic() + fault.seconds
        while time.monotonic() < deadline:
            peeked = queue.peek_messages(max_messages=1)
            if peeked:
                queue.send_message(peeked[0].content)
                return f"message {peeked[0].id} sent again"
            time.sleep(0.1)
        return f"no message seen on {fault.target} in {fault.seconds:g} s: nothing doubled"
