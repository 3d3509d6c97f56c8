"""The commands the README and docs/ show exist: CLI subcommands and options, modules, make targets, paths."""

from __future__ import annotations

import argparse
from pathlib import Path

from devstack.cli import build_parser as dev_parser
from tests.docs.commands import check_invocation, invocations, shown_commands
from verbatim.cli import build_parser as product_parser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PARSERS = {"verbatim": product_parser, "verbatim-dev": dev_parser}
# Commands a design note proposes and says are not built yet: (page, command as shown). Each must still fail the
# check, so an entry goes once the command exists.
PROPOSED: set[tuple[str, str]] = set()


def problems_in(documents: list[Path], root: Path = ROOT, proposed: set[tuple[str, str]] | None = None) -> list[str]:
    problems = []
    for shown in (s for d in documents for s in shown_commands(d)):
        for words in invocations(shown.command):
            if (shown.source.name, " ".join(words)) in (proposed or set()):
                continue
            reason = check_invocation(words, root, PARSERS)
            if reason:
                problems.append(f"{shown.source.name}:{shown.line}: {' '.join(words)}: {reason}")
    return problems


def test_every_command_shown_exists() -> None:
    calls = [w for d in DOCUMENTS for s in shown_commands(d) for w in invocations(s.command)]
    assert {w[0].rsplit("/", 1)[-1] for w in calls} >= {"verbatim", "verbatim-dev", "make", "pytest", "python"}
    assert problems_in(DOCUMENTS, proposed=PROPOSED) == []


def test_proposed_commands_are_still_only_proposed() -> None:
    for page, command in PROPOSED:
        shown = [" ".join(w) for s in shown_commands(ROOT / "docs" / page) for w in invocations(s.command)]
        assert command in shown, f"{page} no longer shows {command!r}: drop it from PROPOSED"
        assert check_invocation(command.split(), ROOT, PARSERS) is not None, f"{command!r} exists now"


def test_the_checker_finds_gone_subcommands_options_modules_targets_and_paths(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("run: setup\n\t@true\ntest: lint\n")
    page = tmp_path / "page.md"
    page.write_text(
        "Start with `make run` or `.venv/bin/verbatim-dev up --demo --free-ports`; the `verbatim` command.\n\n"
        "```bash\n"
        "set -a; . .devstack/app.env; set +a; .venv/bin/verbatim verify <id>   # fine\n"
        "verbatim up --demo\n"
        "verbatim policy plan policies.yaml --target sim \\\n"
        "    --simulator-url http://127.0.0.1:7300\n"
        "AzureWebJobsStorage=x .venv/bin/python -m devstack.no_such_module --port 1\n"
        ".venv/bin/pytest tests/no_such_suite && make deploy\n"
        "```\n\n"
        "```\n$ verbatim-dev down\n```\n"
    )
    assert problems_in([page], tmp_path) == [
        "page.md:5: verbatim up --demo: verbatim has no subcommand 'up' "
        "(it has doctor, export, ledger, policy, verify, verify-export)",
        "page.md:6: verbatim policy plan policies.yaml --target sim --simulator-url http://127.0.0.1:7300: "
        "verbatim policy plan has no option --simulator-url",
        "page.md:8: .venv/bin/python -m devstack.no_such_module --port 1: no module devstack.no_such_module",
        "page.md:9: .venv/bin/pytest tests/no_such_suite: no such path: tests/no_such_suite",
        "page.md:9: make deploy: the Makefile has no target 'deploy'",
        "page.md:13: verbatim-dev down: verbatim-dev has no subcommand 'down' (it has up)",
    ]


def test_parsers_are_the_real_ones() -> None:
    assert isinstance(product_parser(), argparse.ArgumentParser)
    assert isinstance(dev_parser(), argparse.ArgumentParser)
