"""Compliance search latency on this machine: 10,000 recordings indexed in Cosmos `recording_index` (the local
emulator, started here on a free port), then the searches an officer runs — by observed user and time range
(single partition), by a participant's phone number, by verdict, unfiltered newest-first, and the second page
through a continuation token — each repeated, with p50 / p95 / p99 latency of the service call.

    .venv/bin/python benchmarks/search.py [--recordings 10000] [--repeat 60] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.emulators import COSMOS_EMULATOR_KEY, cosmos_emulator, ensure_tls  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.provision import provision_cosmos  # noqa: E402
from devstack.testkit.records import recording  # noqa: E402
from verbatim.contracts.reconciliation import Verdict  # noqa: E402
from verbatim.platform import clients  # noqa: E402
from verbatim.platform.settings import reload_settings  # noqa: E402
from verbatim.platform.times import format_datetime  # noqa: E402
from verbatim.search.index import CosmosRecordingIndex, SearchQuery, index_document  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- search:start -->", "<!-- search:end -->"
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
USERS = [f"u-trader-{n:03d}" for n in range(200)]


def documents(count: int) -> list[dict[str, object]]:
    """`count` index documents: 200 policy users, ~3 months of calls, 2 % partial and 1 % missing."""
    docs = []
    for n in range(count):
        user = USERS[n % len(USERS)]
        start = T0 + timedelta(minutes=13 * n)
        record = recording(
            f"r{n:06d}",
            f"c{n:06d}",
            user,
            start=start,
            seconds=60 + n % 900,
            interrupted=n % 50 == 0,
            phone_numbers=(f"+4144555{n % 5000:04d}",) if n % 3 == 0 else (),
            direction="inbound" if n % 2 else "outbound",
            call_type="groupCall" if n % 7 == 0 else "peerToPeer",
        )
        state = "partial" if n % 50 == 0 else "missing" if n % 97 == 0 else "recorded"
        verdict = Verdict(
            id=f"c{n:06d}:{user}",
            call_id=f"c{n:06d}",
            call_record_version=1,
            user_id=user,
            day=start.date().isoformat(),
            verdict=state,
            coverage=1.0 if state == "recorded" else 0.5,
            recording_ids=[record.id],
            reason="recorded" if state == "recorded" else "recorder_crashed",
            evaluated_at="2025-04-01T00:00:00.000000Z",
        )
        docs.append(index_document(record, verdict))
    return docs


def measure(run: Callable[[], object], repeat: int) -> dict[str, float]:
    run()  # warm the connection and the query plan
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p95": samples[max(0, round(0.95 * len(samples)) - 1)],
        "p99": samples[max(0, round(0.99 * len(samples)) - 1)],
        "max": samples[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update benchmarks/README.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        tls = ensure_tls(root / "tls")
        with cosmos_emulator(port, tls, root / "cosmos.log"):
            os.environ.update(
                {
                    "COSMOS_ENDPOINT": f"https://127.0.0.1:{port}",
                    "COSMOS_KEY": COSMOS_EMULATOR_KEY,
                    "COSMOS_CA_CERT": str(tls.ca_cert),
                    "COSMOS_DATABASE": f"bench{uuid.uuid4().hex[:6]}",
                }
            )
            settings = reload_settings()
            provision_cosmos(settings)
            container = clients.cosmos_database(settings).get_container_client("recording_index")
            docs = documents(args.recordings)
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(container.upsert_item, docs))
            load_seconds = time.perf_counter() - started
            index = CosmosRecordingIndex(container)
            middle = T0 + timedelta(minutes=13 * args.recordings // 2)
            week = (format_datetime(middle), format_datetime(middle + timedelta(days=7)))
            first_page = index.search(SearchQuery(limit=args.page))
            user, (since, until) = USERS[7], week
            cases: list[tuple[str, SearchQuery]] = [
                ("observed user + one week", SearchQuery(observed_user=user, start_from=since, start_to=until)),
                ("observed user, all time", SearchQuery(observed_user=user)),
                ("participant phone number", SearchQuery(participant="+41445550042")),
                ("participant object id", SearchQuery(participant=USERS[42])),
                ("verdict partial + one week", SearchQuery(verdict="partial", start_from=since, start_to=until)),
                (
                    "inbound group calls with audio",
                    SearchQuery(direction="inbound", call_type="groupCall", modality="audio"),
                ),
                ("no filter, newest page", SearchQuery()),
                ("no filter, second page (continuation)", SearchQuery(continuation=first_page[1])),
            ]
            cases = [(name, replace(query, limit=args.page)) for name, query in cases]
            results = []
            for name, query in cases:
                hits = len(index.search(query)[0])
                figures = measure(lambda query=query: index.search(query), args.repeat)  # type: ignore[misc]
                results.append((name, hits, figures))
                p50, p95, p99 = figures["p50"], figures["p95"], figures["p99"]
                print(f"{name:45s} {hits:4d} hits  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms")
    worst = max(figures["p95"] for _, _, figures in results)
    load = os.getloadavg()[0]
    print(
        f"loaded {args.recordings} index documents in {load_seconds:.1f} s; worst p95 {worst:.1f} ms "
        f"(target < 200 ms); load average {load:.1f}"
    )
    if not args.no_write:
        write_readme(args, results, worst, load)
    return 0


def write_readme(
    args: argparse.Namespace, results: list[tuple[str, int, dict[str, float]]], worst: float, load: float
) -> None:
    lines = [
        START,
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python "
        f"{platform.python_version()}; `benchmarks/search.py --recordings {args.recordings} --repeat {args.repeat}`, "
        f"{datetime.now(UTC).date().isoformat()}. Page size {args.page}; latency of one `RecordingIndex.search` call.",
        "",
        "| search | hits | p50 | p95 | p99 |",
        "|---|---|---|---|---|",
        *(f"| {n} | {h} | {f['p50']:.1f} ms | {f['p95']:.1f} ms | {f['p99']:.1f} ms |" for n, h, f in results),
        "",
        f"Worst p95: {worst:.1f} ms (target < 200 ms); 1-minute load average at the end: {load:.1f}.",
        END,
    ]
    text = README.read_text()
    block = "\n".join(lines)
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n## Compliance search (`search.py`)\n\n" + block + "\n"
    README.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
