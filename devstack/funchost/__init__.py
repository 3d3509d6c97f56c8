"""A local Azure Functions host for `function_app.app`: HTTP, timers, queues, admin API, extensions.

The Functions Core Tools cannot be installed here; this hosts the same app for the devstack and tests.
`launch_argv(...)` is how `verbatim-dev up` and the test fixtures start it; it is ready when
`status_url(base_url)` answers 200 (`{"state": "Running"}`).
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_APP = "function_app:app"


def launch_argv(
    *,
    script_root: Path | str,
    host: str = "127.0.0.1",
    port: int = 7071,
    app: str = DEFAULT_APP,
    state_dir: Path | str | None = None,
    extensions: list[str] | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command line that runs the host as its own process."""
    argv = [python, "-m", "devstack.funchost", "--script-root", str(script_root), "--host", host, "--port", str(port)]
    argv += ["--app", app]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    for extension in extensions or []:
        argv += ["--extension", extension]
    return argv


def status_url(base_url: str) -> str:
    """The readiness URL: 200 with {"state": "Running"} once the host serves everything."""
    return f"{base_url.rstrip('/')}/admin/host/status"


__all__ = ["DEFAULT_APP", "launch_argv", "status_url"]
