"""Recorder memory per call: what a real recorder process still holds after calls have ended.

    .venv/bin/python benchmarks/recorder_memory.py [--calls 20] [--warmup 4] [--at-once 4] [--top 15]

A private Azurite, the test-side Teams platform (signed JWTs, Graph over TLS, media over the recorder's media
socket) and one recorder process, started with tracemalloc on (a `sitecustomize` put on its PYTHONPATH for this run
only: a thread that on request starts `tracemalloc` (12 frames) if it is not on, runs `gc.collect()` and dumps a
snapshot; memory allocated before tracing started and freed later is not counted, so it measures growth). `--warmup`
calls are placed first (Graph tokens, connections, encoder set-up, caches), then a snapshot; then `--calls` more
calls, `--at-once` at a time, each ~3 s of real speech sent at 4x real time and ended (`terminated`), then, once
the recorder reports no call, a second snapshot. It prints the allocations that grew between the two (grouped by
the allocating line, with the traceback's innermost frames of our code), the growth per call, and the recorder's
RSS before and after (from /proc). Nothing here is timed: it is a leak probe, not a speed figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.testkit.audio import speech, with_silence  # noqa: E402
from devstack.testkit.teams_platform import CallScript, recorder_on_fake_platform  # noqa: E402

SITECUSTOMIZE = """
import gc, json, os, threading, time, tracemalloc
_dir = os.environ.get("VERBATIM_TRACEMALLOC_DIR")
if _dir:
    def _serve():
        while True:
            for name in sorted(os.listdir(_dir)):
                if name.endswith(".request"):
                    stem = name.removesuffix(".request")
                    if not tracemalloc.is_tracing():
                        tracemalloc.start(12)  # from the first snapshot on: warm-up and start-up stay fast
                    gc.collect()
                    tracemalloc.take_snapshot().dump(os.path.join(_dir, stem + ".snapshot"))
                    counts = {}
                    for obj in gc.get_objects():
                        module = type(obj).__module__
                        key = (module if isinstance(module, str) else "?") + "." + type(obj).__qualname__
                        counts[key] = counts.get(key, 0) + 1
                    with open(os.path.join(_dir, stem + ".counts.json"), "w") as out:
                        json.dump(counts, out)
                    os.rename(os.path.join(_dir, name), os.path.join(_dir, stem + ".done"))
            time.sleep(0.2)
    threading.Thread(target=_serve, name="tracemalloc-probe", daemon=True).start()
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _memory_map(pid: int) -> str:
    """The process's threads, and its resident memory by kind of mapping (from /proc/<pid>/smaps)."""
    threads = next(
        line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Threads:")
    )
    rss: dict[str, int] = {}
    count: dict[str, int] = {}
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:
            path = fields[5] if len(fields) > 5 else ""
            kind = (
                "heap" if path == "[heap]" else "stack" if path.startswith("[stack") else "anon" if not path else "file"
            )
            count[kind] = count.get(kind, 0) + 1
        elif fields and fields[0] == "Rss:":
            rss[kind] = rss.get(kind, 0) + int(fields[1])
    parts = ", ".join(f"{k} {rss.get(k, 0) / 1024:.0f} MiB in {count[k]} mappings" for k in sorted(count))
    return f"threads {threads}; {parts}"


def _snapshot(directory: Path, name: str) -> tracemalloc.Snapshot:
    (directory / f"{name}.request").touch()
    deadline = time.monotonic() + 120
    while not (directory / f"{name}.done").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the recorder did not dump snapshot {name}")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(directory / f"{name}.snapshot"))


def _counts(directory: Path, name: str) -> dict[str, int]:
    counts: dict[str, int] = json.loads((directory / f"{name}.counts.json").read_text())
    return counts


def _wait_idle(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        calls = httpx.get(f"{url}/admin/calls", timeout=10).json()["calls"]
        if not calls:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the recorder still holds calls: {calls}")


def _ours(frame: tracemalloc.Frame) -> bool:
    return str(ROOT) in frame.filename and "/.venv/" not in frame.filename


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the recorder (e.g. MALLOC_ARENA_MAX=2)"
    )
    args = parser.parse_args()

    line = speech("Sell fifty at the close and confirm the fill with the desk.")
    audio = with_silence(line, 0.3, line)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        probe, site = root / "probe", root / "site"
        probe.mkdir()
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        settings = {
            "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
            "VERBATIM_TRACEMALLOC_DIR": str(probe),
            "RECORDER_HEARTBEAT_SECONDS": "1",
            **dict(pair.split("=", 1) for pair in args.env),
        }
        series: list[int] = []  # the recorder's RSS (KiB) after each batch of calls
        with recorder_on_fake_platform(root, settings) as running:
            fake, url = running.platform, running.url
            assert running.process.process is not None
            pid = running.process.process.pid

            async def calls(count: int) -> int:
                placed = 0
                while placed < count:
                    batch = min(args.at_once, count - placed)
                    scripts = [CallScript(audio=audio, speed=4.0) for _ in range(batch)]
                    records = await asyncio.gather(*(fake.drive(url, script) for script in scripts))
                    placed += sum(1 for record in records if record.answer is not None)
                    series.append(_rss_kib(pid))
                return placed

            fake.run(calls(args.warmup), timeout=600)
            _wait_idle(url)
            time.sleep(3)  # the last heartbeats and events
            before, rss_before = _snapshot(probe, "before"), _rss_kib(pid)
            map_before = _memory_map(pid)
            placed = fake.run(calls(args.calls), timeout=1800)
            _wait_idle(url)
            time.sleep(3)
            after, rss_after = _snapshot(probe, "after"), _rss_kib(pid)
            map_after = _memory_map(pid)
            counts_before, counts_after = _counts(probe, "before"), _counts(probe, "after")

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{placed} calls after {args.warmup} warm-up calls ({args.at_once} at a time); load average {load}")
    print(
        f"recorder RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB"
        + (f" ({' '.join(args.env)})" if args.env else "")
    )
    print(f"  before: {map_before}\n  after:  {map_after}")
    print("RSS after each batch (MiB): " + " ".join(f"{kib / 1024:.0f}" for kib in series))
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"traced Python memory: {total / 1024:+.1f} KiB ({total / max(placed, 1) / 1024:+.2f} KiB per call)")
    grown = sorted(
        ((counts_after.get(k, 0) - counts_before.get(k, 0), k) for k in counts_after.keys() | counts_before.keys()),
        reverse=True,
    )
    print("objects (tracked by the garbage collector) alive after gc.collect, before -> after, most grown:")
    for diff, key in grown[: args.top]:
        if diff > 0:
            print(f"  {counts_before.get(key, 0):6d} -> {counts_after.get(key, 0):6d}  {key}")
    print(f"\ngrowth by allocating line (top {args.top}):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback[0]}")
    print(f"\ngrowth by traceback, innermost frames of Verbatim's code (top {args.top}):")
    for stat in after.compare_to(before, "traceback")[: args.top]:
        if stat.size_diff <= 0:
            break
        ours = [frame for frame in stat.traceback if _ours(frame)]
        where = " <- ".join(f"{Path(f.filename).relative_to(ROOT)}:{f.lineno}" for f in ours[-3:][::-1]) or "-"
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback[-1]}  [{where}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
