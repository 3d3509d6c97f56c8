"""The Teams/Graph simulator: a local, rule-enforcing stand-in for Microsoft Graph, Entra ID and the Teams
calling platform (identity, tenant and compliance-recording policies, calls with recorder invitations,
media streaming, call records, change notifications, faults and a simulated clock).

Start it with ``python -m devstack.simulator`` (see :func:`launch_argv`); it is ready when
``GET /sim/health`` answers 200. The HTTP API is described in ``devstack/simulator/README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7300
HEALTH_PATH = "/sim/health"
DEMO_TENANT = Path(__file__).with_name("demo_tenant.yaml")


def launch_argv(
    host: str,
    port: int,
    tenant_path: str | Path,
    clock: str,
    *,
    https_port: int | None = None,
    state_dir: str | Path | None = None,
) -> list[str]:
    """The command line that starts the simulator (HTTPS for MSAL on ``https_port``, default ``port + 1``)."""
    if clock not in ("simulated", "realtime"):
        raise ValueError("clock must be 'simulated' or 'realtime'")
    argv = [
        sys.executable,
        "-m",
        "devstack.simulator",
        "--host",
        host,
        "--port",
        str(port),
        "--https-port",
        str(https_port if https_port is not None else port + 1),
        "--tenant",
        str(tenant_path),
        "--clock",
        clock,
    ]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    return argv


def health_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The readiness URL: 200 once the simulator serves requests."""
    return f"http://{host}:{port}{HEALTH_PATH}"
