"""The product's command (`verbatim`) and the development harness's (`verbatim-dev`) are separate: the
product CLI loads nothing from devstack/, and `up` lives only in the harness."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from devstack import cli as dev_cli
from devstack.stack import LOAD_BALANCED_WEBHOOK, StackConfig, simulator_tenant
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


def test_up_takes_a_number_of_recorder_instances_and_one_keeps_the_one_recorder_stack(tmp_path: Path) -> None:
    assert dev_cli.build_parser().parse_args(["up"]).recorders == 1
    assert dev_cli.build_parser().parse_args(["up", "--recorders", "2"]).recorders == 2
    for bad in ("0", "two", "9"):
        with pytest.raises(SystemExit):
            dev_cli.build_parser().parse_args(["up", "--recorders", bad])
    one = StackConfig(state_dir=tmp_path / "one")
    (only,) = one.recorder_instances()
    assert (only.name, only.instance_id, only.port, only.media_port) == ("recorder", None, 9441, 9443)
    assert only.state_dir == tmp_path / "one" / "recorder"
    tenant = yaml.safe_load(simulator_tenant(one).read_text(encoding="utf-8"))
    assert [i["webhook"] for i in tenant["applicationInstances"]] == ["http://127.0.0.1:9441/api/calling"]
    assert all("loadBalancer" not in i for i in tenant["applicationInstances"])
    two = StackConfig(state_dir=tmp_path / "two", recorders=2)
    first, second = two.recorder_instances()
    assert (first.name, second.name, first.instance_id, second.instance_id) == (
        "recorder", "recorder-2", "recorder-1", "recorder-2",
    )  # fmt: skip
    assert len({first.port, first.media_port, second.port, second.media_port}) == 4
    (instance,) = yaml.safe_load(simulator_tenant(two).read_text(encoding="utf-8"))["applicationInstances"]
    assert instance["webhook"] == LOAD_BALANCED_WEBHOOK
    assert instance["loadBalancer"]["backends"] == [f"{first.url}/api/calling", f"{second.url}/api/calling"]


def test_make_run_finds_verbatim_dev_installed_as_a_console_script() -> None:
    (script,) = entry_points(group="console_scripts", name="verbatim-dev")
    assert script.value == "devstack.cli:main"
    assert script.load() is dev_cli.main
