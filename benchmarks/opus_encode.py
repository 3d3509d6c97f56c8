"""Access-copy encoding CPU: the chunk encoder (`verbatim.evidence.opus.encode_chunk`, the whole chunk in one
encoder call) against the frame-by-frame feed it replaced (one 20-ms AudioFrame per encoder call, the same
libopus settings), alternated in this process on the same speech, so both see the same machine.

Prints, per run, the CPU time (this process, user + system) to encode `--seconds` of speech each way, then the
median and the spread of x real time per core and the saving, with the load average. The packets of both are
compared (they must be identical: tests/unit/test_opus_chunks.py).

    .venv/bin/python benchmarks/opus_encode.py [--seconds 600] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.testkit.captures import speech
from devstack.testkit.opus_reference import frame_by_frame
from verbatim.evidence import opus


def cpu(action: object) -> tuple[float, object]:
    started = time.process_time()
    result = action()  # type: ignore[operator]
    return time.process_time() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="speech encoded per measurement")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pcm = speech(args.seconds)
    [plan] = opus.plan_chunks(len(pcm), 10**9)
    print(f"machine: {os.cpu_count()} cores; {args.seconds:g} s of speech per encode; load {os.getloadavg()[0]:.1f}")
    print("| run | frame by frame (before) | one call per chunk (now) | same packets |")
    print("|---|---|---|---|")
    before, after = [], []
    for run in range(args.runs):
        old_cpu, old_packets = cpu(lambda: frame_by_frame(plan, pcm))
        new_cpu, new_chunk = cpu(lambda: opus.encode_chunk(plan, pcm))
        same = old_packets == new_chunk.packets  # type: ignore[attr-defined]
        before.append(args.seconds / old_cpu)
        after.append(args.seconds / new_cpu)
        print(f"| {run + 1} | {old_cpu * 1000:.0f} ms CPU ({before[-1]:.0f}x) "
              f"| {new_cpu * 1000:.0f} ms ({after[-1]:.0f}x) | {same} |")  # fmt: skip
    savings = [1 - b / a for a, b in zip(after, before, strict=True)]
    print(
        f"x real time per core, median (lowest-highest): before {statistics.median(before):.0f} "
        f"({min(before):.0f}-{max(before):.0f}), now {statistics.median(after):.0f} "
        f"({min(after):.0f}-{max(after):.0f}); "
        f"CPU saved {statistics.median(savings) * 100:.1f} % ({min(savings) * 100:.1f}-{max(savings) * 100:.1f}); "
        f"load {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
