"""``python -m devstack.simulator --host 127.0.0.1 --port 7300 --tenant FILE [--clock simulated|realtime]``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from . import DEFAULT_HOST, DEFAULT_PORT, DEMO_TENANT
from .app import serve
from .odata import parse_datetime
from .tenant import TenantStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.simulator", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--https-port", type=int, default=None, help="HTTPS listener for MSAL (default port+1, 0 = any free port)"
    )
    parser.add_argument("--no-https", action="store_true", help="serve plain HTTP only")
    parser.add_argument("--tenant", type=Path, default=DEMO_TENANT, help="tenant model (YAML or JSON)")
    parser.add_argument("--clock", choices=["simulated", "realtime"], default="realtime")
    parser.add_argument("--start", default=None, help="start instant of the simulated clock (ISO 8601)")
    parser.add_argument("--state-dir", type=Path, default=Path(".devstack/simulator"))
    parser.add_argument("--seed", type=int, default=1234, help="seed for rate-based faults")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        TenantStore.load(args.tenant)
    except (OSError, ValueError) as error:
        print(f"simulator: cannot load tenant {args.tenant}: {error}", file=sys.stderr)
        return 2
    args.state_dir.mkdir(parents=True, exist_ok=True)
    https_port = None if args.no_https else (args.https_port if args.https_port is not None else args.port + 1)
    start = parse_datetime(args.start) if args.start else None
    server = serve(args.host, args.port, https_port, args.tenant, args.clock, args.state_dir, start, args.seed)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements-dev.txt
        asyncio.run(server)
    else:
        uvloop.run(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
