"""`verbatim policy ...`: validate a desired-state file, plan it against the tenant, write the PowerShell
that applies it (or the read-only export script), and apply it to the simulator.

Exit codes of `plan` (also used by `validate`, `script` and `apply` where they apply):
  0  valid, and no changes: the tenant matches the desired state
  1  invalid desired state, unreadable input, or the target could not be read or changed
  2  valid, and there are changes to make
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from verbatim.platform.errors import VerbatimError
from verbatim.policy.validation import InvalidDesiredState, Validated, load_desired_state

EXIT_NO_CHANGES = 0
EXIT_INVALID = 1
EXIT_CHANGES = 2
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:7300"


class _TargetAction(argparse.Action):
    """`--target sim` or `--target export FILE`."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        values = list(values)
        if values == ["sim"]:
            namespace.target = "sim", None
        elif len(values) == 2 and values[0] == "export":
            namespace.target = "export", Path(values[1])
        else:
            parser.error("--target takes 'sim' or 'export FILE' (a JSON file written by the export script)")


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser(
        "policy",
        help="recording policies as code: validate, plan, script, apply",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")

    validate = commands.add_parser("validate", help="check a desired-state file; exit 0 valid, 1 invalid")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=_validate)

    for name, handler, text in (
        ("plan", _plan, "compare a desired-state file with the tenant; exit 0 no changes, 2 changes, 1 invalid"),
        ("script", _script, "write idempotent PowerShell (with -WhatIf) for the changes of the plan"),
        ("apply", _apply, "apply the plan to the simulator (its /sim API and the Graph assignment API)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("file", type=Path, help="desired-state YAML file")
        command.add_argument(
            "--target",
            nargs="+",
            action=_TargetAction,
            default=("sim", None),
            metavar="sim|export FILE",
            help="read the current state from the simulator (default) or from an export JSON file",
        )
        command.add_argument("--sim-url", default=None, help=f"simulator base URL (default {DEFAULT_SIMULATOR_URL})")
        if name == "plan":
            command.add_argument("--json", action="store_true", help="print the plan as JSON (contract policy-plan.v1)")
        if name == "script":
            command.add_argument("-o", "--output", type=Path, help="write the script here instead of stdout")
        if name == "apply":
            command.add_argument(
                "--recorder-webhook",
                default=None,
                help="calling webhook for new application instances (default: copied from an instance of the same bot)",
            )
        command.set_defaults(handler=handler)

    export = commands.add_parser("export-script", help="write the read-only PowerShell that exports the current state")
    export.add_argument("-o", "--output", type=Path, help="write the script here instead of stdout")
    export.set_defaults(handler=_export_script)

    schema = commands.add_parser("schema", help="print the JSON Schema of desired-state files")
    schema.set_defaults(handler=_schema)

    capture = commands.add_parser(
        "capture-setting", help="print the recorder's RECORDER_CAPTURE_POLICIES app setting for a desired-state file"
    )
    capture.add_argument("file", type=Path)
    capture.set_defaults(handler=_capture_setting)


def _load(path: Path, err: TextIO) -> Validated | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror}", file=err)
        return None
    try:
        return load_desired_state(text, str(path))
    except InvalidDesiredState as invalid:
        for issue in invalid.issues:
            print(issue.render(str(path)), file=err)
        errors = sum(1 for issue in invalid.issues if issue.severity == "error")
        print(f"{path}: invalid: {errors} error(s)", file=err)
        return None


def _validate(args: argparse.Namespace) -> int:
    validated = _load(args.file, sys.stderr)
    if validated is None:
        return EXIT_INVALID
    for warning in validated.warnings:
        print(warning.render(str(args.file)), file=sys.stderr)
    print(f"{args.file}: valid")
    return EXIT_NO_CHANGES


def _capture_setting(args: argparse.Namespace) -> int:
    from verbatim.policy.compile import recorder_capture_setting

    validated = _load(args.file, sys.stderr)
    if validated is None:
        return EXIT_INVALID
    print(recorder_capture_setting(validated.desired))
    return EXIT_NO_CHANGES


def _simulator_url(args: argparse.Namespace) -> str:
    from verbatim.platform.settings import get_settings

    return str(args.sim_url or get_settings().policy_simulator_url or DEFAULT_SIMULATOR_URL)


def _current(args: argparse.Namespace) -> Any:
    from verbatim.policy.service import current_from_export

    kind, path = args.target
    if kind == "export":
        return current_from_export(path)
    from verbatim.policy.simulator import current_from_simulator

    return current_from_simulator(_simulator_url(args))


def _planned(args: argparse.Namespace) -> Any:
    from verbatim.policy.service import plan

    validated = _load(args.file, sys.stderr)
    if validated is None:
        return None
    try:
        current = _current(args)
    except (OSError, ValueError, VerbatimError) as error:
        print(f"cannot read the current state: {error}", file=sys.stderr)
        return None
    return plan(validated, current)


def _plan(args: argparse.Namespace) -> int:
    from verbatim.policy.render import render_plan

    result = _planned(args)
    if result is None:
        return EXIT_INVALID
    if args.json:
        print(result.model_dump_json(by_alias=True, indent=2))
    else:
        sys.stdout.write(render_plan(result, str(args.file)))
    return EXIT_CHANGES if result.has_changes else EXIT_NO_CHANGES


def _script(args: argparse.Namespace) -> int:
    from verbatim.policy.powershell import change_script

    result = _planned(args)
    if result is None:
        return EXIT_INVALID
    _write(change_script(result, args.file.name), args.output)
    return EXIT_CHANGES if result.has_changes else EXIT_NO_CHANGES


def _apply(args: argparse.Namespace) -> int:
    from verbatim.policy.render import render_plan, summary

    if args.target[0] != "sim":
        print("apply works against the simulator only; for a real tenant run `verbatim policy script`", file=sys.stderr)
        return EXIT_INVALID
    result = _planned(args)
    if result is None:
        return EXIT_INVALID
    sys.stdout.write(render_plan(result, str(args.file)))
    if not result.has_changes:
        return EXIT_NO_CHANGES
    from verbatim.graph import graph_client
    from verbatim.platform.settings import get_settings
    from verbatim.policy.simulator import apply_to_simulator

    url = _simulator_url(args)
    try:
        graph = graph_client(get_settings().model_copy(update={"graph_base_url": url}))
        try:
            applied = apply_to_simulator(
                result,
                url,
                graph=graph,
                ledger=_ledger_or_none(),
                actor=f"cli:{getpass.getuser()}",
                recorder_webhook=args.recorder_webhook,
            )
        finally:
            graph.close()
    except (OSError, ValueError, VerbatimError) as error:
        print(f"apply failed: {error}", file=sys.stderr)
        return EXIT_INVALID
    print(f"Applied {applied} change(s). {summary(result)}")
    return EXIT_NO_CHANGES


def _ledger_or_none() -> Any:
    """The ledger when Cosmos is configured (the devstack sets it); otherwise applied changes are only printed."""
    from verbatim.platform.settings import get_settings

    settings = get_settings()
    if not settings.cosmos_endpoint:
        return None
    from verbatim.wiring import container_for

    return container_for(settings).ledger


def _export_script(args: argparse.Namespace) -> int:
    from verbatim.policy.powershell import export_script

    _write(export_script(), args.output)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from verbatim.policy.schema import desired_state_schema

    print(json.dumps(desired_state_schema(), indent=2, sort_keys=True))
    return 0


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m verbatim.commands.policy ...` runs the same commands as `verbatim policy ...`."""
    parser = argparse.ArgumentParser(prog="verbatim")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["policy", *(argv if argv is not None else sys.argv[1:])])
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
