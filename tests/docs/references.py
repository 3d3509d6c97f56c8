"""The repository paths and Python names that the documentation quotes in code spans, and whether they exist.

A code span counts as a path when it starts with one of the repository's top-level folders (`verbatim/...`,
`tests/...`), and as a Python name when it is dotted and starts with one of our packages
(`verbatim.ledger.writer.LedgerWriter`, with any call arguments dropped). Placeholders (`<id>`, `{name}`) are
not references; `*` is a glob that must match something.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

TOP_LEVEL = (
    "verbatim",
    "functions",
    "devstack",
    "recorder_vm",
    "tests",
    "benchmarks",
    "infra",
    "scripts",
    "policies",
    "portal",
    "docs",
)
PACKAGES = ("verbatim", "functions", "devstack", "recorder_vm")
_PATH = re.compile(rf"^(?:{'|'.join(TOP_LEVEL)})/[\w./*-]*$")
_NAME = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.\w+)+")
# A dotted span ending in one of these is a file name (`functions.log`), not a Python name.
_FILE_SUFFIXES = ("log", "json", "yaml", "yml", "md", "txt", "pem", "py", "ps1", "env")


@dataclass(frozen=True)
class Reference:
    source: Path
    line: int
    text: str


def code_spans(path: Path) -> list[Reference]:
    tokens = MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    spans = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        line = token.map[0] + 1 if token.map else 0
        for child in token.children:
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type == "code_inline":
                spans.append(Reference(path, line, child.content.strip()))
    return spans


def missing_path(text: str, root: Path) -> str | None:
    """Why a quoted repository path does not resolve, or None (also for spans that are not paths)."""
    candidate = text.split()[0] if text.split() else text
    if not _PATH.match(candidate):
        return None
    if "*" in candidate:
        return None if any(root.glob(candidate)) else f"nothing matches {candidate}"
    return None if (root / candidate).exists() else f"no such path: {candidate}"


def missing_name(text: str) -> str | None:
    """Why a quoted dotted Python name does not resolve, or None (also for spans that are not names)."""
    match = _NAME.match(text)
    if not match or text[match.end() : match.end() + 1] not in ("", "("):
        return None  # not a name, or a host name or path such as `verbatim.contoso.com/verbatim/ledger`
    parts = match.group(0).split(".")
    if parts[-1] in _FILE_SUFFIXES and match.group(0) == text:
        return None
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found = importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            continue
        target: object = importlib.import_module(module_name)
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return f"{module_name} has no {'.'.join(parts[split:])}"
            target = getattr(target, attribute)
        return None
    return f"no module {parts[0]}"
