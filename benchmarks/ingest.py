"""Call records ingested per second against the Teams/Graph simulator, and the CPU it costs.

Two measurements, both against real Azurite, the Cosmos emulator and the simulator:

* `service`: the ingestion service driven in this process by a pool of workers (as the queue trigger
  runs it), over N published call records: records/s, Graph requests/s, and this process's CPU.
* `end-to-end`: the local Functions host running `function_app.py`; the records are published in the
  simulator, which notifies the host's webhook; the queue trigger fetches and stores them. Records/s
  from the first publication to the last record in Cosmos, and the host process's CPU.

Graph allows about 75 requests/s per app per tenant (1,500 per 20 s); a record costs two requests
(the record with sessions and segments, and participants_v2), so keeping up with the ceiling means
about 37 records/s. Target: that rate using at most one core. Prints the table and records it in
benchmarks/README.md.

    .venv/bin/python benchmarks/ingest.py [--records 600] [--workers 16] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import azure.durable_functions as df  # noqa: E402
import azure.functions as func  # noqa: E402
from webhook import SECRET, Stack, cpu_seconds, emulators, functions_host, machine, write_section  # noqa: E402

from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402
from devstack.simulator import DEMO_TENANT, health_url, launch_argv  # noqa: E402
from functions import callrecords, graph_webhook  # noqa: E402

# The call-record functions alone (webhook, ingestion queue trigger, timers), so the host's CPU is ours;
# `--app full` runs function_app.py, where reconciliation also consumes every stored version.
ingest_app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
ingest_app.register_functions(graph_webhook.bp)
ingest_app.register_functions(callrecords.bp)
APPS = {"callrecords": "benchmarks.ingest:ingest_app", "full": "function_app:app"}

FUNCTIONS_APP_ID = "9a3d5c71-2e4f-4b60-8d1a-7f6e5d4c3b21"
FUNCTIONS_APP_SECRET = "sim-functions-local-only"  # noqa: S105 - a credential of the local simulator only


@contextmanager
def simulator(stack: Stack) -> Iterator[dict[str, Any]]:
    port, https_port = free_port(), free_port()
    state = stack.temp / "simulator"
    state.mkdir()
    process = ManagedProcess(
        name="simulator",
        argv=launch_argv("127.0.0.1", port, DEMO_TENANT, "realtime", https_port=https_port, state_dir=state),
        ready=http_ready(health_url("127.0.0.1", port), ok=lambda status: status == 200),
        cwd=REPO_ROOT,
        log_path=state / "simulator.log",
        ports=(port, https_port),
        startup_timeout=30,
    )
    process.start()
    try:
        process.wait_ready()
        health: dict[str, Any] = httpx.get(health_url("127.0.0.1", port), timeout=10).json()
        yield health
    finally:
        process.stop()


def graph_env(health: dict[str, Any]) -> dict[str, str]:
    return {
        "GRAPH_BASE_URL": health["httpUrl"],
        "GRAPH_AUTHORITY_HOST": health["httpsUrl"],
        "GRAPH_CA_CERT": health["caFile"],
        "GRAPH_TENANT_ID": health["tenantId"],
        "GRAPH_CLIENT_ID": FUNCTIONS_APP_ID,
        "GRAPH_CLIENT_SECRET": FUNCTIONS_APP_SECRET,
        "GRAPH_CLIENT_STATE": SECRET,
    }


def meeting(record_id: str, people: int = 6) -> dict[str, Any]:
    """A realistic small meeting: `people` participants, one session each with one segment and two streams."""
    from verbatim.platform.times import format_datetime, utcnow

    start = utcnow() - timedelta(hours=1)
    users = [f"{record_id[-8:]}-0000-0000-0000-{n:012d}" for n in range(people)]
    stream = {"audioCodec": "opus", "averageJitter": "PT0.012S", "maxJitter": "PT0.030S", "averagePacketLossRate": 0.01}
    return {
        "id": record_id,
        "version": 1,
        "type": "groupCall",
        "modalities": ["audio"],
        "startDateTime": format_datetime(start),
        "endDateTime": format_datetime(start + timedelta(minutes=30)),
        "organizer_v2": {"id": users[0], "identity": {"user": {"id": users[0], "displayName": "Organizer"}}},
        "participants_v2": [{"id": u, "identity": {"user": {"id": u, "displayName": f"User {u}"}}} for u in users],
        "sessions": [
            {
                "id": f"{record_id}-{n}",
                "startDateTime": format_datetime(start),
                "endDateTime": format_datetime(start + timedelta(minutes=30)),
                "modalities": ["audio"],
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": u}},
                    "userAgent": {"@odata.type": "#microsoft.graph.callRecords.clientUserAgent", "platform": "windows"},
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                    "userAgent": {
                        "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                        "role": "conferencing",
                    },
                },
                "segments": [
                    {"id": f"{record_id}-{n}-0", "media": [{"label": "main-audio", "streams": [stream, stream]}]}
                ],
            }
            for n, u in enumerate(users)
        ],
    }


def publish(health: dict[str, Any], records: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=health["httpUrl"], timeout=30) as client:
        for record in records:
            client.put(f"/sim/callRecords/{record['id']}", json=record).raise_for_status()


def stored_count(prefix: str) -> int:
    from verbatim.platform import clients
    from verbatim.platform.settings import get_settings

    container = clients.cosmos_database(get_settings()).get_container_client("calls")
    query = "SELECT VALUE COUNT(1) FROM c WHERE STARTSWITH(c.id, @p)"
    counts: list[Any] = list(
        container.query_items(query, parameters=[{"name": "@p", "value": prefix}], enable_cross_partition_query=True)
    )
    return int(counts[0]) if counts else 0


def measure_service(health: dict[str, Any], count: int, workers: int) -> dict[str, float]:
    """The ingestion service in this process, `workers` threads, `count` records."""
    from verbatim.contracts.callrecords import CallRecordNotification
    from verbatim.platform.settings import reload_settings
    from verbatim.platform.times import format_datetime, utcnow
    from verbatim.wiring import container_for

    os.environ.update(graph_env(health))
    runtime = container_for(reload_settings()).callrecords
    records = [meeting(f"svc-{n:08d}") for n in range(count)]
    publish(health, records)
    graph = runtime.graph_for(health["tenantId"])
    ingestor = runtime.ingestor
    ingestor.ingest(
        CallRecordNotification(
            call_record_id=records[0]["id"], tenant_id=health["tenantId"], first_seen_at=format_datetime(utcnow())
        )
    )
    seen = format_datetime(utcnow())
    messages = [
        CallRecordNotification(call_record_id=r["id"], tenant_id=health["tenantId"], first_seen_at=seen)
        for r in records[1:]
    ]
    requests_before, cpu_before = graph.requests, time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(ingestor.ingest, messages))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    assert all(o.status == "stored" for o in outcomes), {o.status for o in outcomes}
    return {
        "records": len(messages),
        "seconds": wall,
        "records_per_s": len(messages) / wall,
        "graph_requests_per_s": (graph.requests - requests_before) / wall,
        "cpu_cores": cpu / wall,
        "cpu_ms_per_record": cpu / len(messages) * 1000,
    }


def reconciliation_backlog() -> int:
    """Messages on `reconciliation-requests` (waiting or being handled): 0 once reconciliation has caught up."""
    from verbatim.platform import clients
    from verbatim.platform.settings import get_settings

    settings = get_settings()
    queue = clients.queue_client(settings.runtime_storage_connection, settings.reconciliation_requests_queue)
    try:
        return int(queue.get_queue_properties().approximate_message_count or 0)
    except Exception:  # not created yet: nothing waits
        return 0


def verdict_count() -> int:
    from verbatim.platform import clients
    from verbatim.platform.settings import get_settings

    container = clients.cosmos_database(get_settings()).get_container_client("verdicts")
    counts: list[Any] = list(container.query_items("SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True))
    return int(counts[0]) if counts else 0


def measure_end_to_end(stack: Stack, health: dict[str, Any], count: int, app: str, prefix: str) -> dict[str, float]:
    port = free_port()
    env = {**graph_env(health), "GRAPH_NOTIFICATION_URL": "", "VERBATIM_LOG_LEVEL": "WARNING"}
    from devstack.funchost.state import load_or_create_keys

    keys = load_or_create_keys(stack.temp / f"host-{port}", {**os.environ, **stack.env, **env})
    env["GRAPH_NOTIFICATION_URL"] = f"http://127.0.0.1:{port}/api/graph/notifications?code={keys.default_function_key}"
    with functions_host(stack, APPS[app], env, port=port) as (base, _, pid):
        deadline = time.monotonic() + 60
        while not [
            s
            for s in httpx.get(f"{health['httpUrl']}/sim/subscriptions", timeout=10).json()["value"]
            if s["notificationUrl"].startswith(base)
        ]:
            if time.monotonic() > deadline:
                raise RuntimeError("the host did not create the callRecords subscription")
            time.sleep(0.5)
        records = [meeting(f"{prefix}-{n:08d}") for n in range(count)]
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        publish(health, records)
        published = time.perf_counter() - started
        while stored_count(f"{prefix}-") < count:
            if time.perf_counter() - started > 900:
                raise RuntimeError("end-to-end ingestion did not finish in 15 minutes")
            time.sleep(0.5)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
        result = {
            "records": count,
            "seconds": wall,
            "publish_seconds": published,
            "records_per_s": count / wall,
            "graph_requests_per_s": 2 * count / wall,
            "cpu_cores": cpu / wall,
            "cpu_ms_per_record": cpu / count * 1000,
        }
        if app == "full":
            # Stored is not decided: wait until reconciliation has handled every stored version (its queue is
            # empty twice in a row), and count the host's CPU until then.
            empty = 0
            while empty < 2:
                if time.perf_counter() - started > 1800:
                    raise RuntimeError("reconciliation did not catch up in 30 minutes")
                empty = empty + 1 if reconciliation_backlog() == 0 else 0
                time.sleep(0.5)
            decided = time.perf_counter() - started
            cpu_decided = cpu_seconds(pid) - cpu_before
            result.update(
                {
                    "reconciled_seconds": decided,
                    "reconciled_per_s": count / decided,
                    "cpu_cores_reconciled": cpu_decided / decided,
                    "cpu_ms_per_record_reconciled": cpu_decided / count * 1000,
                    "verdicts": verdict_count(),
                }
            )
    return result


def measure_idle(stack: Stack, health: dict[str, Any], app: str, seconds: float) -> float:
    """The host's CPU (cores) while no record arrives: its timers, queue polling and Durable task hub. The
    per-record figures above divide the host's whole CPU by the records, idle work included; at the low rates
    of a loaded machine that idle work is a large share, and the full app has more of it (Durable, timers)."""
    port = free_port()
    env = {**graph_env(health), "GRAPH_NOTIFICATION_URL": "", "VERBATIM_LOG_LEVEL": "WARNING"}
    with functions_host(stack, APPS[app], env, port=port) as (_, _, pid):
        time.sleep(min(30.0, seconds))  # start-up work (indexing, subscriptions, first timer runs) settles
        before, started = cpu_seconds(pid), time.perf_counter()
        time.sleep(seconds)
        return float(cpu_seconds(pid) - before) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--skip-service", action="store_true", help="skip the in-process service measurement")
    parser.add_argument("--full-app", action="store_true", help="also measure end to end with function_app.py")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--idle-seconds", type=float, default=0.0, help="only measure each host's idle CPU for this long, and stop"
    )
    args = parser.parse_args()
    if args.idle_seconds:
        for app in ("callrecords", "full"):
            with emulators() as stack, simulator(stack) as health:
                idle = measure_idle(stack, health, app, args.idle_seconds)
            print(f"idle host CPU, {app}: {idle:.3f} cores (load {os.getloadavg()[0]:.1f})")
        return

    # Each measurement gets fresh emulators: the Cosmos emulator scans its documents for queries, so a
    # container already holding an earlier measurement's records would slow the next one down.
    results: list[tuple[str, dict[str, float]]] = []
    if not args.skip_service:
        with emulators() as stack, simulator(stack) as health:
            service = measure_service(health, args.records, args.workers)
        results.append((f"service, {args.workers} worker threads", service))
        print("service:", {k: round(v, 2) for k, v in service.items()})
    if not args.skip_end_to_end:
        with emulators() as stack, simulator(stack) as health:
            e2e = measure_end_to_end(stack, health, args.records, "callrecords", "e2e")
        results.append(("end to end, local Functions host, call-record functions", e2e))
        print("end to end:", {k: round(v, 2) for k, v in e2e.items()})
    if args.full_app:
        with emulators() as stack, simulator(stack) as health:
            full = measure_end_to_end(stack, health, args.records, "full", "full")
        results.append(("end to end, local Functions host, whole function_app.py (with reconciliation)", full))
        print("end to end, full app:", {k: round(v, 2) for k, v in full.items()})

    lines = [
        f"Machine: {machine()}; `benchmarks/ingest.py --records {args.records} --workers {args.workers}`, "
        f"{date.today()}.",
        "Records are 6-person meetings (6 sessions, 12 streams); Graph ceiling 75 requests/s = 37.5 records/s.",
        "",
        "| path | records | records/s | Graph requests/s | CPU (cores) | CPU per record |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r['records']:.0f} | {r['records_per_s']:.1f} | {r['graph_requests_per_s']:.1f} | "
            f"{r['cpu_cores']:.2f} | {r['cpu_ms_per_record']:.1f} ms |"
        )
        if "reconciled_per_s" in r:
            lines.append(
                f"| {name}, until every version is reconciled ({r['verdicts']:.0f} verdicts) | {r['records']:.0f} "
                f"| {r['reconciled_per_s']:.1f} | — | {r['cpu_cores_reconciled']:.2f} "
                f"| {r['cpu_ms_per_record_reconciled']:.1f} ms |"
            )
    by_name = dict(results)
    e2e_only = by_name.get("end to end, local Functions host, call-record functions")
    full_app = by_name.get("end to end, local Functions host, whole function_app.py (with reconciliation)")
    load = os.getloadavg()
    lines += ["", f"1-minute load average at the end: {load[0]:.1f}."]
    if e2e_only and full_app and "cpu_ms_per_record_reconciled" in full_app:
        reconciliation = full_app["cpu_ms_per_record_reconciled"] - e2e_only["cpu_ms_per_record"]
        keeps_up = full_app["reconciled_per_s"] >= 37.5 and full_app["cpu_cores_reconciled"] <= 1.0
        lines += [
            f"Reconciliation's CPU per stored version (whole app until reconciled, minus the call-record functions "
            f"alone): {reconciliation:.1f} ms (goal <= 10 ms: {'met' if reconciliation <= 10 else 'NOT met'}).",
            f"Whole app keeps up with Graph's ceiling: {full_app['reconciled_per_s']:.1f} records/s reconciled on "
            f"{full_app['cpu_cores_reconciled']:.2f} cores (goal >= 37.5/s on <= 1 core: "
            f"{'met' if keeps_up else 'NOT met'}).",
        ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("ingest", table)


if __name__ == "__main__":
    main()
