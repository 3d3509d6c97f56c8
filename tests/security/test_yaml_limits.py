"""Finding 5 of issue 13: a desired-state document is parsed with bounded work. Anchors and aliases are
refused (a few hundred bytes of nested aliases expand to gigabytes when walked, and a self-referencing alias
recursed until Python gave up); size, nesting depth and node count are capped. Every refusal is an
`InvalidDesiredState` naming the reason, so the HTTP routes answer 400 problem+json and the CLI exits 1.
The HTTP routes on the local Functions host are tested with the other bad inputs (test_bad_input.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.policy.conftest import VALID
from verbatim.policy.source import MAX_DEPTH, MAX_NODES, MAX_TEXT_CHARS, SourceLimitExceeded, parse
from verbatim.policy.validation import InvalidDesiredState, UnreadableDesiredState, load_desired_state

REPO_ROOT = Path(__file__).resolve().parents[2]


def alias_bomb(levels: int) -> str:
    """The classic "billion laughs" in YAML: each level a list of nine aliases of the level below."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        refs = ",".join(f"*a{level - 1}" for _ in range(9))
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


SELF_REFERENCE = "version: &loop [1, *loop]\n"


def test_an_alias_bomb_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(SourceLimitExceeded, match="anchors and aliases are not allowed"):
        parse(alias_bomb(4))


def test_a_self_referencing_alias_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(UnreadableDesiredState) as refused:
        load_desired_state(SELF_REFERENCE, "bomb.yaml")
    (issue,) = refused.value.issues
    assert "anchors and aliases are not allowed" in issue.message
    assert issue.position is not None and issue.position.line == 1


def test_an_anchor_without_an_alias_is_refused_too() -> None:
    with pytest.raises(SourceLimitExceeded, match="anchors and aliases"):
        parse("version: &v 1\n")


def test_nesting_deeper_than_the_cap_is_refused_without_recursing() -> None:
    deep = "x: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    with pytest.raises(SourceLimitExceeded, match="nested deeper than"):
        parse(deep)
    # Far deeper than Python's recursion limit: still a clean refusal.
    very_deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(SourceLimitExceeded, match="nested deeper than"):
        parse(very_deep)


def test_more_nodes_than_the_cap_are_refused() -> None:
    many = "x: [" + ",".join("1" for _ in range(MAX_NODES + 1)) + "]\n"
    with pytest.raises(SourceLimitExceeded, match="more than"):
        parse(many)


def test_a_text_longer_than_the_cap_is_refused_before_parsing() -> None:
    with pytest.raises(SourceLimitExceeded, match="longer than"):
        parse("# " + "x" * MAX_TEXT_CHARS + "\n")


def test_the_limits_leave_room_for_real_documents() -> None:
    assert load_desired_state(VALID).desired.version == 1


def test_an_unreadable_document_is_still_an_invalid_desired_state_for_callers_that_catch_that() -> None:
    assert issubclass(UnreadableDesiredState, InvalidDesiredState)


def test_the_cli_refuses_the_bomb_and_exits_1(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(4) + SELF_REFERENCE.replace("version", "again"))
    run = subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "policy", "validate", str(bomb)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "anchors and aliases are not allowed" in run.stderr
    assert "Traceback" not in run.stderr
