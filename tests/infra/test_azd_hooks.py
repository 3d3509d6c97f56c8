"""The azd hooks: preflight checks, the deterministic recorder package, its upload, and the printed
(never executed) immutability lock. Azure and azd are replaced by a recording fake CLI runner."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import pytest

from scripts.azd import hooks

GUID = "11111111-2222-3333-4444-555555555555"
SUBSCRIPTION = "99999999-8888-7777-6666-555555555555"


class FakeCli:
    """Answers az/azd commands from a table of (prefix -> (returncode, stdout)) and records calls."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        for prefix, (code, out) in self.answers.items():
            if tuple(args[: len(prefix)]) == prefix:
                return subprocess.CompletedProcess(list(args), code, out, "boom" if code else "")
        return subprocess.CompletedProcess(list(args), 0, "", "")

    def ran(self, *prefix: str) -> list[list[str]]:
        return [call for call in self.calls if tuple(call[: len(prefix)]) == prefix]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A minimal repository with what the recorder package takes."""
    files = {
        "recorder_vm/__init__.py": "",
        "recorder_vm/service.py": "print('recording')\n",
        "recorder_vm/deploy/install.ps1": "param($PackageRoot, $SettingsFile, $InstanceFile)\n",
        "recorder_vm/__pycache__/service.cpython-311.pyc": "bytecode",
        "recorder_vm/tests/test_x.py": "",
        "verbatim/__init__.py": "",
        "verbatim/layout.py": "QUEUES = ()\n",
        "pyproject.toml": "[project]\nname = 'verbatim'\n",
        "requirements.txt": "pydantic==2.14.3\n",
        "README.md": "not packaged\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    return tmp_path


def valid_env(**overrides: str) -> dict[str, str]:
    env = {
        "AZURE_ENV_NAME": "prod",
        "AZURE_LOCATION": "westeurope",
        "GRAPH_CLIENT_ID": GUID,
        "GRAPH_CLIENT_SECRET": "s3cret-from-entra",
        "RECORDER_FQDN": "recorder.contoso.com",
        "ALERT_EMAIL": "compliance-ops@contoso.com",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    }
    env.update(overrides)
    return env


# --- the recorder package ------------------------------------------------------------------------


def test_package_holds_the_recorder_the_domain_and_the_pins_but_no_caches_or_tests(repo: Path) -> None:
    package = hooks.build_package(repo)
    names = zipfile.ZipFile(BytesIO(package.data)).namelist()
    assert names == sorted(names) == list(package.files)
    assert "recorder_vm/deploy/install.ps1" in names and "verbatim/layout.py" in names
    assert {"pyproject.toml", "requirements.txt"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
    assert "README.md" not in names


def test_package_bytes_and_version_depend_only_on_content(repo: Path) -> None:
    first = hooks.build_package(repo)
    (repo / "recorder_vm" / "service.py").touch()  # a new mtime, same content
    assert hooks.build_package(repo) == first
    (repo / "recorder_vm" / "service.py").write_text("print('recording v2')\n")
    changed = hooks.build_package(repo)
    assert changed.version != first.version and len(changed.version) == 16


def test_package_without_the_installer_is_refused(repo: Path) -> None:
    (repo / "recorder_vm" / "deploy" / "install.ps1").unlink()
    with pytest.raises(hooks.HookError, match=r"install\.ps1"):
        hooks.build_package(repo)


# --- preprovision ---------------------------------------------------------------------------------


def test_valid_environment_passes_and_gets_generated_secrets() -> None:
    preflight = hooks.check_environment(valid_env())
    assert preflight.problems == []
    assert set(preflight.generated) == {
        "VERBATIM_GRAPH_CLIENT_STATE",
        "VERBATIM_RECORDER_ADMIN_PASSWORD",
        "VERBATIM_GRAPH_WEBHOOK_KEY",
    }
    assert len(preflight.generated["VERBATIM_GRAPH_CLIENT_STATE"]) >= 48


def test_generated_values_are_kept_once_they_exist() -> None:
    env = valid_env(
        VERBATIM_GRAPH_CLIENT_STATE="kept", VERBATIM_RECORDER_ADMIN_PASSWORD="kept", VERBATIM_GRAPH_WEBHOOK_KEY="kept"
    )
    assert hooks.check_environment(env).generated == {}


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"GRAPH_CLIENT_ID": "my-bot"}, "GRAPH_CLIENT_ID"),
        ({"GRAPH_CLIENT_ID": ""}, "GRAPH_CLIENT_ID"),
        ({"GRAPH_TENANT_ID": "contoso.onmicrosoft.com"}, "GRAPH_TENANT_ID"),
        ({"GRAPH_CLIENT_SECRET": ""}, "GRAPH_CLIENT_SECRET"),
        ({"RECORDER_FQDN": "20.1.2.3"}, "RECORDER_FQDN"),
        ({"RECORDER_FQDN": "recorder"}, "RECORDER_FQDN"),
        ({"RECORDER_FQDN": "-bad-.contoso.com"}, "RECORDER_FQDN"),
        ({"RECORDER_INSTANCE_COUNT": "5", "RECORDER_MAX_INSTANCE_COUNT": "3"}, "recorder instances"),
        ({"RECORDER_MAX_INSTANCE_COUNT": "500"}, "recorder instances"),
        ({"RECORDER_INSTANCE_COUNT": "two"}, "RECORDER_INSTANCE_COUNT"),
        ({"RECORDER_VM_SIZE": "D4s_v5; rm -rf /"}, "RECORDER_VM_SIZE"),
        ({"DEFAULT_RETENTION_DAYS": "0"}, "DEFAULT_RETENTION_DAYS"),
        ({"PUBLIC_NETWORK_ACCESS": "Disabled"}, "PUBLIC_NETWORK_ACCESS"),
        ({"COSMOS_CAPACITY_MODE": "provisioned"}, "COSMOS_CAPACITY_MODE"),
        ({"AZURE_LOCATION": ""}, "AZURE_LOCATION"),
    ],
)
def test_preflight_names_what_is_wrong(overrides: dict[str, str], complaint: str) -> None:
    problems = hooks.check_environment(valid_env(**overrides)).problems
    assert any(complaint in problem for problem in problems), problems


def test_generated_password_meets_windows_complexity() -> None:
    for _ in range(20):
        password = hooks.generate_password()
        assert len(password) == 32
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)


def test_preprovision_requires_the_entra_app_to_exist_in_the_tenant(repo: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cli = FakeCli({("az", "ad", "sp", "show"): (3, "")})
    assert hooks.preprovision(valid_env(), cli, repo) == 1
    assert "no service principal" in capsys.readouterr().err
    assert cli.ran("azd", "env", "set") == []


def test_preprovision_saves_generated_values_and_the_package_version(repo: Path) -> None:
    cli = FakeCli({("az", "ad", "sp", "show"): (0, GUID + "\n")})
    assert hooks.preprovision(valid_env(), cli, repo) == 0
    saved = {call[3]: call[4] for call in cli.ran("azd", "env", "set")}
    assert saved["RECORDER_PACKAGE_VERSION"] == hooks.build_package(repo).version
    assert {"VERBATIM_GRAPH_CLIENT_STATE", "VERBATIM_RECORDER_ADMIN_PASSWORD"} <= set(saved)


def test_preprovision_stops_before_calling_azure_when_parameters_are_wrong(repo: Path) -> None:
    cli = FakeCli()
    assert hooks.preprovision(valid_env(GRAPH_CLIENT_ID="nope"), cli, repo) == 1
    assert cli.calls == []


# --- predeploy ------------------------------------------------------------------------------------

OUTPUTS = {
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": "rg-prod",
    "AZURE_FUNCTION_APP_URL": "https://func-verbatim-abc.azurewebsites.net",
    "AZURE_KEY_VAULT_NAME": "kv-abc",
    "RECORDER_CERTIFICATE_KEY_VAULT_NAME": "kv-rec-abc",
    "BOT_NAME": "bot-verbatim-abc",
    "RUNTIME_STORAGE_ACCOUNT_NAME": "strtabc",
    "RECORDER_PACKAGES_CONTAINER": "recorder-packages",
    "RECORDINGS_STORAGE_ACCOUNT_NAME": "strecabc",
    "RECORDINGS_CONTAINER_NAME": "recordings",
    "RECORDER_SCALE_SET_NAME": "vmss-rec-abc",
    "RECORDER_LOAD_BALANCER_FQDN": "verbatim-rec-abc.westeurope.cloudapp.azure.com",
    "RECORDER_CERTIFICATE_NAME": "recorder-tls",
    "RECORDER_FQDN": "recorder.contoso.com",
}


def test_predeploy_uploads_a_new_package_keyless_and_never_overwrites(repo: Path) -> None:
    version = hooks.build_package(repo).version
    cli = FakeCli({("az", "storage", "blob", "exists"): (0, "false\n")})
    assert hooks.predeploy({**OUTPUTS, "RECORDER_PACKAGE_VERSION": version}, cli, repo) == 0
    (upload,) = cli.ran("az", "storage", "blob", "upload")
    assert upload[upload.index("--name") + 1] == f"{version}/verbatim-recorder.zip"
    assert upload[upload.index("--auth-mode") + 1] == "login"
    assert upload[upload.index("--overwrite") + 1] == "false"
    assert upload[upload.index("--account-name") + 1] == "strtabc"


def test_predeploy_skips_a_version_already_uploaded(repo: Path) -> None:
    cli = FakeCli({("az", "storage", "blob", "exists"): (0, "true\n")})
    assert hooks.predeploy(OUTPUTS, cli, repo) == 0
    assert cli.ran("az", "storage", "blob", "upload") == []


def test_predeploy_says_when_the_scale_set_needs_a_provision(repo: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cli = FakeCli({("az", "storage", "blob", "exists"): (0, "true\n")})
    hooks.predeploy({**OUTPUTS, "RECORDER_PACKAGE_VERSION": "0000000000000000"}, cli, repo)
    assert "azd provision" in capsys.readouterr().out


def test_predeploy_fails_loudly_when_the_upload_fails(repo: Path) -> None:
    cli = FakeCli({("az", "storage", "blob", "exists"): (0, "false"), ("az", "storage", "blob", "upload"): (1, "")})
    with pytest.raises(hooks.HookError, match="upload"):
        hooks.predeploy(OUTPUTS, cli, repo)


def test_predeploy_before_provision_says_so(repo: Path) -> None:
    with pytest.raises(hooks.HookError, match="azd provision"):
        hooks.predeploy({}, FakeCli(), repo)


# --- postprovision --------------------------------------------------------------------------------


def test_postprovision_prints_the_lock_step_and_runs_nothing(capsys) -> None:  # type: ignore[no-untyped-def]
    cli = FakeCli()
    assert hooks.postprovision({**OUTPUTS, "DEFAULT_RETENTION_DAYS": "2555"}, cli) == 0
    printed = capsys.readouterr().out
    assert cli.calls == []
    assert "az storage container immutability-policy lock --resource-group rg-prod" in printed
    assert "--account-name strecabc --container-name recordings" in printed
    assert "2555 days" in printed and "irreversible" in printed
    assert "CNAME recorder.contoso.com -> verbatim-rec-abc.westeurope.cloudapp.azure.com" in printed
    assert "https://recorder.contoso.com/api/calling" in printed


VAULT_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod/providers/Microsoft.KeyVault/vaults/kv-abc"
CHAT_ENV = {**OUTPUTS, "CHAT_CAPTURE_ENABLED": "true", "AZURE_FUNCTION_PRINCIPAL_ID": GUID}


class CertificateNotFoundCli(FakeCli):
    """`az keyvault certificate show` answers as Key Vault does for a certificate that does not exist."""

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if tuple(args[:4]) == ("az", "keyvault", "certificate", "show"):
            self.calls.append(list(args))
            return subprocess.CompletedProcess(
                list(args), 1, "", "(CertificateNotFound) A certificate with (name/id) chat-encryption was not found"
            )
        return super().__call__(args)


def test_postprovision_with_chat_capture_creates_the_encryption_certificate_once_and_lets_only_it_be_read() -> None:
    missing = CertificateNotFoundCli({("az", "keyvault", "show"): (0, VAULT_ID + "\n")})
    assert hooks.ensure_chat_certificate(CHAT_ENV, missing) is True
    (create,) = missing.ran("az", "keyvault", "certificate", "create")
    assert create[create.index("--vault-name") + 1] == "kv-abc"
    policy = json.loads(create[create.index("--policy") + 1])
    # Graph: an RSA key of 2,048-4,096 bits; the Function App reads the PEM of key and certificate.
    assert policy["keyProperties"]["keyType"] == "RSA" and 2048 <= policy["keyProperties"]["keySize"] <= 4096
    assert policy["secretProperties"]["contentType"] == "application/x-pem-file"
    assert policy["issuerParameters"]["name"] == "Self"
    (grant,) = missing.ran("az", "role", "assignment", "create")
    assert grant[grant.index("--scope") + 1] == f"{VAULT_ID}/secrets/chat-encryption"
    assert grant[grant.index("--role") + 1] == hooks.KEY_VAULT_SECRETS_USER
    assert grant[grant.index("--assignee-object-id") + 1] == GUID
    assert "--subscription" in create and "--subscription" in grant

    present = FakeCli({("az", "keyvault", "show"): (0, VAULT_ID + "\n")})
    assert hooks.ensure_chat_certificate(CHAT_ENV, present) is True
    assert present.ran("az", "keyvault", "certificate", "create") == []
    assert len(present.ran("az", "role", "assignment", "create")) == 1


def test_postprovision_without_chat_capture_creates_no_certificate() -> None:
    cli = FakeCli()
    assert hooks.ensure_chat_certificate({**OUTPUTS, "CHAT_CAPTURE_ENABLED": "false"}, cli) is False
    assert hooks.ensure_chat_certificate(OUTPUTS, cli) is False
    assert cli.calls == []


def test_chat_capture_must_be_true_or_false() -> None:
    assert "CHAT_CAPTURE_ENABLED" in " ".join(hooks.check_environment(valid_env(CHAT_CAPTURE_ENABLED="yes")).problems)
    assert hooks.check_environment(valid_env(CHAT_CAPTURE_ENABLED="true")).problems == []


def test_the_portals_client_id_is_a_guid_or_unset() -> None:
    assert "PORTAL_CLIENT_ID" in " ".join(hooks.check_environment(valid_env(PORTAL_CLIENT_ID="my-portal")).problems)
    assert hooks.check_environment(valid_env(PORTAL_CLIENT_ID="5e0c8b3a-7d41-4f2e-9a6b-1c2d3e4f5a60")).problems == []
    assert hooks.check_environment(valid_env()).problems == []


def test_main_rejects_an_unknown_hook() -> None:
    assert hooks.main(["predestroy"]) == 2


# --- postdeploy -----------------------------------------------------------------------------------


def test_postdeploy_sets_the_webhook_host_key_to_the_generated_value(repo: Path) -> None:
    cli = FakeCli()
    env = {**OUTPUTS, "AZURE_FUNCTION_APP_NAME": "func-verbatim-abc", "VERBATIM_GRAPH_WEBHOOK_KEY": "k" * 43}
    assert hooks.postdeploy(env, cli, repo) == 0
    (call,) = cli.ran("az", "functionapp", "keys", "set")
    assert call[call.index("--key-name") + 1] == hooks.WEBHOOK_KEY_NAME
    assert call[call.index("--key-value") + 1] == "k" * 43
    assert call[call.index("--key-type") + 1] == "functionKeys"


def test_postdeploy_without_a_generated_key_says_to_provision(repo: Path) -> None:
    with pytest.raises(hooks.HookError, match="azd provision"):
        hooks.postdeploy({**OUTPUTS, "AZURE_FUNCTION_APP_NAME": "f"}, FakeCli(), repo)


def test_the_sections_the_hooks_point_to_exist_in_docs_deploy() -> None:
    import re

    source = (hooks.REPO / "scripts" / "azd" / "hooks.py").read_text()
    named = re.findall(r"docs/deploy\.md, '([^']+)'", source)
    headings = set(re.findall(r"^#+ (.+)$", (hooks.REPO / "docs" / "deploy.md").read_text(), re.MULTILINE))
    assert named and set(named) <= headings, set(named) - headings
