"""Invitation storm (issue 21): how fast recorder instances answer when many policy-recording invitations arrive
at once — a meeting where many policy users join together, or every call after a failover — against the
platform's 5-second answer budget for policy-based recording (Graph `call: answer`: "within 5 seconds for
policy-based recording"; a late answer blocks a strict user's call).

    .venv/bin/python benchmarks/invitation_storm.py [--invitations 200] [--instances 2] [--runs 3] [--layout split]
        [--platform graph-process|one-loop]

Each run starts fresh recorder processes (the real recorder, `python -m recorder_vm`) on one private Azurite and
the test-side Teams platform (`devstack.testkit.teams_platform.FakePlatform`: signed platform JWTs on every
notification, Graph over TLS, the answer timed where it arrives). The incoming-call notifications are spread
round robin over the instances, as the load balancer in front of a recorder application does, and all posted at
once; latency is from the start of the POST to the answer reaching Graph — the platform's clock for the 5-s window,
which starts when it sends the invitation (each notification's platform token is signed and its body serialised
before the storm starts: Teams does that on its own machines, not on the recorder's). As Teams does, every answered
call is then established on the answer's callbackUri (`establishing`, `established`), and the recorder reports
`updateRecordingStatus(recording)`, publishes `recording.started` and starts the capture — inside the storm, while
later invitations still wait for their answers (`--answer-only`: the calls are left unestablished, as the figures
before 2026-12-07 14:30 UTC were taken; no media flows either way). Besides latency, each storm
reports the CPU the recorder processes used for it per invitation, and the CPU of this process (the platform's side:
posting the notifications, Graph receiving the answers): CPU per invitation moves far less with the neighbours' load
than wall-clock latency does. In the same run, as baselines:

- `single`: one invitation at a time to one instance (no contention: what one answer costs on this machine);
- `one instance`: the same storm to one instance (what the second instance buys).

The platform's side (`--platform`, printed with the figures):

- `graph-process` (the default since 2026-12-07 21:00 UTC): Graph — FakePlatform's own routes and handlers, the key
  set and token endpoint, TLS, unchanged — runs in a process of its own, which does nothing else; each answer is
  stamped there, by the same handler line as before, and reported to this process over a pipe, whose loop posts
  Teams' notifications (incoming, then `establishing`/`established` on the answer's callbackUri) to the same
  addresses with the same signed token. Both processes are the platform (on CPU 0 in `split`), and the platform CPU
  column counts both. Why this is closer to Teams: there, the service that receives a bot's `answer` is not the one
  that sends the notifications, and neither waits for the other; with one loop an answer that had reached the
  platform's socket waited — unstamped — while that loop posted other calls' notifications, so its latency
  included the platform's own queue. The latency itself is measured as before (from the start of the POST to the
  answer's stamp); only where and by whom the answer is stamped changed. Each storm also prints, p99: when the
  driver's loop learnt of each answer (how late a loop that also posts the notifications sees it), and the answer
  from when the notification's request headers were written to the socket (aiohttp's trace), which leaves out the
  driver's own queue of 200 POSTs (in Teams, no one loop sends a storm's notifications one after another).
- `one-loop`: one event loop (FakePlatform's thread) posts the notifications and serves Graph, as every figure before
  2026-12-07 21:00 UTC was taken.

Each storm also prints the recorders' own answer p99 (/admin/stats `answer_ms`: from the notification reaching the
recorder's handler to Graph's reply to its `answer`, the highest of the instances, warm-up answers included): the
platform's figure minus that is the time before the recorder's handler ran — the notification's POST and the
recorder's own receive queue.

Before each measurement 5 invitations warm the instances up (as a running recorder has answered calls before; the
recorder opens its Graph connections at start-up by itself). Each storm also reports how many connections the
recorders opened to Graph during it (from /admin/stats; "n/a" for a recorder that does not count them).

Where the processes run (`--layout`, printed with the figures):

- `shared` (the default, and every figure before 2026-12-07 18:00 UTC): everything on every core of this machine —
  the recorders, and the platform's side (this process: the simulated Teams and Graph, the storm driver; Azurite).
  In Azure the platform, Graph and Storage run on Microsoft's machines, not on the recorder VM, so this layout
  charges the recorders' cores with the platform's work too: an upper bound on what the recorder VM sees.
- `split`: the platform's side pinned to the first CPU this process may use, every recorder instance to the others
  (`os.sched_setaffinity`, `taskset`), so the recorders' figures are not the platform's. On a 2-core machine the
  instances share one core, which is less than the scale set gives them (a VM, and so its cores, per instance).

Every run prints its own figures; the summary gives the median of the runs and the spread (lowest
to highest) with the load average, since on a shared machine wall-clock latency moves with the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.emulators import AzuritePorts, azurite  # noqa: E402
from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402
from devstack.testkit.teams_platform import CallRecord, FakePlatform  # noqa: E402
from recorder_vm import launch_argv  # noqa: E402

BUDGET_SECONDS = 5.0  # Graph `call: answer`: policy-based recording
GOAL_P99_SECONDS = 0.2  # issue 21's goal on this machine
PLATFORMS = {
    "graph-process": "Graph (answers, recording status, key set, tokens) in a process of its own, each answer "
    "stamped there; Teams' notifications posted from the benchmark's process",
    "one-loop": "one event loop posts Teams' notifications and serves Graph, each answer stamped on that loop "
    "(the figures before 2026-12-07 21:00 UTC)",
}


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU these processes have used so far (Linux: /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / ticks


class Driver(FakePlatform):
    """Teams' side when Graph runs in its own process: posts the notifications from this process's loop (signed with
    the platform's key, to the same addresses) and learns of answers and recording statuses from the Graph process.
    It serves nothing itself: `recorder_env()` names the Graph process (same port, same key)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.seen_at: dict[str, float] = {}  # when this loop learnt of each answer (the one-loop stamp, roughly)
        self.sent_at: dict[int, float] = {}  # id of a raw body posted -> when its request's headers were written
        self.graph_pid: int | None = None
        self._state_dir = state_dir
        self._graph: subprocess.Popen[bytes] | None = None
        self._pending = b""

    def start(self) -> None:
        key_pem = self.key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Inherits this process's CPU affinity (split layout: CPU 0); stops when its stdin closes.
        self._graph = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("storm_graph.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self.graph_pid = self._graph.pid
        assert self._graph.stdin is not None and self._graph.stdout is not None
        settings = {"state_dir": str(self._state_dir), "port": self.port, "key": key_pem.decode(), "kid": self.key.kid}
        self._graph.stdin.write(json.dumps(settings).encode() + b"\n")
        self._graph.stdin.flush()
        if json.loads(self._graph.stdout.readline() or b"null") != ["ready"]:
            self.stop()
            raise RuntimeError("the Graph process did not start")
        os.set_blocking(self._graph.stdout.fileno(), False)
        super().start()

    def stop(self) -> None:
        try:
            if self._thread.is_alive():
                super().stop()
        finally:
            if self._graph is not None:
                assert self._graph.stdin is not None
                with suppress(OSError):
                    self._graph.stdin.close()
                try:
                    self._graph.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._graph.kill()
                    self._graph.wait(timeout=5)

    async def _start(self) -> None:
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(self._headers_sent)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), trace_configs=[trace])
        assert self._graph is not None and self._graph.stdout is not None
        asyncio.get_running_loop().add_reader(self._graph.stdout.fileno(), self._on_reports)

    async def post(self, url: str, body: Any, *, token: str | None = None, raw: bytes | None = None) -> int:
        """FakePlatform.post, and when `raw` is given, the time its request's headers were written to the socket
        (`sent_at`, keyed by the body's id): when the platform actually sent it, after this loop's own queue."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {token or self.token()}", "Content-Type": "application/json"}
        data = raw if raw is not None else json.dumps(body).encode()
        context = None if raw is None else id(raw)
        async with self._session.post(url, data=data, headers=headers, ssl=False, trace_request_ctx=context) as reply:
            await reply.read()
            return reply.status

    async def _headers_sent(
        self, _session: aiohttp.ClientSession, context: SimpleNamespace, _params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        if context.trace_request_ctx is not None:
            self.sent_at.setdefault(context.trace_request_ctx, time.monotonic())

    async def _stop(self) -> None:
        assert self._graph is not None and self._graph.stdout is not None
        asyncio.get_running_loop().remove_reader(self._graph.stdout.fileno())
        await super()._stop()

    def _on_reports(self) -> None:
        """Read the Graph process's reports: one JSON array a line (storm_graph.py)."""
        assert self._graph is not None and self._graph.stdout is not None
        with suppress(BlockingIOError):
            self._pending += os.read(self._graph.stdout.fileno(), 1 << 16)
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            kind, call_id, *rest = json.loads(line)
            record = self._record(call_id)
            if kind == "answer":
                record.answered_at, record.answer = rest[0], {"callbackUri": rest[1]}
                self.seen_at[call_id] = time.monotonic()
                record.answer_event.set()
            elif kind == "reject":
                record.rejected = rest[0] or {}
                record.answer_event.set()
            elif kind == "status":
                record.statuses.append(rest[0])
                record.status_event.set()

    def own_pids(self) -> list[int]:
        return [] if self.graph_pid is None else [self.graph_pid]


@dataclass
class Storm:
    """One storm's answers (seconds, sorted), how many were rejected (busy) and how many got no answer in 30 s."""

    latencies: list[float]
    rejected: int
    unanswered: int
    seconds: float  # wall clock from the first POST to the last answer (and, when established, the last status)
    recording: int = 0  # calls whose updateRecordingStatus(recording) reached Graph
    recorder_cpu: float = 0.0  # CPU seconds the recorder processes used during the storm, per invitation
    platform_cpu: float = 0.0  # CPU seconds of this process (the platform's side) during the storm, per invitation
    graph_connections: int | None = None  # connections the recorders opened to Graph during the storm
    recorder_p99: float | None = None  # the recorders' own answer p99 (Instances.answer_p99)
    seen: list[float] = field(default_factory=list)  # graph-process: answers as the driver's loop learnt of them
    from_send: list[float] = field(default_factory=list)  # graph-process: answers from the notification's headers sent

    def q(self, quantile: float, values: list[float] | None = None) -> float:
        values = (self.latencies if values is None else values) or [float("inf")]
        return values[min(len(values) - 1, int(quantile * (len(values) - 1) + 0.5))]


@dataclass
class RunResult:
    storm: Storm
    one_instance: Storm
    single: Storm
    load: float


@dataclass
class Instances:
    """Running recorder processes: their base URLs and process ids."""

    urls: list[str]
    pids: list[int]

    def cpu_seconds(self) -> float:
        """User and system CPU the recorder processes have used so far."""
        return cpu_seconds(self.pids)

    def answer_p99(self) -> float | None:
        """The recorders' own view: the highest of the instances' answer p99 (/admin/stats `answer_ms`, from the
        notification reaching the recorder's handler to Graph's reply to its `answer`; since start-up, so the
        warm-up's answers are among them), in seconds."""
        worst: float | None = None
        for url in self.urls:
            with urllib.request.urlopen(f"{url}/admin/stats", timeout=10) as response:  # noqa: S310 - loopback
                p99 = json.load(response).get("answer_ms", {}).get("p99")
            if p99 is not None:
                worst = max(worst or 0.0, p99 / 1000)
        return worst

    def graph_connections(self) -> int | None:
        """Connections the recorders have opened to Graph so far (None when a recorder does not count them)."""
        total = 0
        for url in self.urls:
            with urllib.request.urlopen(f"{url}/admin/stats", timeout=10) as response:  # noqa: S310 - loopback
                opened = json.load(response).get("graph_connections_opened")
            if opened is None:
                return None
            total += opened
        return total


@contextmanager
def recorders(
    count: int, fake: FakePlatform, connection: str, root: Path, capacity: int, cpus: str | None
) -> Iterator[Instances]:
    """`count` recorder processes (own ports, state and instance id), each taking up to `capacity` calls (the
    default, 100, would refuse part of a storm to one instance as busy: latency is what is measured here, not
    the capacity limit); on the CPUs `cpus` (a `taskset --cpu-list` list) when given."""
    with ExitStack() as stack:
        urls: list[str] = []
        pids: list[int] = []
        for index in range(1, count + 1):
            port = free_port()
            env = {
                **fake.recorder_env(),
                "AzureWebJobsStorage": connection,
                "RECORDINGS_STORAGE": connection,
                "PYTHONPATH": str(ROOT),
                "VERBATIM_LOG_LEVEL": "WARNING",
                "RECORDER_MAX_CONCURRENT_CALLS": str(capacity),
            }
            argv = launch_argv(
                port=port,
                media_port=free_port(),
                state_dir=root / f"recorder-{index}-{uuid.uuid4().hex[:6]}",
                instance_id=f"recorder-{index}",
            )
            process = ManagedProcess(
                name=f"recorder-{index}",
                argv=argv if cpus is None else ["taskset", "--cpu-list", cpus, *argv],  # taskset execs: same pid
                ready=http_ready(f"http://127.0.0.1:{port}/health", ok=lambda status: status == 200),
                env=env,
                cwd=ROOT,
                log_path=root / f"recorder-{index}.log",
            )
            stack.enter_context(process)
            urls.append(f"http://127.0.0.1:{port}")
            assert process.pid is not None
            pids.append(process.pid)
        yield Instances(urls, pids)


def storm(
    fake: FakePlatform | Driver, instances: Instances, invitations: int, *, at_once: bool = True, establish: bool = True
) -> Storm:
    """Post `invitations` incoming calls round robin over the instances (all at once, or one after another); with
    `establish`, each answered call is established on its callbackUri, as Teams does, until its recording status."""
    urls = instances.urls
    token = fake.token()  # signed once, before the clock starts (the platform's work, on its own machines)
    calls = [str(uuid.uuid4()) for _ in range(invitations)]
    # Serialised before the clock starts, like the token: the platform's work, on its own machines.
    bodies = {call_id: json.dumps(fake.incoming_notification(call_id)).encode() for call_id in calls}
    states = {
        call_id: [
            json.dumps(fake.call_notification(call_id, state)).encode() for state in ("establishing", "established")
        ]
        for call_id in calls
    }

    async def one(url: str, call_id: str) -> CallRecord:
        record = fake.calls.setdefault(call_id, CallRecord(call_id))
        record.invited_at = time.monotonic()
        status = await fake.post(f"{url}/api/calling", None, token=token, raw=bodies[call_id])
        assert status == 202, status
        with suppress(TimeoutError):
            await asyncio.wait_for(record.answer_event.wait(), 30)
        if establish and record.answer is not None:
            for body in states[call_id]:
                status = await fake.post(record.answer["callbackUri"], None, token=token, raw=body)
                assert status == 202, status
            with suppress(TimeoutError):
                await asyncio.wait_for(record.status_event.wait(), 30)
        return record

    async def all_of() -> list[CallRecord]:
        targets = [(urls[i % len(urls)], call_id) for i, call_id in enumerate(calls)]
        if at_once:
            return list(await asyncio.gather(*(one(url, call_id) for url, call_id in targets)))
        return [await one(url, call_id) for url, call_id in targets]

    graph_pids = fake.own_pids() if isinstance(fake, Driver) else []
    connections_before = instances.graph_connections()
    cpu_before, own_before = instances.cpu_seconds(), time.process_time() + cpu_seconds(graph_pids)
    started = time.monotonic()
    records = fake.run(all_of(), timeout=300)
    elapsed = time.monotonic() - started
    recorder_cpu = instances.cpu_seconds() - cpu_before
    own_cpu = time.process_time() + cpu_seconds(graph_pids) - own_before
    seen: list[float] = []
    from_send: list[float] = []
    if isinstance(fake, Driver):
        seen = sorted(fake.seen_at[r.call_id] - r.invited_at for r in records if r.call_id in fake.seen_at)
        from_send = sorted(
            r.answered_at - fake.sent_at[id(bodies[r.call_id])]
            for r in records
            if r.answered_at is not None and id(bodies[r.call_id]) in fake.sent_at
        )
        fake.sent_at.clear()
    connections_after = instances.graph_connections()
    answered = sorted(r.answer_seconds for r in records if r.answer_seconds is not None)
    rejected = sum(1 for r in records if r.rejected is not None)
    return Storm(
        answered,
        rejected,
        len(records) - len(answered) - rejected,
        elapsed,
        recording=sum(1 for r in records if "recording" in r.statuses),
        recorder_cpu=recorder_cpu / invitations,
        platform_cpu=own_cpu / invitations,
        graph_connections=None
        if connections_before is None or connections_after is None
        else connections_after - connections_before,
        recorder_p99=instances.answer_p99(),
        seen=seen,
        from_send=from_send,
    )


def warm(fake: FakePlatform | Driver, instances: Instances, establish: bool) -> None:
    for url, pid in zip(instances.urls, instances.pids, strict=True):
        storm(fake, Instances([url], [pid]), 5, establish=establish)


def one_run(
    invitations: int,
    instances: int,
    fake: FakePlatform | Driver,
    connection: str,
    root: Path,
    establish: bool,
    cpus: str | None,
) -> RunResult:
    capacity = invitations + 30  # the storm and the warm-up's calls, which stay open
    with recorders(1, fake, connection, root, capacity, cpus) as running:
        warm(fake, running, establish)
        single = storm(fake, running, 20, at_once=False, establish=establish)
    with recorders(1, fake, connection, root, capacity, cpus) as running:
        warm(fake, running, establish)
        one_instance = storm(fake, running, invitations, establish=establish)
    with recorders(instances, fake, connection, root, capacity, cpus) as running:
        warm(fake, running, establish)
        load = os.getloadavg()[0]
        spread = storm(fake, running, invitations, establish=establish)
    return RunResult(spread, one_instance, single, load)


def ms(seconds: float, digits: int = 0) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def spread(values: list[float], digits: int = 0) -> str:
    return f"{ms(statistics.median(values), digits)} ({ms(min(values), digits)} to {ms(max(values), digits)})"


def connections(count: int | None) -> str:
    return "n/a" if count is None else str(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invitations", type=int, default=200)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--answer-only", action="store_true", help="leave answered calls unestablished (the figures before 14:30 UTC)"
    )
    parser.add_argument(
        "--layout",
        choices=("shared", "split"),
        default="shared",
        help="shared: every process on every core; split: the platform's side on one CPU, the recorders on the rest",
    )
    parser.add_argument(
        "--platform",
        choices=tuple(PLATFORMS),
        default="graph-process",
        help="; ".join(f"{name}: {text}" for name, text in PLATFORMS.items()),
    )
    args = parser.parse_args()
    establish = not args.answer_only
    recorder_cpus: str | None = None
    if args.layout == "split":
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            parser.error("--layout split needs at least 2 CPUs")
        # This thread first: the platform's threads and Azurite, started later, inherit it.
        os.sched_setaffinity(0, {available[0]})
        recorder_cpus = ",".join(str(cpu) for cpu in available[1:])
        layout = (
            f"split: the platform's side (simulated Teams and Graph, storm driver, Azurite) on CPU {available[0]}, "
            f"the recorder instances on CPU {recorder_cpus}"
        )
    else:
        layout = (
            "shared: the recorders and the platform's side (simulated Teams and Graph, storm driver, Azurite) "
            "on every core"
        )
    load_start = os.getloadavg()
    print(f"layout: {layout}")
    print(f"platform: {args.platform}: {PLATFORMS[args.platform]}")
    print(
        f"machine: {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}; {args.runs} runs of "
        f"{args.invitations} simultaneous invitations over {args.instances} instances, "
        f"{'each answered call established' if establish else 'answers only'}; load average at the start "
        f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f}"
    )
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        fake = Driver(root / "platform") if args.platform == "graph-process" else FakePlatform(root / "platform")
        fake.start()
        try:
            with azurite(ports, root / "azurite"):
                for index in range(args.runs):
                    result = one_run(
                        args.invitations, args.instances, fake, ports.connection_string, root, establish, recorder_cpus
                    )
                    results.append(result)
                    print(
                        f"  run {index + 1}: {args.instances} instances p50 {ms(result.storm.q(0.5))} p95 "
                        f"{ms(result.storm.q(0.95))} p99 {ms(result.storm.q(0.99))} max {ms(result.storm.q(1.0))}, "
                        f"rejected {result.storm.rejected}, unanswered {result.storm.unanswered}, "
                        f"recording {result.storm.recording}, "
                        f"recorder CPU {ms(result.storm.recorder_cpu, 1)}/invitation, "
                        f"Graph connections opened {connections(result.storm.graph_connections)}, "
                        f"recorders' own answer p99 {ms(result.storm.recorder_p99 or float('nan'))}"
                        + (
                            f", driver's loop saw the answers p99 {ms(result.storm.q(0.99, result.storm.seen))}, "
                            "from the notification's headers sent p99 "
                            f"{ms(result.storm.q(0.99, result.storm.from_send))}; "
                            if result.storm.seen
                            else "; "
                        )
                        + f"platform CPU {ms(result.storm.platform_cpu, 1)}/invitation; "
                        f"one instance p99 {ms(result.one_instance.q(0.99))}; "
                        f"single p50 {ms(result.single.q(0.5))}; load {result.load:.1f}",
                        file=sys.stderr,
                    )
        finally:
            fake.stop()
    load_end = os.getloadavg()
    print()
    print(
        "| storm | p50 | p95 | p99 | max | rejected | no answer in 30 s | recording | storm wall clock "
        "| recorder CPU per invitation | platform CPU per invitation | Graph connections opened |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows: list[tuple[str, list[Storm]]] = [
        (f"{args.invitations} at once over {args.instances} instances", [r.storm for r in results]),
        (f"{args.invitations} at once to one instance (baseline)", [r.one_instance for r in results]),
        ("one at a time, one instance (baseline)", [r.single for r in results]),
    ]
    for name, storms in rows:
        print(
            f"| {name} | {spread([s.q(0.5) for s in storms])} | {spread([s.q(0.95) for s in storms])} "
            f"| {spread([s.q(0.99) for s in storms])} | {spread([s.q(1.0) for s in storms])} "
            f"| {sum(s.rejected for s in storms)} | {sum(s.unanswered for s in storms)} "
            f"| {sum(s.recording for s in storms)} "
            f"| {spread([s.seconds for s in storms])} | {spread([s.recorder_cpu for s in storms], 1)} "
            f"| {spread([s.platform_cpu for s in storms], 1)} "
            f"| {', '.join(connections(s.graph_connections) for s in storms)} |"
        )
    print(
        f"(median of runs, lowest to highest in brackets; Graph connections per run; layout {args.layout}; "
        f"platform {args.platform})"
    )
    recorder_views = [r.storm.recorder_p99 for r in results if r.storm.recorder_p99 is not None]
    if recorder_views:
        print(
            f"the recorders' own answer p99 over {args.instances} instances (highest instance; /admin/stats): "
            f"{spread(recorder_views)}"
        )
    loads = [r.load for r in results]
    print(
        f"load average: {load_start[0]:.1f} at the start, {statistics.median(loads):.1f} (median) when the storms "
        f"over {args.instances} instances began, {load_end[0]:.1f} at the end"
    )
    p99 = statistics.median([r.storm.q(0.99) for r in results])
    worst = max(r.storm.q(1.0) for r in results)
    missed = sum(r.storm.rejected + r.storm.unanswered for r in results)
    print(
        f"- p99 over {args.instances} instances: {ms(p99)}; goal < {ms(GOAL_P99_SECONDS)}: "
        f"{'met' if p99 < GOAL_P99_SECONDS else 'NOT met'}"
    )
    print(
        f"- slowest answer of all runs: {ms(worst)}, rejected or unanswered {missed}; "
        f"within the {BUDGET_SECONDS:.0f} s budget: "
        f"{'met' if worst < BUDGET_SECONDS and missed == 0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
