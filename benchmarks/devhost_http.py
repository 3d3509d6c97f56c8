"""Requests/s and p50/p99 latency of a trivial HTTP function through the local Functions host.

Starts the host (`python -m devstack.funchost`) on a free port with a two-function app (async and
sync), drives each with `wrk` from a separate process at 1, 10 and 100 concurrent connections, and
repeats every measurement (the median run counts, as neighbours on a shared machine add noise). Then
the same at 100 clients with the host's log level at WARNING, which leaves out the one JSON line every
invocation logs at INFO, to show what that line costs. Prints the tables and writes them into
benchmarks/README.md. Target: p99 < 20 ms at 100 concurrent clients.

    .venv/bin/python benchmarks/devhost_http.py [--duration 10] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.funchost import launch_argv, status_url  # noqa: E402
from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402

APP = Path(__file__).resolve().parent / "apps" / "devhost"
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- devhost_http:start -->", "<!-- devhost_http:end -->"
CONCURRENCY = (1, 10, 100)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Result:
    log_level: str
    variant: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, connections: int, seconds: float) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, errors (non-2xx + socket errors) of one wrk run."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)\s+(\d+)", output))
    return rate, p50, p99, errors


def median_run(url: str, connections: int, seconds: float, repeat: int) -> tuple[float, float, float, int]:
    runs = [run_wrk(url, connections, seconds) for _ in range(repeat)]
    return (
        statistics.median(run[0] for run in runs),
        statistics.median(run[1] for run in runs),
        statistics.median(run[2] for run in runs),
        sum(run[3] for run in runs),
    )


def measure(log_level: str, concurrency: tuple[int, ...], duration: float, repeat: int) -> list[Result]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as state:
        host = ManagedProcess(
            name="functions-host",
            argv=launch_argv(script_root=APP, port=port, state_dir=Path(state)),
            ready=http_ready(status_url(base_url), ok=lambda status: status == 200),
            env={"VERBATIM_LOG_LEVEL": log_level},
            log_path=Path(state) / "host.log",
            ports=(port,),
        )
        results = []
        with host:
            for variant in ("async", "sync"):
                url = f"{base_url}/api/ping-{variant}"
                run_wrk(url, 10, 2)  # warm-up
                for connections in concurrency:
                    rate, p50, p99, errors = median_run(url, connections, duration, repeat)
                    results.append(Result(log_level, variant, connections, rate, p50, p99, errors))
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| host log level | function | concurrent clients | requests/s | p50 latency | p99 latency | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.log_level} | {r.variant} | {r.connections} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} ms | "
            f"{r.p99_ms:.2f} ms | {r.errors} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def write_readme(section: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median counts (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update benchmarks/README.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: `make setup` installs it (Debian package wrk)", file=sys.stderr)
        return 1
    results = measure("INFO", CONCURRENCY, args.duration, args.repeat)
    quiet = measure("WARNING", (100,), args.duration, args.repeat)
    rendered = table(results + quiet)
    print(rendered)
    verdicts = []
    for variant in ("async", "sync"):
        p99 = next(r.p99_ms for r in results if r.connections == 100 and r.variant == variant)
        verdicts.append(f"{variant} {'met' if p99 < 20 else 'NOT met'} ({p99:.2f} ms)")
    verdict = ", ".join(verdicts)
    print(f"\ntarget p99 < 20 ms at 100 concurrent clients (INFO logging): {verdict}")
    if not args.no_write:
        section = "\n".join(
            [
                "## Local Functions host: HTTP (`benchmarks/devhost_http.py`)",
                "",
                'A trivial anonymous function (`return HttpResponse("pong")`) through `python -m devstack.funchost`,',
                f"load from `wrk -t1 --latency` in a separate process, median of {args.repeat} runs of "
                f"{args.duration:.0f} s per row, measured {time.strftime('%Y-%m-%d')} on {machine()}.",
                "Host and load generator share the machine's cores. At INFO (the default) every invocation",
                "writes one JSON log line; the WARNING rows leave it out to show what it costs.",
                "",
                rendered,
                "",
                f"Target p99 < 20 ms at 100 concurrent clients, default logging: **{verdict}**.",
            ]
        )
        write_readme(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
