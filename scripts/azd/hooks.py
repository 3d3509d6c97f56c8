"""azd hooks for Verbatim: checks before provisioning, the recorder package before deploying, and
the next steps after provisioning, including the immutability lock, which is printed and never run.

azure.yaml runs `python scripts/azd/hooks.py <hook>` (posix and Windows alike). Standard library only:
any Python 3.9+ with the Azure CLI (`az`) and azd on PATH runs it. azd passes the environment
(main.bicep's outputs included) as environment variables; values are saved with `azd env set`.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# main.bicep outputs the hooks read (tests/infra checks that each one is declared in main.bicep).
OUTPUTS_USED: tuple[str, ...] = (
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "AZURE_FUNCTION_APP_URL",
    "AZURE_FUNCTION_PRINCIPAL_ID",
    "AZURE_KEY_VAULT_NAME",
    "RECORDER_CERTIFICATE_KEY_VAULT_NAME",
    "RUNTIME_STORAGE_ACCOUNT_NAME",
    "RECORDER_PACKAGES_CONTAINER",
    "RECORDINGS_STORAGE_ACCOUNT_NAME",
    "RECORDINGS_CONTAINER_NAME",
    "LEDGER_CONTAINER_NAME",
    "LEDGER_ANCHORS_CONTAINER_NAME",
    "RECORDER_SCALE_SET_NAME",
    "RECORDER_LOAD_BALANCER_FQDN",
    "RECORDER_CERTIFICATE_NAME",
    "RECORDER_FQDN",
    "BOT_NAME",
)

# What preprovision reads from the existing deployment and hands to main.bicep (main.parameters.json):
# a later provision must keep the scale set's capacity, leave a locked WORM policy alone and recover
# soft-deleted vaults instead of colliding with their names (docs/deploy.md explains each).
DISCOVERED: tuple[str, ...] = (
    "RECORDER_CURRENT_CAPACITY",
    "RECORDINGS_WORM_LOCKED",
    "LEDGER_WORM_LOCKED",
    "LEDGER_ANCHORS_WORM_LOCKED",
    "MAIN_VAULT_RECOVER",
    "CERTIFICATE_VAULT_RECOVER",
)

# The recordings account's containers under a WORM policy an operator locks (irreversible): the output that
# names each, its name before the output existed, and the DISCOVERED flag main.bicep reads.
WORM_CONTAINERS: tuple[tuple[str, str, str], ...] = (
    ("RECORDINGS_CONTAINER_NAME", "recordings", "RECORDINGS_WORM_LOCKED"),
    ("LEDGER_CONTAINER_NAME", "ledger", "LEDGER_WORM_LOCKED"),
    ("LEDGER_ANCHORS_CONTAINER_NAME", "ledger-anchors", "LEDGER_ANCHORS_WORM_LOCKED"),
)

# What goes into the recorder package: the recorder, the domain it imports, and the pins.
PACKAGE_ROOTS: tuple[str, ...] = ("recorder_vm", "verbatim", "pyproject.toml", "requirements.txt")
PACKAGE_EXCLUDED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", "tests"})
PACKAGE_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
PACKAGE_BLOB = "verbatim-recorder.zip"
# The package's own list of its files and their SHA-256, checked by install.ps1 before it installs anything.
PACKAGE_MANIFEST = "package-manifest.json"
# Host key of the Graph webhooks; its value is in the notification URLs (infra/modules/webhook-secrets.bicep).
WEBHOOK_KEY_NAME = "graph-webhook"
INSTALL_SCRIPT = "recorder_vm/deploy/install.ps1"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ARM's "not found" error codes: the resource (or its group) does not exist yet.
_NOT_FOUND = re.compile(
    r"(ResourceNotFound|ResourceGroupNotFound|ContainerNotFound|NotFound|was not found|could not be found)", re.I
)


class HookError(Exception):
    """A hook cannot go on; the message says what to do."""


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def subscription_args(env: Mapping[str, str]) -> list[str]:
    """`--subscription <id>` for every az command that addresses ARM: the Azure CLI's own default
    subscription may differ from the one azd deploys to (AZURE_SUBSCRIPTION_ID, set by azd)."""
    subscription = env.get("AZURE_SUBSCRIPTION_ID", "")
    if not _GUID.match(subscription):
        raise HookError(
            "AZURE_SUBSCRIPTION_ID is not set: select the subscription with `azd env set AZURE_SUBSCRIPTION_ID <id>`"
        )
    return ["--subscription", subscription]


def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a CLI (az, azd) and capture its output; the executable is resolved on PATH."""
    executable = shutil.which(args[0]) or args[0]
    return subprocess.run([executable, *args[1:]], capture_output=True, text=True, check=False)


def output(env: Mapping[str, str], name: str) -> str:
    """A main.bicep output from the azd environment."""
    if name not in OUTPUTS_USED:
        raise KeyError(f"{name} is not in OUTPUTS_USED")
    value = env.get(name, "")
    if not value:
        raise HookError(f"{name} is not set in the azd environment: run `azd provision` first")
    return value


# --- the recorder package ----------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    version: str
    data: bytes
    files: tuple[str, ...]


def package_files(repo: Path = REPO) -> list[str]:
    """Repository-relative paths of the files in the recorder package, sorted."""
    found: set[str] = set()
    for root in PACKAGE_ROOTS:
        path = repo / root
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            relative = candidate.relative_to(repo)
            if PACKAGE_EXCLUDED_PARTS.intersection(relative.parts):
                continue
            if candidate.suffix in PACKAGE_EXCLUDED_SUFFIXES:
                continue
            found.add(relative.as_posix())
    return sorted(found)


def package_manifest(repo: Path, files: Sequence[str]) -> bytes:
    """`{"files": {path: sha256}}` of the package's files, deterministic (sorted keys, no timestamps)."""
    hashes = {name: hashlib.sha256((repo / name).read_bytes()).hexdigest() for name in files}
    return (json.dumps({"files": hashes}, indent=1, sort_keys=True) + "\n").encode()


def build_package(repo: Path = REPO) -> Package:
    """The recorder package as a zip whose bytes depend only on the files' paths and contents.

    Its version is the first 16 hex digits of the zip's SHA-256, so preprovision (which puts the
    version into the scale set model) and predeploy (which uploads the zip) agree without sharing state.
    The zip holds the package's files and PACKAGE_MANIFEST, their SHA-256 sums.
    """
    files = package_files(repo)
    if INSTALL_SCRIPT not in files:
        raise HookError(f"the recorder package has no {INSTALL_SCRIPT} (the scale set's bootstrap runs it)")
    entries = {name: (repo / name).read_bytes() for name in files}
    entries[PACKAGE_MANIFEST] = package_manifest(repo, files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    data = buffer.getvalue()
    return Package(version=hashlib.sha256(data).hexdigest()[:16], data=data, files=tuple(sorted(entries)))


# --- preprovision ------------------------------------------------------------------------------


@dataclass
class Preflight:
    problems: list[str] = field(default_factory=list)
    generated: dict[str, str] = field(default_factory=dict)


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = env.get(name, "") or str(default)
    try:
        return int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, not {raw!r}")
        return default


def is_dns_name(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return False
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    return len(labels) >= 2 and all(_DNS_LABEL.match(label) for label in labels)


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return "/" in value


def generate_password(length: int = 32) -> str:
    """A random password that meets Windows complexity rules (all four character classes)."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!@#%^*-_=+")
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in candidate) for cls in classes):
            return candidate


def check_environment(env: Mapping[str, str]) -> Preflight:
    """Validate the parameters main.bicep needs; generate the ones Verbatim owns."""
    result = Preflight()
    problems = result.problems
    for name in ("AZURE_ENV_NAME", "AZURE_LOCATION"):
        if not env.get(name):
            problems.append(f"{name} is not set (azd sets it when you create the environment)")

    client_id = env.get("GRAPH_CLIENT_ID", "")
    if not _GUID.match(client_id):
        problems.append(
            "GRAPH_CLIENT_ID must be the application (client) id of the Entra app registration, "
            "e.g. `azd env set GRAPH_CLIENT_ID 00000000-0000-0000-0000-000000000000`"
        )
    tenant_id = env.get("GRAPH_TENANT_ID", "")
    if tenant_id and not _GUID.match(tenant_id):
        problems.append("GRAPH_TENANT_ID must be a tenant id (GUID), or unset for the subscription's tenant")
    if not env.get("GRAPH_CLIENT_SECRET"):
        problems.append("GRAPH_CLIENT_SECRET is not set: `azd env set GRAPH_CLIENT_SECRET <client secret>`")
    portal_id = env.get("PORTAL_CLIENT_ID", "")
    if portal_id and not _GUID.match(portal_id):
        problems.append(
            "PORTAL_CLIENT_ID must be the application (client) id of the portal's single-page-app registration "
            "(docs/portal.md), or unset: then the portal offers no sign-in"
        )

    fqdn = env.get("RECORDER_FQDN", "")
    if not is_dns_name(fqdn):
        problems.append(
            "RECORDER_FQDN must be the recorder's public DNS name (its certificate matches it), "
            "e.g. `azd env set RECORDER_FQDN recorder.contoso.com`"
        )

    count = _int(env, "RECORDER_INSTANCE_COUNT", 2, problems)
    maximum = _int(env, "RECORDER_MAX_INSTANCE_COUNT", 10, problems)
    if count < 1 or maximum > 100 or count > maximum:
        problems.append("recorder instances: need 1 <= RECORDER_INSTANCE_COUNT <= RECORDER_MAX_INSTANCE_COUNT <= 100")
    size = env.get("RECORDER_VM_SIZE", "")
    if size and not re.fullmatch(r"Standard_[A-Za-z0-9_]+", size):
        problems.append(f"RECORDER_VM_SIZE must be an Azure VM size such as Standard_D4s_v5, not {size!r}")
    if _int(env, "DEFAULT_RETENTION_DAYS", 1827, problems) < 1:
        problems.append("DEFAULT_RETENTION_DAYS must be at least 1")
    if env.get("PUBLIC_NETWORK_ACCESS", "Enabled") not in ("Enabled", "SelectedNetworks"):
        problems.append("PUBLIC_NETWORK_ACCESS must be Enabled or SelectedNetworks")
    if env.get("COSMOS_CAPACITY_MODE", "serverless") not in ("serverless", "autoscale"):
        problems.append("COSMOS_CAPACITY_MODE must be serverless or autoscale")
    if not _EMAIL.match(env.get("ALERT_EMAIL", "")):
        problems.append("ALERT_EMAIL must be the operators' e-mail address: `azd env set ALERT_EMAIL ops@contoso.com`")
    ranges = {
        "ALLOWED_IP_RANGES": env.get("ALLOWED_IP_RANGES", ""),
        "TEAMS_SIGNALLING_PREFIXES": env.get("TEAMS_SIGNALLING_PREFIXES", ""),
        "TEAMS_MEDIA_PREFIXES": env.get("TEAMS_MEDIA_PREFIXES", ""),
    }
    for name, raw in ranges.items():
        bad = [item for item in raw.split(",") if not _is_cidr(item)] if raw else []
        if bad:
            problems.append(f"{name} must be comma-separated CIDR ranges (e.g. 203.0.113.0/24), not {', '.join(bad)}")
    if env.get("ALERT_ON_UNLOCKED_WORM", "true") not in ("true", "false"):
        problems.append("ALERT_ON_UNLOCKED_WORM must be true or false")
    if env.get("CHAT_CAPTURE_ENABLED", "false") not in ("true", "false"):
        problems.append("CHAT_CAPTURE_ENABLED must be true or false")

    if not env.get("VERBATIM_GRAPH_CLIENT_STATE"):
        result.generated["VERBATIM_GRAPH_CLIENT_STATE"] = secrets.token_urlsafe(48)
    if not env.get("VERBATIM_RECORDER_ADMIN_PASSWORD"):
        result.generated["VERBATIM_RECORDER_ADMIN_PASSWORD"] = generate_password()
    if not env.get("VERBATIM_GRAPH_WEBHOOK_KEY"):
        result.generated["VERBATIM_GRAPH_WEBHOOK_KEY"] = secrets.token_urlsafe(32)
    return result


def check_entra_app(client_id: str, runner: Runner = run) -> list[str]:
    """The app registration must have a service principal (admin consent) in the signed-in tenant."""
    if shutil.which("az") is None and runner is run:
        return ["the Azure CLI (az) is not on PATH; the hooks need it"]
    found = runner(["az", "ad", "sp", "show", "--id", client_id, "--query", "appId", "-o", "tsv"])
    if found.returncode != 0 or found.stdout.strip().lower() != client_id.lower():
        return [
            f"no service principal for app {client_id} in this tenant: register the app, add the Graph "
            "application permissions and grant admin consent (docs/deploy.md, 'Prerequisites')"
        ]
    return []


def azd_env_set(values: Mapping[str, str], runner: Runner = run) -> None:
    for name, value in values.items():
        done = runner(["azd", "env", "set", name, value])
        if done.returncode != 0:
            raise HookError(f"`azd env set {name}` failed: {done.stderr.strip()}")


def _az_value(runner: Runner, args: Sequence[str], what: str) -> str | None:
    """stdout of an az query; None when ARM says the resource does not exist; HookError otherwise."""
    done = runner(args)
    if done.returncode == 0:
        return done.stdout.strip()
    if _NOT_FOUND.search(done.stderr or ""):
        return None
    raise HookError(f"could not read {what}: {(done.stderr or '').strip()}")


def discover_deployment(env: Mapping[str, str], runner: Runner = run) -> dict[str, str]:
    """What an earlier provision left behind, as the DISCOVERED parameters (defaults before the first one).

    Every value is read again on every provision and written explicitly, so a stale value (after
    `azd down`, say) never survives: a failed read stops the hook instead of guessing.
    """
    found = {"RECORDER_CURRENT_CAPACITY": "0", "MAIN_VAULT_RECOVER": "false", "CERTIFICATE_VAULT_RECOVER": "false",
             **{flag: "false" for _, _, flag in WORM_CONTAINERS}}  # fmt: skip
    group = env.get("AZURE_RESOURCE_GROUP", "")
    if not group:
        return found  # never provisioned in this environment
    subscription = subscription_args(env)
    scale_set = env.get("RECORDER_SCALE_SET_NAME", "")
    if scale_set:
        capacity = _az_value(
            runner,
            ["az", "vmss", "show", "--resource-group", group, "--name", scale_set, *subscription,
             "--query", "sku.capacity", "-o", "tsv"],
            f"the capacity of scale set {scale_set}",
        )  # fmt: skip
        if capacity:
            if not capacity.isdigit():
                raise HookError(f"scale set {scale_set} reports capacity {capacity!r}")
            found["RECORDER_CURRENT_CAPACITY"] = capacity
    account = env.get("RECORDINGS_STORAGE_ACCOUNT_NAME", "")
    for output_name, default_name, flag in WORM_CONTAINERS if account else ():
        container = env.get(output_name, "") or default_name
        state = _az_value(
            runner,
            ["az", "storage", "container", "immutability-policy", "show", "--resource-group", group,
             "--account-name", account, "--container-name", container, *subscription,
             "--query", "state", "-o", "tsv"],
            f"the immutability policy of {account}/{container}",
        )  # fmt: skip
        found[flag] = "true" if (state or "").lower() == "locked" else "false"
    for output_name, flag in (("AZURE_KEY_VAULT_NAME", "MAIN_VAULT_RECOVER"),
                              ("RECORDER_CERTIFICATE_KEY_VAULT_NAME", "CERTIFICATE_VAULT_RECOVER")):  # fmt: skip
        vault = env.get(output_name, "")
        if not vault:
            continue
        deleted = _az_value(
            runner,
            ["az", "keyvault", "show-deleted", "--name", vault, *subscription, "--query", "name", "-o", "tsv"],
            f"whether Key Vault {vault} is soft-deleted",
        )
        found[flag] = "true" if deleted else "false"
    return found


def preprovision(env: Mapping[str, str], runner: Runner = run, repo: Path = REPO) -> int:
    preflight = check_environment(env)
    if not preflight.problems:
        preflight.problems.extend(check_entra_app(env["GRAPH_CLIENT_ID"], runner))
    if preflight.problems:
        print("Verbatim cannot be provisioned yet:", file=sys.stderr)
        for problem in preflight.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    package = build_package(repo)
    values = dict(preflight.generated)
    values.update(discover_deployment(env, runner))
    for output_name, default_name, flag in WORM_CONTAINERS:
        if values[flag] == "true":
            container = env.get(output_name, "") or default_name
            print(f"The {container} container's WORM policy is locked: provisioning leaves it as it is.")
    for flag in ("MAIN_VAULT_RECOVER", "CERTIFICATE_VAULT_RECOVER"):
        if values[flag] == "true":
            print(f"A soft-deleted Key Vault of this environment exists: it is recovered ({flag}).")
    values["RECORDER_PACKAGE_VERSION"] = package.version
    azd_env_set(values, runner)
    print(f"Preflight passed; recorder package version {package.version}.")
    return 0


# --- predeploy ---------------------------------------------------------------------------------


def upload_package(env: Mapping[str, str], package: Package, runner: Runner = run) -> str:
    """Upload the package unless that version is already there; returns the blob name."""
    account = output(env, "RUNTIME_STORAGE_ACCOUNT_NAME")
    container = output(env, "RECORDER_PACKAGES_CONTAINER")
    blob = f"{package.version}/{PACKAGE_BLOB}"
    common = ["--auth-mode", "login", "--account-name", account, "--container-name", container, "--name", blob,
              *subscription_args(env)]  # fmt: skip
    exists = runner(["az", "storage", "blob", "exists", *common, "--query", "exists", "-o", "tsv"])
    if exists.returncode == 0 and exists.stdout.strip().lower() == "true":
        return blob
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / PACKAGE_BLOB
        path.write_bytes(package.data)
        uploaded = runner(
            ["az", "storage", "blob", "upload", *common, "--file", str(path), "--overwrite", "false",
             "--only-show-errors"]
        )  # fmt: skip
    if uploaded.returncode != 0:
        raise HookError(f"uploading the recorder package failed: {uploaded.stderr.strip()}")
    return blob


def predeploy(env: Mapping[str, str], runner: Runner = run, repo: Path = REPO) -> int:
    package = build_package(repo)
    blob = upload_package(env, package, runner)
    print(f"Recorder package {package.version} is at {output(env, 'RECORDER_PACKAGES_CONTAINER')}/{blob}.")
    provisioned = env.get("RECORDER_PACKAGE_VERSION", "")
    if provisioned != package.version:
        print(
            f"The scale set model still names recorder {provisioned or '(none)'}; run `azd provision` to "
            "point it at this package, then roll instances one by one "
            "(docs/deploy.md, 'Rolling out a recorder update')."
        )
    return 0


# --- postdeploy -------------------------------------------------------------------------------


def postdeploy(env: Mapping[str, str], runner: Runner = run, repo: Path = REPO) -> int:
    """Give the Function App the webhook host key whose value the notification URLs carry."""
    key = env.get("VERBATIM_GRAPH_WEBHOOK_KEY", "")
    if not key:
        raise HookError("VERBATIM_GRAPH_WEBHOOK_KEY is not set: run `azd provision` (preprovision generates it)")
    done = runner(
        ["az", "functionapp", "keys", "set",
         "--resource-group", output(env, "AZURE_RESOURCE_GROUP"),
         "--name", output(env, "AZURE_FUNCTION_APP_NAME"), *subscription_args(env),
         "--key-type", "functionKeys", "--key-name", WEBHOOK_KEY_NAME, "--key-value", key,
         "--output", "none", "--only-show-errors"]
    )  # fmt: skip
    if done.returncode != 0:
        raise HookError(f"setting the {WEBHOOK_KEY_NAME} host key failed: {done.stderr.strip()}")
    print(f"Graph webhook key {WEBHOOK_KEY_NAME} is set on the Function App.")
    return 0


# --- postprovision -----------------------------------------------------------------------------


def lock_commands(env: Mapping[str, str]) -> list[str]:
    """The irreversible commands that lock the WORM policies: the recordings container's default policy, the
    ledger's and the anchor store's."""
    group = output(env, "AZURE_RESOURCE_GROUP")
    account = output(env, "RECORDINGS_STORAGE_ACCOUNT_NAME")
    subscription = " ".join(subscription_args(env))
    commands = []
    for output_name, default_name, _ in WORM_CONTAINERS:
        container = env.get(output_name, "") or default_name
        target = f"--resource-group {group} --account-name {account} --container-name {container} {subscription}"
        commands += [
            f"etag=$(az storage container immutability-policy show {target} --query etag -o tsv)",
            f'az storage container immutability-policy lock {target} --if-match "$etag"',
        ]
    return commands


def next_steps(env: Mapping[str, str]) -> str:
    fqdn = output(env, "RECORDER_FQDN")
    retention = env.get("DEFAULT_RETENTION_DAYS", "") or "1827"
    lines = [
        "Verbatim is provisioned. Next steps (docs/deploy.md):",
        "",
        f"  1. DNS: CNAME {fqdn} -> {output(env, 'RECORDER_LOAD_BALANCER_FQDN')}",
        f"  2. Certificate for {fqdn} (PFX): az keyvault certificate import "
        f"--vault-name {output(env, 'RECORDER_CERTIFICATE_KEY_VAULT_NAME')} "
        f"--name {output(env, 'RECORDER_CERTIFICATE_NAME')} --file recorder.pfx {' '.join(subscription_args(env))}",
        f"     The scale set {output(env, 'RECORDER_SCALE_SET_NAME')} picks it up within 5 minutes.",
        f"  3. Azure Bot {output(env, 'BOT_NAME')} calls https://{fqdn}/api/calling (Teams channel, calling on).",
        f"  4. Function App: {output(env, 'AZURE_FUNCTION_APP_URL')}",
        "  5. Teams PowerShell: application instance and compliance recording policy (docs/deploy.md).",
        "  6. Check it from outside: azd env get-values > deploy.env && verbatim doctor --env-file deploy.env",
        "     (docs/deploy.md, 'Checking a deployment').",
        "",
        "Immutability: NOT locked by this template (irreversible, so it is your decision).",
        f"  The recordings container's default WORM policy ({retention} days) is unlocked: it protects",
        "  every recording, but an account owner can still shorten or delete the policy; the same holds",
        "  for the ledger's and the ledger anchors' policies (an unlocked anchor store does not catch a",
        "  rewritten ledger). Once the configuration is final, lock all three (each can then only be",
        "  extended, never shortened or removed); in a POSIX shell:",
        "",
        *(f"    {command}" for command in lock_commands(env)),
        "",
    ]
    return "\n".join(lines)


# Chat capture (docs/chat.md): the certificate Graph encrypts chat messages for. Key Vault generates the key
# (RSA 2,048, Graph accepts 2,048-4,096) and a self-signed certificate (Graph asks for nothing more); its
# secret is the PEM of key and certificate the Function App reads (CHAT_ENCRYPTION_PEM, a Key Vault
# reference). Key Vault renews it 30 days before it expires; the subscription keeper registers the new
# certificate at its next renewal (docs/chat.md, "Rotating the encryption certificate").
CHAT_CERTIFICATE_NAME = "chat-encryption"
CHAT_CERTIFICATE_POLICY: dict[str, object] = {
    "issuerParameters": {"name": "Self"},
    "keyProperties": {"exportable": True, "keyType": "RSA", "keySize": 2048, "reuseKey": False},
    "secretProperties": {"contentType": "application/x-pem-file"},
    "x509CertificateProperties": {
        "subject": "CN=Verbatim chat encryption",
        "keyUsage": ["keyEncipherment", "dataEncipherment"],
        "validityInMonths": 12,
    },
    "lifetimeActions": [{"trigger": {"daysBeforeExpiry": 30}, "action": {"actionType": "AutoRenew"}}],
}
# Key Vault Secrets User: read secret values (the certificate's secret, nothing else in the vault).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def ensure_chat_certificate(env: Mapping[str, str], runner: Runner = run) -> bool:
    """With CHAT_CAPTURE_ENABLED=true: create the chat encryption certificate once and let the Function App
    read its secret (a role on that one secret: the vault also holds the webhook key). True when it ran."""
    if env.get("CHAT_CAPTURE_ENABLED", "false") != "true":
        return False
    vault = output(env, "AZURE_KEY_VAULT_NAME")
    subscription = subscription_args(env)
    existing = _az_value(
        runner,
        ["az", "keyvault", "certificate", "show", "--vault-name", vault, "--name", CHAT_CERTIFICATE_NAME,
         *subscription, "--query", "id", "--output", "tsv", "--only-show-errors"],
        "the chat encryption certificate",
    )  # fmt: skip
    if existing is None:
        done = runner(
            ["az", "keyvault", "certificate", "create", "--vault-name", vault, "--name", CHAT_CERTIFICATE_NAME,
             "--policy", json.dumps(CHAT_CERTIFICATE_POLICY), *subscription, "--output", "none", "--only-show-errors"]
        )  # fmt: skip
        if done.returncode != 0:
            raise HookError(f"creating the chat encryption certificate failed: {done.stderr.strip()}")
        print(f"Chat encryption certificate {CHAT_CERTIFICATE_NAME} created in {vault}.")
    vault_id = _az_value(
        runner,
        ["az", "keyvault", "show", "--name", vault, *subscription, "--query", "id", "--output", "tsv",
         "--only-show-errors"],
        "the main Key Vault",
    )  # fmt: skip
    if not vault_id:
        raise HookError(f"Key Vault {vault} was not found: run `azd provision` first")
    done = runner(
        ["az", "role", "assignment", "create", "--assignee-object-id", output(env, "AZURE_FUNCTION_PRINCIPAL_ID"),
         "--assignee-principal-type", "ServicePrincipal", "--role", KEY_VAULT_SECRETS_USER,
         "--scope", f"{vault_id}/secrets/{CHAT_CERTIFICATE_NAME}", *subscription, "--output", "none",
         "--only-show-errors"]
    )  # fmt: skip
    if done.returncode != 0:
        raise HookError(f"letting the Function App read the chat encryption certificate failed: {done.stderr.strip()}")
    return True


def postprovision(env: Mapping[str, str], runner: Runner = run) -> int:
    ensure_chat_certificate(env, runner)
    print(next_steps(env))
    return 0


HOOKS: dict[str, Callable[[Mapping[str, str], Runner], int]] = {
    "preprovision": preprovision,
    "postprovision": postprovision,
    "predeploy": predeploy,
    "postdeploy": postdeploy,
}


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in HOOKS:
        print(f"usage: hooks.py {{{','.join(HOOKS)}}}", file=sys.stderr)
        return 2
    try:
        return HOOKS[args[0]](os.environ, run)
    except HookError as error:
        print(f"{args[0]}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
