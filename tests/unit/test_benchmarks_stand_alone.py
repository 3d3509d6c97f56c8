"""Benchmarks stand on their own: no script imports tests/ (shared builders live in devstack/testkit/), and
every script still imports and parses its arguments after a move (`--help` runs the module's imports)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO_ROOT / "benchmarks").rglob("*.py"))


def imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_import_scan_sees_a_tests_import(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text("import os\n\ndef main():\n    from tests.recorder import platform\n")
    assert "tests.recorder" in imported_modules(script)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_benchmark_imports_tests(script: Path) -> None:
    assert not {m for m in imported_modules(script) if m == "tests" or m.startswith("tests.")}


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.parent.name == "benchmarks"], ids=lambda p: p.name)
def test_every_benchmark_script_imports_and_offers_help(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")
