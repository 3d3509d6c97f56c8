"""The soak (issue 23): steady traffic on a stack of its own for a long time, no faults, while each component's
resident memory, open file descriptors and threads (summed over its process group, read from /proc), the queue
depths and the latencies (a recorder's answer; a call's end to its final verdicts) are sampled; then the bounds:
RSS growth under 10 % after warm-up for Verbatim's own processes (the stand-ins for Azure, Microsoft and third-party
services are reported with their trend: `bounded_memory`), no growth of descriptors or threads, latencies that do
not drift. The series are kept as JSON and plotted with matplotlib.

`python -m devstack.chaos.soak --minutes 30 --concurrency 50` (`make soak`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from azure.storage.queue import QueueServiceClient

from devstack.chaos.invariants import API_ERRORS, API_TIMEOUTS, read_verdicts
from devstack.chaos.run import _prime, _refresh, load_average
from devstack.chaos.traffic import (
    EXTRA_TRADERS,
    PlacedCall,
    TrafficGenerator,
    TrafficProfile,
    chaos_tenant,
    plan_traffic,
    policy_users,
)
from devstack.demo import DemoError, DemoStack
from devstack.emulators import REPO_ROOT
from devstack.processes import StartupError
from devstack.stack import Component, StackConfig, StackPorts, running
from verbatim.platform import layout

PAGE = os.sysconf("SC_PAGE_SIZE")
WARM_UP_FRACTION = 0.2  # the first fifth of the run is warm-up; growth is measured after it
RSS_GROWTH_BOUND = 0.10
LATENCY_DRIFT_BOUND = 1.5  # the last window's median latency over the first window's, after warm-up
COUNT_SLACK = 2  # descriptors or threads that come and go with the calls in flight (a socket, a worker)
QUEUE_DEPTH_SLACK = 10  # messages a queue may hold more in the last window than in the first (a burst of call ends)


def bounded_memory(component: str) -> bool:
    """Whether the RSS bound is a bound on this component: Verbatim's own processes (the Functions host, the
    recorder instances). The others stand in for services run by Microsoft or a third party (Cosmos DB, Azure
    Storage, Teams and Graph, a timestamp authority, a transparency-log witness) whose memory is not ours, and the
    emulators among them keep what they store in memory, so they grow with the data: their RSS is reported with its
    trend, not judged (docs/reliability.md, "The soak"). Descriptors and threads are bounded for every component."""
    return component == "functions" or component.startswith("recorder")


def _trend(points: Sequence[tuple[float, float]]) -> str:
    """Least-squares slope (MiB a minute) and R^2 of RSS against time."""
    if len(points) < 3 or len({x for x, _ in points}) < 2 or len({y for _, y in points}) < 2:
        return "no trend"
    xs, ys = [x for x, _ in points], [y for _, y in points]
    fit = statistics.linear_regression(xs, ys)
    r = statistics.correlation(xs, ys)
    return f"{fit.slope * 60:+.2f} MiB/min, R^2 {r * r:.2f}"


def group_members(group: int) -> list[int]:
    """The PIDs of a process group, from /proc (a component runs in a session and group of its own)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group:  # pgrp, the 5th field of stat
            members.append(int(entry))
    return members


def group_usage(group: int) -> dict[str, float]:
    """RSS (MiB), open descriptors and threads summed over the group's processes."""
    rss = fds = threads = 0
    for pid in group_members(group):
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            stat = Path(f"/proc/{pid}/stat").read_text()
            threads += int(stat[stat.rindex(")") + 2 :].split()[17])  # num_threads, the 20th field
        except OSError:  # a process that exited between the listing and the read
            continue
    return {"rss_mib": rss / 2**20, "fds": fds, "threads": threads}


@dataclass
class Series:
    samples: list[dict[str, Any]] = field(default_factory=list)  # at, per component usage, queue depths
    answers: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the run, answer ms)
    verdicts: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the run, end -> verdict s)


class Sampler:
    def __init__(self, components: Sequence[Component], config: StackConfig, t0: float, every: float) -> None:
        self.components = components
        self.queues = QueueServiceClient.from_connection_string(config.ports.azurite.connection_string)
        self.t0 = t0
        self.every = every
        self.series = Series()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sample: dict[str, Any] = {"at": round(time.monotonic() - self.t0, 1)}
            for component in self.components:
                if component.process.pid is not None:
                    sample[component.name] = group_usage(component.process.pid)
            depths = {}
            for name in layout.QUEUES:
                # a depth that cannot be read this round is left out, not taken as zero
                with contextlib.suppress(Exception):
                    depths[name] = self.queues.get_queue_client(name).get_queue_properties().approximate_message_count
            sample["queues"] = depths
            self.series.samples.append(sample)
            self._stop.wait(self.every)


def follow_latencies(
    stack: DemoStack, traffic: TrafficGenerator, series: Series, t0: float, until: Callable[[], bool]
) -> None:
    """Poll the calls: each recorder leg's answer latency once a call ends, then its end -> final verdicts."""
    judged: set[str] = set()
    while not until():
        for placed in list(traffic.placed):
            if placed.result is None or placed.planned.scenario.key in judged:
                continue
            if placed.ended_at is None:
                _refresh(stack, placed)
                if placed.ended_at is not None:
                    for leg in placed.state.get("recorders", []):
                        if leg.get("answerLatencyMs") is not None:
                            series.answers.append((_offset(placed, t0), float(leg["answerLatencyMs"])))
                continue
            if not placed.planned.policy_users:
                judged.add(placed.planned.scenario.key)
                continue
            try:
                read_verdicts(stack, placed.result)
            except (DemoError, httpx.TransportError):  # kept in API_ERRORS / API_TIMEOUTS; asked again next round
                continue
            if all(
                (v := placed.result.verdict_of(u)) is not None and v.get("verdict") != "pending"
                for u in placed.planned.policy_users
            ):
                judged.add(placed.planned.scenario.key)
                series.verdicts.append((_offset(placed, t0), (datetime.now(UTC) - placed.ended_at).total_seconds()))
        time.sleep(2.0)


def _offset(placed: PlacedCall, t0: float) -> float:
    return round(placed.planned.at, 1)


def bounds(series: Series, seconds: float) -> list[tuple[str, bool, str]]:
    """(check, passed, figures) for each bound, over the samples after warm-up."""
    warm = seconds * WARM_UP_FRACTION
    after = [s for s in series.samples if s["at"] >= warm]
    results: list[tuple[str, bool, str]] = []
    if len(after) < 4:
        return [("enough samples after warm-up", False, f"{len(after)} samples")]
    quarter = max(1, len(after) // 4)
    first, last = after[:quarter], after[-quarter:]
    names = [k for k in after[0] if k not in ("at", "queues")]
    for name in names:

        def med(window: list[dict[str, Any]], metric: str, name: str = name) -> float:
            return float(statistics.median(float(s[name][metric]) for s in window if name in s))

        rss0, rss1 = med(first, "rss_mib"), med(last, "rss_mib")
        growth = (rss1 - rss0) / rss0 if rss0 else 0.0
        figures = f"{rss0:.0f} -> {rss1:.0f} MiB ({growth:+.1%})"
        if bounded_memory(name):
            results.append((f"{name} RSS growth < 10 %", growth < RSS_GROWTH_BOUND, figures))
        else:
            trend = _trend([(float(s["at"]), float(s[name]["rss_mib"])) for s in after if name in s])
            results.append((f"{name} RSS (not ours: reported)", True, f"{figures}; {trend}"))
        for metric in ("fds", "threads"):
            a, b = med(first, metric), med(last, metric)
            results.append((f"{name} {metric} do not grow", b <= a + COUNT_SLACK, f"{a:.0f} -> {b:.0f}"))
    queues = sorted({q for sample in after for q in sample.get("queues", {})})
    for queue in queues:
        a, b = (statistics.median(float(s["queues"].get(queue, 0)) for s in window) for window in (first, last))
        peak = max(float(s["queues"].get(queue, 0)) for s in after)
        if peak or a or b:
            results.append(
                (
                    f"{queue} depth does not grow",
                    b <= a + QUEUE_DEPTH_SLACK,
                    f"median {a:.0f} -> {b:.0f}, peak {peak:.0f}",
                )
            )
    for label, points in (("answer latency (ms)", series.answers), ("call end -> verdict (s)", series.verdicts)):
        kept = [v for at, v in points if at >= warm]
        if len(kept) < 8:
            results.append((f"{label} does not drift", False, f"only {len(kept)} after warm-up"))
            continue
        q = max(2, len(kept) // 4)
        a, b = statistics.median(kept[:q]), statistics.median(kept[-q:])
        results.append((f"{label} does not drift", b <= a * LATENCY_DRIFT_BOUND, f"median {a:.2f} -> {b:.2f}"))
    return results


def plot(series: Series, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 2, figsize=(13, 11))
    names = sorted({k for s in series.samples for k in s if k not in ("at", "queues")})
    for axis, metric, label in (
        (axes[0][0], "rss_mib", "resident memory (MiB)"),
        (axes[0][1], "fds", "open file descriptors"),
        (axes[1][0], "threads", "threads"),
    ):
        for name in names:
            points = [(s["at"], s[name][metric]) for s in series.samples if name in s]
            axis.plot([p[0] for p in points], [p[1] for p in points], label=name)
        axis.set_title(label)
        axis.set_xlabel("seconds")
        axis.legend(fontsize=7)
    queues = sorted({q for s in series.samples for q in s.get("queues", {})})
    for queue in queues:
        points = [(s["at"], s["queues"][queue]) for s in series.samples if queue in s.get("queues", {})]
        if any(p[1] for p in points):
            axes[1][1].plot([p[0] for p in points], [p[1] for p in points], label=queue)
    axes[1][1].set_title("queue depth (approximate messages)")
    axes[1][1].set_xlabel("seconds")
    if axes[1][1].lines:
        axes[1][1].legend(fontsize=7)
    for axis, points, label in (
        (axes[2][0], series.answers, "recorder answer latency (ms), by call start"),
        (axes[2][1], series.verdicts, "call end -> final verdicts (s), by call start"),
    ):
        axis.scatter([p[0] for p in points], [p[1] for p in points], s=6)
        axis.set_title(label)
        axis.set_xlabel("seconds")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def run_soak(seed: int, seconds: float, concurrency: int, state_dir: Path, plot_path: Path | None) -> bool:
    profile = TrafficProfile(seconds=seconds, concurrency=concurrency, call_seconds=(20.0, 60.0))
    extra = max(EXTRA_TRADERS, concurrency + 4)  # enough people for everyone to be in one call at a time
    calls = plan_traffic(seed, profile, extra)
    tenant = chaos_tenant(state_dir / "chaos-tenant.yaml", extra)
    config = replace(
        StackConfig(state_dir=state_dir, recorders=2, tenant_path=tenant),
        ports=StackPorts.free(recorders=2),
    )
    load_before = load_average()
    harness_errors: list[str] = []
    print(f"soak: seed {seed}, {seconds:.0f} s, {concurrency} at once, {len(calls)} calls; state {state_dir}")
    with running(config, echo=lambda _: None) as components:
        stack, traffic_stack = DemoStack(config, components), DemoStack(config, components)
        try:
            _prime(stack, policy_users(extra))
            t0 = time.monotonic()
            sampler = Sampler(components, config, t0, every=10.0)
            traffic = TrafficGenerator(traffic_stack, calls)
            sampler.start()
            traffic.start(t0)
            done = threading.Event()
            last_end = max((c.at + c.seconds for c in calls), default=0.0)
            threading.Timer(last_end + 120.0, done.set).start()
            try:
                follow_latencies(stack, traffic, sampler.series, t0, done.is_set)
            except Exception as error:  # the series so far is still written, plotted and judged
                harness_errors.append(f"{type(error).__name__}: {error}"[:300])
            traffic.stop()
            sampler.stop()
        finally:
            stack.close()
            traffic_stack.close()
    series = sampler.series
    results = bounds(series, seconds)
    results.append(("no 5xx from the compliance API", not API_ERRORS, "; ".join(API_ERRORS)[:600] or "none"))
    results.append(("the soak ran to its end", not harness_errors, "; ".join(harness_errors) or "yes"))
    results.append(
        (
            "reads answered within 30 s",
            not API_TIMEOUTS,
            f"{len(API_TIMEOUTS)} not: {API_TIMEOUTS[:3]}" if API_TIMEOUTS else "all",
        )
    )
    failed = [f"{p.planned.scenario.key}: {p.error}" for p in traffic.placed if p.result is None]
    results.append(("every call placed", not failed, "; ".join(failed)[:600] or f"{len(traffic.placed)} placed"))
    unjudged = len([c for c in calls if c.policy_users]) - len(series.verdicts)
    results.append(
        ("every call with a policy user judged", unjudged <= 0, f"{max(unjudged, 0)} without final verdicts")
    )
    poisoned = {
        q: n
        for q, n in (series.samples[-1].get("queues", {}) if series.samples else {}).items()
        if n and q.endswith("-poison")
    }
    results.append(("no poison message", not poisoned, str(poisoned) if poisoned else "none"))
    load_after = load_average()
    (state_dir / "soak-series.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "seconds": seconds,
                "concurrency": concurrency,
                "loadBefore": load_before,
                "loadAfter": load_after,
                "samples": series.samples,
                "answers": series.answers,
                "verdicts": series.verdicts,
                "apiErrors": API_ERRORS,
                "apiTimeouts": API_TIMEOUTS,
                "harnessErrors": harness_errors,
                "bounds": [{"check": c, "ok": ok, "figures": f} for c, ok, f in results],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    title = (
        f"soak: seed {seed}, {seconds / 60:.0f} min, {concurrency} calls at once; load {load_before} -> {load_after}"
    )
    plot(series, plot_path or state_dir / "soak.png", title)
    print(f"\n{title}\n")
    for check, ok, figures in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {check:<44} {figures}")
    print(f"\nseries: {state_dir / 'soak-series.json'}   plot: {plot_path or state_dir / 'soak.png'}")
    return all(ok for _, ok, _ in results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos.soak", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--plot", type=Path, help="where the PNG goes (default: the state dir)")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    state_dir = args.state_dir or REPO_ROOT / ".devstack" / "soak" / f"seed{args.seed}-{started:%Y%m%dT%H%M%S}"
    try:
        return 0 if run_soak(args.seed, args.minutes * 60, args.concurrency, state_dir, args.plot) else 1
    except StartupError as error:
        print(f"soak: the stack did not start: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
