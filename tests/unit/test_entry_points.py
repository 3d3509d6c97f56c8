"""The product's command (`verbatim`) and the development harness's (`verbatim-dev`) are separate: the
product CLI loads nothing from devstack/, and `up` lives only in the harness."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from devstack import cli as dev_cli
from verbatim import cli as product_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_product_cli_loads_no_module_of_the_dev_harness() -> None:
    # a fresh interpreter: this test process has imported devstack for other tests
    probe = (
        "import sys, verbatim.cli\n"
        "verbatim.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('devstack', 'tests')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_up_is_not_a_product_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        product_cli.main(["up", "--demo"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'up'" in capsys.readouterr().err


def test_the_dev_harness_command_starts_the_stack_with_the_demo() -> None:
    args = dev_cli.build_parser().parse_args(["up", "--demo", "--free-ports"])
    assert (args.command, args.demo, args.free_ports, args.no_simulator) == ("up", True, True, False)


def test_make_run_finds_verbatim_dev_installed_as_a_console_script() -> None:
    (script,) = entry_points(group="console_scripts", name="verbatim-dev")
    assert script.value == "devstack.cli:main"
    assert script.load() is dev_cli.main
