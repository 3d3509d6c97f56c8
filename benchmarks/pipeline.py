"""End-to-end latency of the whole local stack under N concurrent calls, and CPU per recorded minute of each
component.

    .venv/bin/python benchmarks/pipeline.py [--calls 10 50 100] [--runs 3] [--call-seconds 60]

For each N: a fresh `verbatim-dev up` stack (Teams/Graph simulator, recorder, local Functions host running
function_app.py, Azurite, Cosmos emulator), the coverage audit run once, then N calls placed at once in the
simulator (a policy user on a 1:1 call with an unrecorded colleague, spoken dialogue, `--call-seconds` long,
real-time media), spread over the tenant's policy users. Then, per call, from its end (the simulator's
`endedAt`):

- **sealed**: its recording's `seal.sealed_at` in Cosmos `recordings`;
- **searchable**: the first poll that finds the recording in the search index (Cosmos `recording_index`);
- **verdict final**: the `evaluatedAt` of the policy user's verdict once no verdict of theirs is `pending`
  (written when it became so), measured from the call record's arrival (the simulator publishes it
  `callRecordDelaySeconds` after the call ends);
- **access copy sealed**: when the recording's Opus access copy was sealed — with the evidence (recording
  manifest v1: `seal.sealed_at`) or after it, in its own right (v2: the newest part's `access_sealed_at`). The run
  waits for it too, so the CPU figures include every access copy.

A poll reads every call's state in four requests (the simulator's call list, one Cosmos query each for the
recordings, the search entries and the verdicts), every `--poll-seconds` (2), so "searchable" is up to a poll
late. CPU of
each component is read from /proc for every process of its process group (utime + stime) from the first
call placed until the last verdict is final, divided by the minutes of audio recorded. Goals at 100
calls: p95 call end -> searchable < 30 s, p95 call record -> verdict final < 60 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack.demo import TARA, TOM, DemoStack, _tenant_users, wait_until  # noqa: E402
from devstack.stack import Component, StackConfig, StackPorts, app_environment, running  # noqa: E402

CALL_RECORD_DELAY = 5.0
POLICY_USERS = ("tom", TOM), ("tara", TARA)
COLLEAGUE = ("cora", "cora.compliance@contoso.onmicrosoft.com")
DIALOGUE = [
    "Morning. I am buying five hundred gilts at market, please confirm the reference.",
    "Noted. The reference is alpha seven, and the price is ninety eight and a quarter.",
]
GOAL_SEARCHABLE_P95 = 30.0
GOAL_VERDICT_P95 = 60.0


@dataclass
class Call:
    sim_id: str
    call_id: str
    user: str
    ended_at: float | None = None  # epoch seconds
    sealed_at: float | None = None
    searchable_at: float | None = None
    verdict_at: float | None = None
    access_at: float | None = None
    recording_ids: list[str] = field(default_factory=list)


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def _cpu_by_group() -> dict[int, float]:
    """CPU seconds (user + system) of every process, summed by process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    groups: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pgid, utime, stime = int(fields[2]), int(fields[11]), int(fields[12])
        groups[pgid] = groups.get(pgid, 0.0) + (utime + stime) / ticks
    return groups


def component_cpu(components: list[Component]) -> dict[str, float]:
    groups = _cpu_by_group()
    found = {}
    for component in components:
        pid = component.process.pid
        found[component.name] = groups.get(os.getpgid(pid), 0.0) if pid else 0.0
    return found


def _spec(index: int, seconds: float) -> dict[str, Any]:
    key, upn = POLICY_USERS[index % len(POLICY_USERS)]
    lines = max(1, int(seconds // 6))
    return {
        "type": "peerToPeer",
        "subject": f"Pipeline benchmark call {index}",
        "participants": [{"key": key, "user": upn}, {"key": COLLEAGUE[0], "user": COLLEAGUE[1]}],
        "dialog": [{"speaker": (key, COLLEAGUE[0])[n % 2], "text": DIALOGUE[n % 2]} for n in range(lines)],
        "durationSeconds": seconds,
    }


def measure(n: int, call_seconds: float, timeout: float, poll: float, keep: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        state = (keep / f"{n}-calls-{int(time.time())}") if keep else Path(directory) / "state"
        config = StackConfig(state_dir=state, ports=StackPorts.free())
        with running(config, echo=lambda _: None) as components:
            stack = DemoStack(config, components, echo=lambda _: None)
            os.environ.update(app_environment(config))
            from verbatim.platform import clients, layout
            from verbatim.platform.settings import reload_settings

            database = clients.cosmos_database(reload_settings())
            recordings = database.get_container_client(layout.RECORDINGS)
            index = database.get_container_client(layout.RECORDING_INDEX)
            verdict_container = database.get_container_client(layout.VERDICTS)
            stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": CALL_RECORD_DELAY})
            stack.fire("audit_policy_coverage")
            users = [u.id for u in _tenant_users(stack) if u.upn in {TOM, TARA}]
            wait_until(lambda: stack.policies_observed(users), 60, "the coverage audit")
            cpu0 = component_cpu(components)
            started = time.time()
            calls = []
            for i in range(n):
                placed = stack.sim("POST", "/sim/calls", _spec(i, call_seconds))
                calls.append(Call(placed["id"], placed["conversations"][0]["callChainId"], POLICY_USERS[i % 2][1]))
            deadline = started + call_seconds + timeout
            while time.time() < deadline and not all(c.verdict_at and c.searchable_at and c.access_at for c in calls):
                _sweep(stack, recordings, index, verdict_container, calls)
                time.sleep(poll)
            cpu1 = component_cpu(components)
            _report_unfinished(calls, state)
            stack.close()
    audio_minutes = n * call_seconds / 60
    return {"calls": calls, "cpu": {k: (cpu1[k] - cpu0.get(k, 0.0)) / audio_minutes for k in cpu1}}


def _report_unfinished(calls: list[Call], state: Path) -> None:
    """Name every call that did not reach each state, with its recordings, so that a stuck one can be looked up
    in the stack's logs (`--keep-state`)."""
    for call in calls:
        missing = [
            name
            for name, value in (
                ("ended", call.ended_at),
                ("sealed", call.sealed_at),
                ("searchable", call.searchable_at),
                ("verdict", call.verdict_at),
                ("access copy", call.access_at),
            )
            if value is None
        ]
        if missing:
            print(f"  not done: call {call.call_id} ({call.user}) lacks {', '.join(missing)}; "
                  f"recordings {call.recording_ids or 'none'}; state {state}", file=sys.stderr)  # fmt: skip


def _query(container: Any, sql: str, values: list[str]) -> list[Any]:
    return list(
        container.query_items(sql, parameters=[{"name": "@v", "value": values}], enable_cross_partition_query=True)
    )


def _sweep(stack: DemoStack, recordings: Any, index: Any, verdicts: Any, calls: list[Call]) -> None:
    """One poll of every call's state, in a handful of requests whatever the number of calls: the simulator's
    call list, then one Cosmos query each for the recordings, the search entries and the verdicts of the calls
    still waiting. (Polling each call through the compliance API, as this script did before, cost the Functions
    host being measured an authenticated, audited request per call per poll, and at 100 calls a sweep took many
    seconds, so the poll's resolution was far coarser than `--poll-seconds`.)"""
    waiting = [c for c in calls if c.ended_at is None]
    if waiting:
        states = {s["id"]: s["state"] for s in stack.sim("GET", "/sim/calls")["value"]}
        for call in waiting:
            if states.get(call.sim_id) == "ended":
                state = stack.sim("GET", f"/sim/calls/{call.sim_id}")
                call.ended_at = _epoch(state.get("endedAt")) or time.time()
    ended = [c for c in calls if c.ended_at is not None]
    unsealed = {c.call_id: c for c in ended if c.sealed_at is None or c.access_at is None or not c.recording_ids}
    if unsealed:
        found: dict[str, list[Any]] = {}
        for item in _query(
            recordings,
            "SELECT c.id, c.seal, c.facts.call_chain_id AS chain FROM c "
            "WHERE ARRAY_CONTAINS(@v, c.facts.call_chain_id)",
            list(unsealed),
        ):
            found.setdefault(item["chain"], []).append(item)
        for chain, items in found.items():
            call = unsealed[chain]
            call.recording_ids = [item["id"] for item in items]
            sealed = [_epoch(item["seal"]["sealed_at"]) for item in items if item.get("seal")]
            if len(sealed) == len(items):
                call.sealed_at = max(s for s in sealed if s is not None)
            copies = [_access_sealed(item["seal"]) for item in items if item.get("seal")]
            if len(copies) == len(items) and all(copies):
                call.access_at = max(c for c in copies if c is not None)
    unindexed = [c for c in ended if c.searchable_at is None and c.recording_ids]
    if unindexed:
        asked = time.time()  # a found entry was there by now: never earlier than the truth
        present = set(
            _query(
                index,
                "SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@v, c.id)",
                [r for c in unindexed for r in c.recording_ids],
            )
        )
        for call in unindexed:
            if all(r in present for r in call.recording_ids):
                call.searchable_at = asked
    undecided = {c.call_id: c for c in calls if c.verdict_at is None}
    if undecided:
        # When a verdict became final is when it was written so: reconciliation writes a verdict only when it
        # changes, and stamps `evaluatedAt` (the same machine's clock).
        by_call: dict[str, list[Any]] = {}
        for item in _query(
            verdicts,
            "SELECT c.callId, c.userPrincipalName, c.verdict, c.evaluatedAt FROM c WHERE ARRAY_CONTAINS(@v, c.callId)",
            list(undecided),
        ):
            by_call.setdefault(item["callId"], []).append(item)
        for call_id, items in by_call.items():
            call = undecided[call_id]
            mine = [v for v in items if v.get("userPrincipalName") == call.user]
            if mine and all(v.get("verdict") != "pending" for v in mine):
                call.verdict_at = max(_epoch(v["evaluatedAt"]) or time.time() for v in mine)


def _access_sealed(seal: dict[str, Any]) -> float | None:
    """When the recording's access copy was sealed: with the evidence (v1) or after it (v2), else None."""
    if not seal.get("access_copy_blob"):
        return None
    parts = seal.get("parts") or []
    after = parts[-1].get("access_sealed_at") if parts else None
    return _epoch(after) if after else _epoch(seal.get("sealed_at"))


def _at(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("inf")


def p95(values: list[float]) -> float:
    return _at(values, 0.95)


def _spread(values: list[float], fmt: str = ".1f") -> str:
    if not values:
        return "—"
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)} to {format(max(values), fmt)})"


@dataclass
class Run:
    sealed: list[float]
    access: list[float]
    searchable: list[float]
    verdict: list[float]
    missing: int
    cpu: dict[str, float]
    load: float

    @classmethod
    def of(cls, result: dict[str, Any]) -> Run:
        calls: list[Call] = result["calls"]
        ended = [c for c in calls if c.ended_at]
        return cls(
            sealed=[c.sealed_at - c.ended_at for c in ended if c.sealed_at and c.ended_at],
            access=[c.access_at - c.ended_at for c in ended if c.access_at and c.ended_at],
            searchable=[c.searchable_at - c.ended_at for c in ended if c.searchable_at and c.ended_at],
            verdict=[c.verdict_at - (c.ended_at + CALL_RECORD_DELAY) for c in ended if c.verdict_at and c.ended_at],
            missing=sum(1 for c in calls if not (c.verdict_at and c.searchable_at and c.access_at)),
            cpu=result["cpu"],
            load=os.getloadavg()[0],
        )

    def row(self, n: int, label: str) -> str:
        def pcts(values: list[float]) -> str:
            return " / ".join(f"{_at(values, q):.1f}" for q in (0.5, 0.95, 0.99)) + " s" if values else "—"

        cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.cpu.items()))
        return (
            f"| {n} | {label} | {pcts(self.sealed)} | {pcts(self.searchable)} | {pcts(self.verdict)} "
            f"| {pcts(self.access)} "
            f"| {self.missing} | {cpu} | {self.load:.1f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--runs", type=int, default=3, help="runs per number of calls (each on a fresh stack)")
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--call-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds after the calls to wait for verdicts")
    parser.add_argument("--keep-state", type=Path, help="keep each stack's state and logs under this directory")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores; calls of {args.call_seconds:.0f} s; load average {load[0]:.1f} at start")
    print("| calls | run | ended -> sealed p50/p95/p99 | ended -> searchable p50/p95/p99 "
          "| call record -> verdict final p50/p95/p99 | ended -> access copy sealed p50/p95/p99 | not done "
          "| CPU s per recorded minute | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    levels: list[tuple[int, list[Run]]] = []
    for n in args.calls:
        runs = []
        for r in range(args.runs):
            run = Run.of(measure(n, args.call_seconds, args.timeout, args.poll_seconds, args.keep_state))
            print(run.row(n, str(r + 1)), flush=True)
            runs.append(run)
        levels.append((n, runs))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print()
    print("Median of the runs' percentiles, lowest to highest in brackets:")
    print("| calls | p95 ended -> sealed | p95 ended -> searchable | p95 call record -> verdict final "
          "| p95 ended -> access copy sealed | not done | CPU s per recorded minute, by component |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n, runs in levels:
        components = sorted({k for run in runs for k in run.cpu})
        cpu = "; ".join(f"{k} {_spread([run.cpu.get(k, 0.0) for run in runs], '.2f')}" for k in components)
        print(
            f"| {n} | {_spread([p95(r.sealed) for r in runs])} s | {_spread([p95(r.searchable) for r in runs])} s "
            f"| {_spread([p95(r.verdict) for r in runs])} s | {_spread([p95(r.access) for r in runs])} s "
            f"| {sum(r.missing for r in runs)} | {cpu} |"
        )
    n, runs = levels[-1]
    searchable = statistics.median([p95(r.searchable) for r in runs])
    verdict = statistics.median([p95(r.verdict) for r in runs])
    missing = sum(r.missing for r in runs)
    print(f"goal, {n} calls: p95 call end -> searchable {searchable:.1f} s (< {GOAL_SEARCHABLE_P95:.0f} s: "
          f"{'met' if searchable < GOAL_SEARCHABLE_P95 and not missing else 'NOT met'})")  # fmt: skip
    print(f"goal, {n} calls: p95 call record -> verdict final {verdict:.1f} s (< {GOAL_VERDICT_P95:.0f} s: "
          f"{'met' if verdict < GOAL_VERDICT_P95 and not missing else 'NOT met'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
