"""The `verbatim` command: one subcommand per capability, each registered by its own module.

The development harness has its own command (`verbatim-dev`, in devstack/): the product never imports it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from verbatim import doctor
from verbatim.commands import evidence as evidence_commands
from verbatim.commands import exports as export_commands
from verbatim.commands import policy as policy_commands

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verbatim", description="Compliance recording for Microsoft Teams")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # each module has `register(subparsers)` and sets `handler` on its parsers
    for module in (policy_commands, evidence_commands, export_commands, doctor):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
