"""How many concurrent real-time audio streams the Teams/Graph simulator sustains, and at what CPU cost.

Starts the simulator (real-time clock) and, in a separate process, a minimal recorder bot that answers
every invitation with a media endpoint and counts what arrives. For each step it places N policy calls
(N streams of 20 ms frames at real-time pace, scripted speech included), waits until every stream is
flowing, then measures for a while: the simulator's CPU (from /proc, as % of one core), frames delivered
against the real-time expectation, frame lateness at the receiver, and the simulator's late media ticks.

    .venv/bin/python benchmarks/sim_calls.py                 # 50, 100, 200, 300 streams, 20 s each
    .venv/bin/python benchmarks/sim_calls.py --steps 200 --seconds 60

Target (issue 3): >= 200 concurrent real-time streams using <= 1 core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack.processes import free_port  # noqa: E402
from devstack.simulator import DEMO_TENANT, launch_argv  # noqa: E402

TENANT_ID = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
RECORDER_APP = "2b7e4f10-6c3a-4d8e-a1f2-0c9d8e7f6a51"
RECORDER_SECRET = "sim-recorder-local-only"  # noqa: S105 - the demo tenant's simulator-only credential
INSTANCE = "0d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the bot process ---------------------------------------------------------------------------------


class Bot:
    """Answers invitations and counts media frames with their arrival lateness."""

    def __init__(self, sim: str, port: int) -> None:
        self.sim, self.port = sim, port
        self.token: str | None = None
        self.http: aiohttp.ClientSession | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.measuring = False
        self.answered = 0

    async def get_token(self) -> str:
        if self.token is None:
            assert self.http is not None
            form = {
                "grant_type": "client_credentials",
                "client_id": RECORDER_APP,
                "client_secret": RECORDER_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            }
            async with self.http.post(f"{self.sim}/{TENANT_ID}/oauth2/v2.0/token", data=form) as response:
                self.token = (await response.json())["access_token"]
        return self.token

    async def incoming(self, request: web.Request) -> web.Response:
        body = await request.json()
        call_id = body["value"][0]["resourceData"]["id"]
        asyncio.get_running_loop().create_task(self.answer(call_id))
        return web.Response(status=202)

    async def answer(self, call_id: str) -> None:
        assert self.http is not None
        session = str(uuid.uuid4())
        blob = {
            "platform": "verbatim-sim-media",
            "version": 1,
            "endpoint": f"ws://127.0.0.1:{self.port}/media/{session}",
            "mediaSessionId": session,
        }
        body = {
            "callbackUri": f"http://127.0.0.1:{self.port}/callback",
            "acceptedModalities": ["audio"],
            "mediaConfig": {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": json.dumps(blob)},
        }
        headers = {"Authorization": f"Bearer {await self.get_token()}"}
        url = f"{self.sim}/v1.0/communications/calls/{call_id}/answer"
        async with self.http.post(url, json=body, headers=headers) as response:
            if response.status == 202:
                self.answered += 1

    async def callback(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    async def media(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        state: dict[str, Any] = {"frames": 0, "first": None, "window": 0, "late": []}
        self.sessions[request.match_info["session"]] = state
        loop = asyncio.get_running_loop()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                now = loop.time()
                if state["first"] is None:
                    state["first"] = now
                expected = state["first"] + state["frames"] * 0.02
                state["frames"] += 1
                if self.measuring:
                    state["window"] += 1
                    state["late"].append(now - expected)
        return ws

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "answered": self.answered,
                "sessions": len(self.sessions),
                "flowing": sum(1 for s in self.sessions.values() if s["frames"] > 0),
                "windowFrames": sum(s["window"] for s in self.sessions.values()),
            }
        )

    async def control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "start":
            for state in self.sessions.values():
                state["window"], state["late"] = 0, []
            self.measuring = True
            return web.json_response({})
        self.measuring = False
        # each stream's lateness against its own best frame: how far delivery strays from a steady 20 ms beat
        parts = [np.array(s["late"]) - min(s["late"]) for s in self.sessions.values() if s["late"]]
        data = np.concatenate(parts) * 1000 if parts else np.zeros(1)
        return web.json_response(
            {
                "windowFrames": sum(s["window"] for s in self.sessions.values()),
                "p50": float(np.percentile(data, 50)),
                "p99": float(np.percentile(data, 99)),
                "max": float(data.max()),
            }
        )

    async def run(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application()
        app.router.add_post("/api/calling", self.incoming)
        app.router.add_post("/callback", self.callback)
        app.router.add_get("/media/{session}", self.media)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/measure/{action}", self.control)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()
        await self.http.close()


# -- the driver --------------------------------------------------------------------------------------


def bench_tenant(path: Path, users: int, bot_port: int) -> None:
    """The demo tenant plus N recorded users (non-strict, so a slow start never blocks a call)."""
    tenant = yaml.safe_load(DEMO_TENANT.read_text())
    tenant["applicationInstances"][0]["webhook"] = f"http://127.0.0.1:{bot_port}/api/calling"
    for i in range(users):
        uid = str(uuid.UUID(int=i + 1))
        tenant["users"].append(
            {"id": uid, "userPrincipalName": f"bench{i}@contoso.onmicrosoft.com", "displayName": f"Bench {i}"}
        )
        tenant["assignments"].append(
            {"policyType": "TeamsComplianceRecordingPolicy", "policyName": "AdvisoryRecording", "user": uid}
        )
    path.write_text(yaml.safe_dump(tenant))


async def wait_ready(http: aiohttp.ClientSession, url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


async def step(
    sim: str, bot: str, http: aiohttp.ClientSession, pids: tuple[int, int], streams: int, seconds: float
) -> dict[str, Any]:
    pid, bot_pid = pids
    await http.post(f"{sim}/sim/reset")
    call_ids = []
    script = [
        {"at": 1.0 + 4.0 * k, "text": "Buy five hundred at par, confirmed."} for k in range(int(seconds / 4) + 10)
    ]
    for i in range(streams):
        body = {
            "type": "peerToPeer",
            "mediaPace": "realtime",
            "untilHangup": True,
            "participants": [
                {"key": "t", "user": f"bench{i}@contoso.onmicrosoft.com", "speech": script},
                {"key": "u", "user": "una.unrecorded@contoso.onmicrosoft.com"},
            ],
        }
        async with http.post(f"{sim}/sim/calls", json=body) as response:
            call_ids.append((await response.json())["id"])
    deadline = time.monotonic() + 60
    while True:
        async with http.get(f"{bot}/stats") as response:
            stats = await response.json()
        if stats["flowing"] >= streams:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stats['flowing']} of {streams} streams started")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # settle
    await http.delete(f"{sim}/sim/media/stats")
    await http.post(f"{bot}/measure/start")
    cpu0, bot0, wall0 = cpu_seconds(pid), cpu_seconds(bot_pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, bot1, wall1 = cpu_seconds(pid), cpu_seconds(bot_pid), time.monotonic()
    async with http.post(f"{bot}/measure/stop") as response:
        received = await response.json()
    async with http.get(f"{sim}/sim/media/stats") as response:
        pump = await response.json()
    elapsed = wall1 - wall0
    expected = streams * elapsed * 50
    result = {
        "streams": streams,
        "cpu_pct_one_core": 100 * (cpu1 - cpu0) / elapsed,
        "bot_cpu_pct": 100 * (bot1 - bot0) / elapsed,
        "frames_per_s": received["windowFrames"] / elapsed,
        "delivered_pct": 100 * received["windowFrames"] / expected,
        "lateness_p50_ms": received["p50"],
        "lateness_p99_ms": received["p99"],
        "lateness_max_ms": received["max"],
        "late_ticks": pump["lateTicks"],
        "tick_late_p99_ms": pump["tickLatenessP99Ms"],
        "tick_work_p99_ms": pump["tickWorkP99Ms"],
        "tick_cpu_p99_ms": pump["tickCpuP99Ms"],
        "rss_mb": rss_mb(pid),
    }
    for call_id in call_ids:
        await http.post(f"{sim}/sim/calls/{call_id}/hangup")
    return result


async def drive(args: argparse.Namespace) -> None:
    sim_port, https_port, bot_port = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sim-bench-"))
    tenant = workdir / "tenant.yaml"
    bench_tenant(tenant, max(args.steps), bot_port)
    state = REPO / ".devstack" / "bench-simulator"
    state.mkdir(parents=True, exist_ok=True)
    argv = launch_argv("127.0.0.1", sim_port, tenant, "realtime", https_port=https_port, state_dir=state)
    sim_log, bot_log = (workdir / "simulator.log").open("wb"), (workdir / "bot.log").open("wb")
    simulator = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=sim_log, stderr=subprocess.STDOUT)
    sim = f"http://127.0.0.1:{sim_port}"
    bot_argv = [sys.executable, __file__, "--bot", str(bot_port), "--sim", sim]
    bot_process = await asyncio.create_subprocess_exec(*bot_argv, cwd=REPO, stdout=bot_log, stderr=subprocess.STDOUT)
    bot = f"http://127.0.0.1:{bot_port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await wait_ready(http, f"{sim}/sim/health")
            await wait_ready(http, f"{bot}/stats")
            load = os.getloadavg()[0]
            print(f"simulator pid {simulator.pid}, bot pid {bot_process.pid}, {os.cpu_count()} cores, load {load:.1f}")
            print(
                f"{args.seconds:g} s per step. rx = a frame's arrival at the bot against its stream's steady "
                "20 ms beat; tick = how late the simulator's 20 ms media tick started; "
                "work / cpu = one tick's wall / CPU time"
            )
            print(
                f"{'streams':>8} {'sim CPU%':>9} {'bot CPU%':>9} {'frames/s':>9} {'delivered':>10} "
                f"{'rx p50':>8} {'rx p99':>8} {'rx max':>8} {'tick p99':>9} {'work p99':>9} {'cpu p99':>8} "
                f"{'RSS MB':>7}"
            )
            for streams in args.steps:
                r = await step(sim, bot, http, (simulator.pid, bot_process.pid), streams, args.seconds)
                print(
                    f"{r['streams']:>8} {r['cpu_pct_one_core']:>9.1f} {r['bot_cpu_pct']:>9.1f} "
                    f"{r['frames_per_s']:>9.0f} {r['delivered_pct']:>9.2f}% "
                    f"{r['lateness_p50_ms']:>6.1f}ms {r['lateness_p99_ms']:>6.1f}ms {r['lateness_max_ms']:>6.1f}ms "
                    f"{r['tick_late_p99_ms']:>7.1f}ms {r['tick_work_p99_ms']:>7.1f}ms {r['tick_cpu_p99_ms']:>6.1f}ms "
                    f"{r['rss_mb']:>7.0f}",
                    flush=True,
                )
                await asyncio.sleep(1)
    finally:
        for process in (bot_process, simulator):
            process.send_signal(signal.SIGTERM)
        for process in (bot_process, simulator):
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
        sim_log.close()
        bot_log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200, 300])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bot", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.bot:
        uvloop.run(Bot(args.sim, args.bot).run())
    else:
        uvloop.run(drive(args))


if __name__ == "__main__":
    main()
