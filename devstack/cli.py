"""`verbatim-dev` (or `python -m devstack`): the development harness's own command line. `verbatim-dev up`
starts the whole system locally, and with `--demo` a simulated tenant's demo traffic. The product's
`verbatim` command knows nothing of it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from devstack.stack import Component, StackConfig, StackPorts, run_forever


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verbatim-dev", description="Run Verbatim locally on one machine")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = subparsers.add_parser("up", help="start the local stack on 127.0.0.1 (Ctrl-C stops it)")
    up.add_argument("--demo", action="store_true", help="place a handful of demo calls once the stack is up")
    up.add_argument("--state-dir", type=Path, default=None, help="where data, logs and keys live (.devstack)")
    up.add_argument("--no-simulator", action="store_true", help="do not start the Teams/Graph simulator")
    up.add_argument("--no-recorder", action="store_true", help="do not start the recorder")
    up.add_argument(
        "--recorders",
        type=_positive,
        default=1,
        metavar="N",
        help="recorder instances behind the simulator's load balancer (default 1; see docs/recorder.md)",
    )
    up.add_argument("--free-ports", action="store_true", help="use free ports instead of the well-known ones")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 8:
        raise argparse.ArgumentTypeError("between 1 and 8 recorder instances")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _up(args)


def _up(args: argparse.Namespace) -> int:
    config = StackConfig(
        with_simulator=not args.no_simulator, with_recorder=not args.no_recorder, recorders=args.recorders
    )
    if args.state_dir is not None:
        config = replace(config, state_dir=args.state_dir.resolve())
    if args.free_ports:
        config = replace(config, ports=StackPorts.free(recorders=args.recorders))
    return run_forever(config, after_start=(lambda components: _demo(components, config)) if args.demo else None)


def _demo(components: list[Component], config: StackConfig) -> None:
    """Place the demo calls, wait for their verdicts and print the summary (see devstack/demo.py)."""
    from devstack import demo

    demo.run(components, config)


if __name__ == "__main__":
    sys.exit(main())
