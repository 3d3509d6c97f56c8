"""Benchmarks stand on their own: no script imports tests/ (shared builders live in devstack/testkit/), and
every script still imports and parses its arguments after a move (`--help` runs the module's imports)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


TOP_LEVEL = [s for s in SCRIPTS if s.parent.name == "benchmarks"]


def offer_help(script: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(script), "--help"]
    try:
        return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:  # that script's test fails, with the reason; the others are still judged
        return subprocess.CompletedProcess(argv, -1, "", f"{script.name} --help did not finish within 120 s")


@pytest.fixture(scope="module")
def helps() -> dict[Path, subprocess.CompletedProcess[str]]:
    """Every script's `--help`, each in its own fresh interpreter, one per core at a time: each run is mostly the
    script's imports (CPU), which one after another leave all but one core idle."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(TOP_LEVEL, pool.map(offer_help, TOP_LEVEL), strict=True))


@pytest.mark.parametrize("script", TOP_LEVEL, ids=lambda p: p.name)
def test_every_benchmark_script_imports_and_offers_help(
    script: Path, helps: dict[Path, subprocess.CompletedProcess[str]]
) -> None:
    result = helps[script]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")
