"""Requests/s and p50/p99 latency of a trivial HTTP function through the local Functions host.

Starts the host (`python -m devstack.funchost`) on a free port with a two-function app (async and
sync) and drives each with `wrk` from a separate process at 1, 10 and 100 concurrent connections.
Every measurement is repeated and the median run counts: neighbours on a shared machine add noise to
the tail. Besides latency it records the host process's CPU time per request, which noise barely moves.
Two references at 100 clients: the host at log level WARNING (without the JSON line every invocation
logs at INFO, the default) and bare aiohttp answering "pong" (the floor on this machine). Prints the
table and writes it into benchmarks/README.md. Target: p99 < 20 ms at 100 concurrent clients.

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
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.funchost import launch_argv, status_url  # noqa: E402
from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402

APPS = Path(__file__).resolve().parent / "apps"
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- devhost_http:start -->", "<!-- devhost_http:end -->"
CONCURRENCY = (1, 10, 100)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    server: str
    function: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    errors: int


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    errors: int


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of a process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that just ended
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise ValueError(f"wrk output without {pattern!r}:\n{text}")
    return match.group(1)


def run_wrk(url: str, connections: int, seconds: float, pid: int) -> Run:
    before = _cpu_seconds(pid)
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu = _cpu_seconds(pid) - before
    requests = int(_search(r"(\d+) requests in", output))
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)\s+(\d+)", output))
    return Run(
        requests_per_second=float(_search(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_milliseconds(_search(r"^\s+50%\s+(\S+)", output)),
        p99_ms=_milliseconds(_search(r"^\s+99%\s+(\S+)", output)),
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
        errors=errors,
    )


def median_run(url: str, connections: int, seconds: float, repeat: int, pid: int) -> Run:
    runs = [run_wrk(url, connections, seconds, pid) for _ in range(repeat)]
    return Run(
        requests_per_second=statistics.median(run.requests_per_second for run in runs),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=statistics.median(run.p99_ms for run in runs),
        cpu_us_per_request=statistics.median(run.cpu_us_per_request for run in runs),
        errors=sum(run.errors for run in runs),
    )


@contextmanager
def functions_host(log_level: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as state:
        host = ManagedProcess(
            name="functions-host",
            argv=launch_argv(script_root=APPS / "devhost", port=port, state_dir=Path(state)),
            ready=http_ready(status_url(base_url), ok=lambda status: status == 200),
            env={"VERBATIM_LOG_LEVEL": log_level},
            log_path=Path(state) / "host.log",
            ports=(port,),
        )
        with host:
            assert host.pid is not None
            yield base_url, host.pid


@contextmanager
def bare_aiohttp() -> Iterator[tuple[str, int]]:
    port = free_port()
    server = ManagedProcess(
        name="bare-aiohttp",
        argv=[sys.executable, str(APPS / "bare_aiohttp.py"), str(port)],
        ready=http_ready(f"http://127.0.0.1:{port}/api/ping", ok=lambda status: status == 200),
        ports=(port,),
    )
    with server:
        assert server.pid is not None
        yield f"http://127.0.0.1:{port}", server.pid


def measure(duration: float, repeat: int) -> list[Result]:
    results: list[Result] = []

    def drive(server: str, function: str, url: str, pid: int, concurrency: tuple[int, ...]) -> None:
        run_wrk(url, 10, 2, pid)  # warm-up
        for connections in concurrency:
            run = median_run(url, connections, duration, repeat, pid)
            results.append(
                Result(
                    server,
                    function,
                    connections,
                    run.requests_per_second,
                    run.p50_ms,
                    run.p99_ms,
                    run.cpu_us_per_request,
                    run.errors,
                )
            )

    with functions_host("INFO") as (base_url, pid):
        for function in ("async", "sync"):
            drive("host, log level INFO (default)", function, f"{base_url}/api/ping-{function}", pid, CONCURRENCY)
    with functions_host("WARNING") as (base_url, pid):
        for function in ("async", "sync"):
            drive("host, log level WARNING", function, f"{base_url}/api/ping-{function}", pid, (100,))
    with bare_aiohttp() as (base_url, pid):
        drive("bare aiohttp (floor)", "async", f"{base_url}/api/ping", pid, (100,))
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| server | function | concurrent clients | requests/s | p50 latency | p99 latency | server CPU per request "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.function} | {r.connections} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} ms "
            f"| {r.p99_ms:.2f} ms | {r.cpu_us_per_request:.0f} µs | {r.errors} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def _row(results: list[Result], server: str, function: str) -> Result:
    return next(r for r in results if r.server.startswith(server) and r.function == function and r.connections == 100)


def section(
    results: list[Result], duration: float, repeat: int, load_before: float, load_after: float, verdict: str
) -> str:
    """The README section: how it was measured, the table, and what the figures say."""
    default = _row(results, "host, log level INFO", "async")
    quiet = _row(results, "host, log level WARNING", "async")
    quiet_sync = _row(results, "host, log level WARNING", "sync")
    floor = _row(results, "bare", "async")
    how = (
        'A trivial anonymous function (`return HttpResponse("pong")`, async and sync variants) through '
        "`python -m devstack.funchost`; load from `wrk -t1 --latency` in a separate process; median of "
        f"{repeat} runs of {duration:.0f} s per row; measured {time.strftime('%Y-%m-%d')} on {machine()}, host "
        "and load generator sharing those cores with other work (1-minute load average "
        f"{load_before:.1f} at the start, {load_after:.1f} at the end). CPU per request is the server process's "
        "user + system time divided by the requests served; it moves far less with the neighbours than the "
        "latencies do."
    )
    meaning = (
        f"What the figures say: the host spends {default.cpu_us_per_request:.0f} µs of CPU per request, bare "
        f"aiohttp {floor.cpu_us_per_request:.0f} µs; "
        f"{default.cpu_us_per_request - quiet.cpu_us_per_request:.0f} µs of the difference is the one JSON line "
        "every invocation logs at INFO (`verbatim.platform.logging`: the LogRecord, its JSON formatting, the write). "
        'With that line off (host.json `"logging": {"logLevel": {"Function": "Warning"}}`, or '
        f"`VERBATIM_LOG_LEVEL=WARNING`) p99 at 100 clients is {quiet.p99_ms:.1f} ms (async) and "
        f"{quiet_sync.p99_ms:.1f} ms (sync). The host is one Python process on one core, so at 100 closed-loop "
        "clients its latency is mostly queueing: p50 is about clients times CPU per request."
    )
    return "\n".join(
        [
            "## Local Functions host: HTTP (`benchmarks/devhost_http.py`)",
            "",
            textwrap.fill(how, width=110),
            "",
            table(results),
            "",
            f"Target p99 < 20 ms at 100 concurrent clients, default logging: **{verdict}**.",
            "",
            textwrap.fill(meaning, width=110),
        ]
    )


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
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median counts (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update benchmarks/README.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: `make setup` installs it (Debian package wrk)", file=sys.stderr)
        return 1
    load_before = os.getloadavg()[0]
    results = measure(args.duration, args.repeat)
    load_after = os.getloadavg()[0]
    rendered = table(results)
    print(rendered)
    verdicts = []
    for r in results:
        if r.connections == 100 and r.server.endswith("(default)"):
            verdicts.append(f"{r.function} {'met' if r.p99_ms < 20 else 'NOT met'} (p99 {r.p99_ms:.2f} ms)")
    verdict = ", ".join(verdicts)
    print(f"\ntarget p99 < 20 ms at 100 concurrent clients: {verdict}")
    if not args.no_write:
        write_readme(section(results, args.duration, args.repeat, load_before, load_after, verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
