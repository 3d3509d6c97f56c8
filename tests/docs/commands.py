"""The commands the documentation shows, checked against what the repository offers.

From every code span and code block: `verbatim ...` and `verbatim-dev ...` (their subcommands and `--options`,
read from the CLIs' own argparse parsers), `python -m <module>` (the module exists), `make <target>` (the Makefile
has it) and the repository paths given to `.venv/bin/python` or `.venv/bin/pytest` (they exist).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

_SEGMENT_SPLIT = re.compile(r"\s*(?:;|&&|\|\||\||\$\(|`)\s*")
_PROGRAM = re.compile(r"^(?:\S*/)?(verbatim|verbatim-dev|python3?(?:\.\d+)?|pytest|make)$")


@dataclass(frozen=True)
class Shown:
    source: Path
    line: int
    command: str


def shown_commands(path: Path) -> list[Shown]:
    """Every shell line of the code blocks and every code span, continuation lines joined, comments dropped."""
    tokens = MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    shown = []
    for token in tokens:
        if token.type == "fence" and token.info.strip() in ("", "bash", "sh", "shell", "console", "text"):
            line = token.map[0] + 2 if token.map else 0
            for offset, text in _joined_lines(token.content):
                shown.append(Shown(path, line + offset, text))
        elif token.type == "inline" and token.children:
            line = token.map[0] + 1 if token.map else 0
            for child in token.children:
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "code_inline":
                    shown.append(Shown(path, line, child.content))
    return shown


def _joined_lines(content: str) -> Iterator[tuple[int, str]]:
    start, pending = 0, ""
    for number, raw in enumerate(content.split("\n")):
        if not pending:
            start = number
        text = raw.removeprefix("$ ")
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        yield start, pending + text
        pending = ""


def _words(segment: str) -> list[str]:
    segment = segment.split(" #", 1)[0]
    try:
        return shlex.split(segment)
    except ValueError:
        return segment.split()


def invocations(command: str) -> Iterator[list[str]]:
    """Each program call in a shell line that names one of ours, as its words (environment assignments dropped)."""
    for segment in _SEGMENT_SPLIT.split(command):
        words = _words(segment)
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            words = words[1:]
        if words and _PROGRAM.match(words[0]):
            yield words


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def check_cli(words: list[str], parser: argparse.ArgumentParser) -> str | None:
    """Why `prog sub ... --option` is not what the parser offers, or None."""
    current, path = parser, [words[0].rsplit("/", 1)[-1]]
    rest = words[1:]
    while (choices := _subcommands(current)) is not None:
        if not rest:
            return None  # the program named alone, as in "the `verbatim` command"
        if rest[0] not in choices:
            return f"{' '.join(path)} has no subcommand {rest[0]!r} (it has {', '.join(sorted(choices))})"
        path.append(rest[0])
        current, rest = choices[rest[0]], rest[1:]
    options = {o for action in current._actions for o in action.option_strings}
    for word in rest:
        option = word.split("=", 1)[0]
        if option.startswith("--") and option not in options:
            return f"{' '.join(path)} has no option {option}"
    return None


def check_invocation(
    words: list[str], root: Path, parsers: dict[str, Callable[[], argparse.ArgumentParser]]
) -> str | None:
    program = words[0].rsplit("/", 1)[-1]
    if program in parsers:
        return check_cli(words, parsers[program]())
    if program == "make":
        targets = set(re.findall(r"^([\w-]+):", (root / "Makefile").read_text(), flags=re.MULTILINE))
        missing = [w for w in words[1:] if not w.startswith("-") and "=" not in w and w not in targets]
        return f"the Makefile has no target {missing[0]!r}" if missing else None
    if "-m" in words:
        module = words[words.index("-m") + 1] if words.index("-m") + 1 < len(words) else ""
        if module and importlib.util.find_spec(module) is None:
            return f"no module {module}"
        return None
    for word in words[1:]:
        candidate = word.split("::", 1)[0]
        if re.match(r"^(?:tests|benchmarks|devstack|scripts)/", candidate) and not (root / candidate).exists():
            return f"no such path: {candidate}"
    return None
