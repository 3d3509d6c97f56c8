"""The VM packaging: PowerShell that parses, installs the pinned requirements and writes only settings the
recorder reads; the Windows service and certificate helpers' Python side."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

import pytest
import tree_sitter_powershell
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, load_pem_private_key, pkcs12
from cryptography.x509.oid import NameOID
from tree_sitter import Language, Node, Parser

from recorder_vm.deploy.pfx_to_pem import convert
from recorder_vm.deploy.windows_service import ENVIRONMENT_FILE, recorder_command
from recorder_vm.settings import app_setting_names

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "recorder_vm" / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.ps1"))


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def _errors(node: Node) -> list[str]:
    found = []
    if node.type == "ERROR" or node.is_missing:
        found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {node.type} {(node.text or b'')[:60]!r}")
    for child in node.children:
        found.extend(_errors(child))
    return found


def _commands(node: Node) -> list[str]:
    names = []
    if node.type == "command_name":
        names.append((node.text or b"").decode())
    for child in node.children:
        names.extend(_commands(child))
    return names


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            requirement = line.split(";", 1)[0].strip()
            name, _, version = requirement.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_there_are_install_and_drain_scripts() -> None:
    assert {path.name for path in SCRIPTS} >= {"install.ps1", "drain.ps1"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_script_parses_without_error_nodes(script: Path) -> None:
    tree = _parser().parse(script.read_bytes())
    assert _errors(tree.root_node) == []


def test_install_takes_what_the_bootstrap_passes_and_does_each_step() -> None:
    text = (DEPLOY / "install.ps1").read_text()
    bootstrap = REPO / "infra" / "scripts" / "recorder-bootstrap.ps1"
    if bootstrap.exists():
        call = re.search(r"& \$installer (.+)", bootstrap.read_text())
        assert call is not None
        for parameter in re.findall(r"-(\w+) \$", call.group(1)):
            assert re.search(rf"\[string\] \${parameter}\b", text), parameter
    commands = set(_commands(_parser().parse(text.encode()).root_node))
    for command in (
        "Get-AuthenticodeSignature",
        "Expand-Archive",
        "New-NetFirewallRule",
        "Start-Service",
        "icacls.exe",
    ):
        assert command in commands, command
    assert "recorder_vm\\requirements.lock" in text and "'venv'" in text and "'--require-hashes'" in text
    assert "Microsoft.Skype.Bots.Media" in text and "Cert:\\LocalMachine\\My" in text
    assert "sc.exe" in text and "restart/5000" in text
    assert "windows_service.py" in text


def test_install_writes_only_settings_the_recorder_reads() -> None:
    text = (DEPLOY / "install.ps1").read_text()
    # Read by the interpreter, pythonnet and the service wrapper, not by the recorder's settings.
    runtime = {"PYTHONPATH", "PYTHONNET_RUNTIME", "PYTHONNET_CORECLR_RUNTIME_CONFIG", "PYTHONNET_CORECLR_DOTNET_ROOT"}
    written = set(re.findall(r"\$environment\['([A-Za-z_]+)'\]", text)) - runtime - {"VERBATIM_PYTHON"}
    assert written and written <= app_setting_names(), written - app_setting_names()
    assert str(ENVIRONMENT_FILE).endswith("config\\recorder.env.json") and "config\\recorder.env.json" in text


def test_install_reads_the_nat_rules_infra_defines() -> None:
    text = (DEPLOY / "install.ps1").read_text()
    used = set(re.findall(r"publicPorts\.'?([\w-]+)'?", text))
    network = REPO / "infra" / "modules" / "network.bicep"
    if network.exists():
        rules = set(re.findall(r"RuleName = '([\w-]+)'", network.read_text()))
        assert used <= rules, used - rules
    assert used == {"notification", "media-control"}


def test_the_vm_requirements_are_exact_pins_matching_the_repository() -> None:
    vm = _pins(REPO / "recorder_vm" / "requirements.txt")
    repository = _pins(REPO / "requirements.txt")
    assert vm and all(re.fullmatch(r"\d+(\.\d+)*", version) for version in vm.values())
    for name, version in vm.items():
        if name in repository:
            assert repository[name] == version, name
    assert {"pythonnet", "pywin32", "aiohttp", "av", "azure-storage-blob"} <= set(vm)


def test_the_service_runs_the_recorder_module_with_its_state_dir() -> None:
    command = recorder_command("C:\\py\\python.exe", {"RECORDER_STATE_DIR": "D:\\state"})
    assert command == ["C:\\py\\python.exe", "-m", "recorder_vm", "--state-dir", "D:\\state"]


def test_the_service_runs_the_venv_python_install_ps1_names_not_the_service_host() -> None:
    # Inside a pywin32 service, sys.executable is pythonservice.exe, which cannot run `-m recorder_vm`.
    venv = "C:\\verbatim\\venv\\1\\Scripts\\python.exe"
    command = recorder_command("C:\\venv\\pythonservice.exe", {"VERBATIM_PYTHON": venv})
    assert command[0] == venv
    assert "$environment['VERBATIM_PYTHON'] = $Python" in (DEPLOY / "install.ps1").read_text()


def test_the_exported_pfx_becomes_a_pem_chain_and_key_the_tls_listener_loads(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rec.contoso.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pfx = pkcs12.serialize_key_and_certificates(b"rec", key, certificate, None, BestAvailableEncryption(b"pw"))
    chain, pem_key = convert(pfx, b"pw")
    assert x509.load_pem_x509_certificate(chain).subject == name
    assert load_pem_private_key(pem_key, None).public_key().public_numbers() == key.public_key().public_numbers()
    import ssl

    (tmp_path / "c.pem").write_bytes(chain)
    (tmp_path / "k.pem").write_bytes(pem_key)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
