"""The `verbatim` command: one subcommand per capability, each registered by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Modules that add subcommands; each has `register(subparsers)` and sets `handler` on its parsers.
# The devstack lives outside verbatim/ (it may import the product, never the other way round), so it is
# looked up by name and only when installed alongside.
COMMAND_MODULES: tuple[str, ...] = ("devstack.commands", "verbatim.policy.cli", "verbatim.evidence.commands")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verbatim", description="Compliance recording for Microsoft Teams")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and name.startswith(error.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
