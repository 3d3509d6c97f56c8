"""The product's import boundaries: `verbatim/` imports no Functions binding, no dev harness and no test code, and
its packages keep the layering that import-linter checks (the contracts live in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("azure.functions", "azure.durable_functions", "devstack", "tests", "functions", "function_app")


def imported_modules(source: str) -> set[str]:
    """Every module an import statement in `source` names (relative imports resolved as written)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(names: set[str]) -> set[str]:
    return {name for name in names for banned in FORBIDDEN if name == banned or name.startswith(f"{banned}.")}


def test_the_check_finds_forbidden_imports_in_every_form() -> None:
    source = "import azure.functions as func\nfrom azure import durable_functions\nfrom devstack.stack import up\n"
    assert forbidden_in(imported_modules(source)) == {
        "azure.functions",
        "azure.durable_functions",
        "devstack.stack",
        "devstack.stack.up",
    }
    assert forbidden_in(imported_modules("from azure.storage.blob import ContainerClient\nimport testsuite\n")) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "verbatim").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_verbatim_imports_no_functions_binding_dev_harness_or_tests(path: Path) -> None:
    assert forbidden_in(imported_modules(path.read_text(encoding="utf-8"))) == set()


def test_the_layering_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_package_of_verbatim_has_its_place_in_the_layers() -> None:
    """A new package or top-level module must be put in a layer (pyproject.toml), not left unconstrained."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    placed = {name.strip("() ") for layer in layers for name in layer.split("|")}
    present = {p.name for p in (ROOT / "verbatim").iterdir() if (p / "__init__.py").exists()}
    present |= {p.stem for p in (ROOT / "verbatim").glob("*.py") if p.stem != "__init__"}
    assert present - placed == set()
