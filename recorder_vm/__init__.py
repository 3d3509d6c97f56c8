"""The recorder bot: answers Teams policy-recording invitations, captures media losslessly, reports via queues.

Importing this package is cheap: `launch_argv` is all `verbatim-dev up` and the tests need to start it.
"""

from __future__ import annotations

import sys
from pathlib import Path


def launch_argv(
    *,
    host: str = "127.0.0.1",
    port: int = 9441,
    media_port: int = 9443,
    state_dir: Path | str | None = None,
    instance_id: str | None = None,
    media_platform: str = "sim",
    python: str | None = None,
) -> list[str]:
    """The command line that starts the recorder (settings come from the environment)."""
    argv = [
        python or sys.executable, "-m", "recorder_vm",
        "--host", host, "--port", str(port),
        "--media-port", str(media_port), "--media-platform", media_platform,
    ]  # fmt: skip
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    if instance_id is not None:
        argv += ["--instance-id", instance_id]
    return argv
