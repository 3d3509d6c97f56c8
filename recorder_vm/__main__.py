"""`python -m recorder_vm --host 127.0.0.1 --port 9441 --media-port 9443 --state-dir DIR`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recorder_vm.app import run
from recorder_vm.settings import RecorderSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recorder_vm", description="Verbatim recorder bot")
    parser.add_argument("--host", help="signalling listen address (RECORDER_LISTEN_HOST)")
    parser.add_argument("--port", type=int, help="signalling and callback port (RECORDER_LISTEN_PORT)")
    parser.add_argument("--media-port", type=int, help="media port (RECORDER_MEDIA_PORT)")
    parser.add_argument("--media-platform", choices=("sim", "windows"), help="RECORDER_MEDIA_PLATFORM")
    parser.add_argument("--state-dir", help="outbox and spill buffer (RECORDER_STATE_DIR)")
    parser.add_argument("--instance-id", help="this instance's name (RECORDER_INSTANCE_ID)")
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "listen_host": args.host,
            "listen_port": args.port,
            "media_port": args.media_port,
            "media_platform": args.media_platform,
            "state_dir": args.state_dir,
            "instance_id": args.instance_id,
        }.items()
        if value is not None
    }
    settings = RecorderSettings.model_validate({**RecorderSettings().model_dump(), **overrides})
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
