"""The recorder's bootstrap (PowerShell, run on the scale set) parses, and hands over to
recorder_vm/deploy/install.ps1; the custom-script command that starts it stays within Windows'
command-line limit. No PowerShell can be installed here: tree-sitter-powershell is the syntax gate."""

from __future__ import annotations

import base64
import json
import re
from functools import lru_cache

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Parser

from tests.infra.bicep_tree import INFRA, Bicep, Expr, string_value, value

BOOTSTRAP = INFRA / "scripts" / "recorder-bootstrap.ps1"
# cmd.exe's limit; the custom-script extension's command stays far under it.
COMMAND_LINE_LIMIT = 8191


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def powershell_problems(source: str) -> list[str]:
    problems = []
    stack = [_parser().parse(source.encode()).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            problems.append(f"line {node.start_point[0] + 1}: {node.text.decode()[:60]!r}")
        stack.extend(node.children)
    return problems


def test_bootstrap_parses() -> None:
    assert powershell_problems(BOOTSTRAP.read_text()) == []


@pytest.mark.parametrize(
    "broken",
    ["function f { param($a) if ($a { }\n", "$x = @{ a = 1\n", "Write-Output 'unterminated\n"],
)
def test_powershell_gate_flags_broken_scripts(broken: str) -> None:
    assert powershell_problems(broken) != []


def test_bootstrap_runs_the_packaged_installer_with_settings_and_instance_facts() -> None:
    script = BOOTSTRAP.read_text()
    handover = "& $installer -PackageRoot $releaseDirectory -SettingsFile $settingsFile -InstanceFile $instanceFile"
    assert handover in script
    assert "queryInboundNatRulePortMapping" in script  # its own public ports, asked, not guessed
    assert "@Microsoft\\.KeyVault\\(SecretUri=" in script  # Key Vault references resolved on the VM
    assert "Register-ScheduledTask" in script  # the first azd up provisions before the package exists
    for name in ("RECORDER_CALLBACK_PUBLIC_PORT", "RECORDER_MEDIA_PUBLIC_PORT"):
        assert f"$settings['{name}']" in script
    # The public IP is the installer's (IMDS load balancer metadata), never the network-interface path, which is
    # empty for Standard public IPs behind a Standard load balancer (MicrosoftDocs/azure-docs issue 44314).
    assert "ipAddress/0/publicIpAddress" not in script
    assert "ipAddress/0/publicIpAddress" not in (INFRA.parent / "recorder_vm" / "deploy" / "install.ps1").read_text()


def test_bootstrap_retries_from_its_scheduled_task_while_the_certificate_is_missing() -> None:
    script = BOOTSTRAP.read_text()
    # install.ps1 exits 3 without a certificate; the bootstrap then (re)registers the retrying task.
    assert re.search(r"if \(\$installed -eq 3\) \{\s+# .*\n\s+Register-DeferredInstall", script)
    assert "-RepetitionInterval (New-TimeSpan -Minutes 15)" in script
    assert "exit 3" in (INFRA.parent / "recorder_vm" / "deploy" / "install.ps1").read_text()


def test_bootstrap_keeps_secrets_out_of_its_log() -> None:
    logged = re.findall(r"Write-Log (.+)", BOOTSTRAP.read_text())
    assert logged and not [line for line in logged if re.search(r"settings|secret|token", line, re.I)]


def _stage_one(recorder: Bicep) -> str:
    command = string_value(recorder.variables()["stageOne"])
    assert command is not None, "stage one is a plain string (its configuration lives in userData)"
    return command


def test_stage_one_command_is_valid_powershell_that_starts_the_bootstrap(templates: dict[str, Bicep]) -> None:
    command = _stage_one(templates["modules/recorder.bicep"])
    prefix = 'powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "'
    assert command.startswith(prefix) and command.endswith('"')
    inner = command[len(prefix) : -1]
    assert '"' not in inner, "double quotes would end the -Command argument"
    assert powershell_problems(inner) == []
    assert "metadata/instance/compute/userData" in inner
    assert inner.endswith("& C:\\verbatim\\bootstrap.ps1 -FromUserData; exit $LASTEXITCODE")


def test_stage_one_fits_any_windows_command_line(templates: dict[str, Bicep]) -> None:
    assert len(_stage_one(templates["modules/recorder.bicep"])) < 1024 < COMMAND_LINE_LIMIT


def _realistic(config: object) -> object:
    """A configuration with every expression replaced by a long, realistic value."""
    if isinstance(config, dict):
        return {key: _realistic(item) for key, item in config.items()}
    if isinstance(config, list):
        return [_realistic(item) for item in config]
    if isinstance(config, Expr):
        return "x" * 200  # longer than any resource id, URL or GUID it stands for
    return config


def test_user_data_carries_the_bootstrap_and_its_configuration_within_64_kb(templates: dict[str, Bicep]) -> None:
    recorder = templates["modules/recorder.bicep"]
    user_data = value(recorder.variables()["userData"])
    assert isinstance(user_data, dict) and set(user_data) == {"bootstrap", "config"}
    config = _realistic(value(recorder.variables()["bootstrapConfig"]))
    assert isinstance(config, dict)
    config["settings"] = _realistic(value(recorder.variables()["recorderSettings"]))
    document = {"bootstrap": BOOTSTRAP.read_text(), "config": config}
    encoded = base64.b64encode(json.dumps(document).encode())
    assert len(encoded) < 64 * 1024, len(encoded)


def test_bootstrap_is_plain_ascii() -> None:
    # Windows PowerShell 5.1 reads a BOM-less script in the ANSI code page; ASCII reads the same everywhere.
    BOOTSTRAP.read_bytes().decode("ascii")
