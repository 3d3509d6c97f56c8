"""Issue 16, "Deploy readiness": one offline check per defect the review found, each proven twice: it holds
for today's templates and hooks, and it fails on the snippet that had the defect (the old text, put back).

Microsoft's documents each fix follows are cited where the fix lives (the Bicep comments, docs/deploy.md);
the checks here only read the parse trees, the parameters file, azure.yaml and the hooks' az calls.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.azd import hooks
from tests.infra.bicep_tree import INFRA, REPO, Bicep, Expr, Resource, text, value

SUBSCRIPTION = "99999999-8888-7777-6666-555555555555"
PARAMETERS = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]


def _one(template: Bicep, type_: str) -> Resource:
    found = template.resources_of(type_)
    assert len(found) == 1, f"expected one {type_}, found {[r.symbol for r in found]}"
    return found[0]


def _module(main: Bicep, source: str) -> Any:
    return next((m for m in main.modules() if m.source == source), None)


def _module_params(main: Bicep, source: str) -> dict[str, str]:
    module = _module(main, source)
    assert module is not None, f"main.bicep does not use {source}"
    params = value(module.body).get("params") if isinstance(value(module.body), dict) else None  # type: ignore[union-attr]
    assert isinstance(params, dict)
    return {k: v.text if isinstance(v, Expr) else v for k, v in params.items()}


def _mapped_variable(parameter: str) -> str | None:
    entry = PARAMETERS.get(parameter)
    match = re.fullmatch(r"\$\{([A-Z0-9_]+)(?:=[^}]*)?\}", str(entry["value"])) if entry else None
    return match.group(1) if match else None


class FakeCli:
    """az/azd answers by command prefix (returncode, stdout, stderr); records every call."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        for prefix, (code, out, err) in self.answers.items():
            if tuple(args[: len(prefix)]) == prefix:
                return subprocess.CompletedProcess(list(args), code, out, err)
        return subprocess.CompletedProcess(list(args), 0, "", "")


# A deployment that was provisioned before: the outputs azd keeps in the environment.
PROVISIONED = {
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": "rg-prod",
    "AZURE_FUNCTION_APP_NAME": "func-verbatim-abc",
    "AZURE_FUNCTION_APP_URL": "https://func-verbatim-abc.azurewebsites.net",
    "AZURE_KEY_VAULT_NAME": "kv-abc",
    "RECORDER_CERTIFICATE_KEY_VAULT_NAME": "kv-rec-abc",
    "RUNTIME_STORAGE_ACCOUNT_NAME": "strtabc",
    "RECORDER_PACKAGES_CONTAINER": "recorder-packages",
    "RECORDINGS_STORAGE_ACCOUNT_NAME": "strecabc",
    "RECORDINGS_CONTAINER_NAME": "recordings",
    "RECORDER_SCALE_SET_NAME": "vmss-rec-abc",
    "RECORDER_LOAD_BALANCER_FQDN": "verbatim-rec-abc.westeurope.cloudapp.azure.com",
    "RECORDER_CERTIFICATE_NAME": "recorder-tls",
    "RECORDER_FQDN": "recorder.contoso.com",
    "BOT_NAME": "bot-verbatim-abc",
    "VERBATIM_GRAPH_WEBHOOK_KEY": "k" * 43,
}


# --- 2. The Azure Bot resource ------------------------------------------------------------------


def bot_violations(main: Bicep, bot: Bicep) -> list[str]:
    if _module(main, "./modules/bot.bicep") is None:
        return ["main.bicep provisions no Azure Bot (Teams would send policy calls to voicemail)"]
    found = []
    registration = _one(bot, "Microsoft.BotService/botServices")
    if value(registration.get("kind")) != "azurebot" or value(registration.get("location")) != "global":
        found.append("the bot must be an Azure Bot (kind azurebot) in location global")
    if value(registration.get("properties.msaAppType")) != "SingleTenant":
        found.append("multi-tenant bot creation is deprecated: the bot must be SingleTenant")
    if value(registration.get("properties.msaAppTenantId")) is None:
        found.append("a single-tenant bot names its app's tenant (msaAppTenantId)")
    channel = _one(bot, "Microsoft.BotService/botServices/channels")
    teams = value(channel.get("properties"))
    assert isinstance(teams, dict)
    settings = teams.get("properties", {})
    if teams.get("channelName") != "MsTeamsChannel" or value(channel.get("name")) != "MsTeamsChannel":
        found.append("the channel must be the Microsoft Teams channel")
    if settings.get("isEnabled") is not True or settings.get("enableCalling") is not True:
        found.append("the Teams channel must be enabled with calling enabled")
    webhook = channel.get("properties.properties.callingWebhook")
    if webhook is None or text(webhook) != "'https://${recorderFqdn}/api/calling'":
        found.append("the calling webhook must be https://<RECORDER_FQDN>/api/calling")
    params = _module_params(main, "./modules/bot.bicep")
    if params.get("appId") != "graphClientId" or params.get("recorderFqdn") != "recorderFqdn":
        found.append("main.bicep must register the Graph app as the bot, with the recorder's FQDN")
    return found


def test_the_azure_bot_is_provisioned_with_teams_calling_at_the_recorder(templates: dict[str, Bicep]) -> None:
    assert bot_violations(templates["main.bicep"], templates["modules/bot.bicep"]) == []
    # The webhook path is the one the recorder serves.
    assert '"/api/calling"' in (REPO / "recorder_vm" / "http.py").read_text()


def test_bot_check_catches_the_missing_bot_and_a_multi_tenant_one(templates: dict[str, Bicep]) -> None:
    main, bot = templates["main.bicep"], templates["modules/bot.bicep"]
    start = main.source.decode().index("module bot './modules/bot.bicep'")
    end = main.source.decode().index("module diagnostics")
    without_bot = Bicep((main.source.decode()[:start] + main.source.decode()[end:]).encode(), main.path)
    assert bot_violations(without_bot, bot) != []
    assert bot_violations(main, bot.replaced("msaAppType: 'SingleTenant'", "msaAppType: 'MultiTenant'")) != []
    assert bot_violations(main, bot.replaced("enableCalling: true", "enableCalling: false")) != []


# --- 3. A locked WORM policy must not be declared again -----------------------------------------

OLD_POLICY_DECLARATION = (
    "resource defaultRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/"
    "immutabilityPolicies@2023-05-01' = {"
)


def worm_lock_violations(main: Bicep, storage: Bicep) -> list[str]:
    found = []
    policies = storage.resources_of("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies")
    policy = next((p for p in policies if p.symbol == "defaultRetention"), None)
    if policy is None or policy.condition is None or text(policy.condition) != "!defaultPolicyLocked":
        found.append("the default policy is declared even when locked: every later provision fails")
    for other in policies:  # the ledger's and the anchor store's policies too: each left out once locked
        if other.condition is None or not text(other.condition).endswith("Locked"):
            found.append(f"{other.symbol} is declared even when locked: every later provision fails")
    passed = _module_params(main, "./modules/recordings-storage.bicep")
    for module_param, main_param in LOCK_PARAMETERS.items():
        if passed.get(module_param) != main_param:
            found.append(f"main.bicep does not pass {main_param} to the recordings storage's {module_param}")
        if _mapped_variable(main_param) not in hooks.DISCOVERED:
            found.append(f"{main_param} is not fed from what preprovision discovers")
    return found


# Each WORM policy of the recordings account: the module's "locked" parameter and main.bicep's, which
# preprovision discovers (the ledger's and the anchor store's are locked by the operator like the evidence's).
LOCK_PARAMETERS = {
    "defaultPolicyLocked": "recordingsWormLocked",
    "ledgerPolicyLocked": "ledgerWormLocked",
    "anchorPolicyLocked": "ledgerAnchorsWormLocked",
}


def test_a_locked_worm_policy_is_left_alone(templates: dict[str, Bicep]) -> None:
    assert worm_lock_violations(templates["main.bicep"], templates["modules/recordings-storage.bicep"]) == []


def test_worm_lock_check_catches_the_unconditional_policy(templates: dict[str, Bicep]) -> None:
    storage = templates["modules/recordings-storage.bicep"].replaced(
        OLD_POLICY_DECLARATION.replace("= {", "= if (!defaultPolicyLocked) {"), OLD_POLICY_DECLARATION
    )
    assert worm_lock_violations(templates["main.bicep"], storage) != []


@pytest.mark.parametrize(("state", "locked"), [("Locked", "true"), ("Unlocked", "false")])
def test_preprovision_reads_the_lock_state(state: str, locked: str) -> None:
    cli = FakeCli({("az", "storage", "container", "immutability-policy", "show"): (0, state + "\n", "")})
    assert hooks.discover_deployment(PROVISIONED, cli)["RECORDINGS_WORM_LOCKED"] == locked


def test_preprovision_reads_each_containers_lock_state() -> None:
    """The ledger's and the anchor store's policies are locked separately from the recordings container's; a
    provision after locking one of them must leave that one out (ARM refuses to update a locked policy)."""
    show = ("az", "storage", "container", "immutability-policy", "show", "--resource-group", "rg-prod",
            "--account-name", "strecabc", "--container-name")  # fmt: skip
    cli = FakeCli({(*show, "recordings"): (0, "Unlocked\n", ""), (*show, "ledger"): (0, "Locked\n", ""),
                   (*show, "ledger-anchors"): (0, "Locked\n", "")})  # fmt: skip
    found = hooks.discover_deployment(PROVISIONED, cli)
    assert (found["RECORDINGS_WORM_LOCKED"], found["LEDGER_WORM_LOCKED"], found["LEDGER_ANCHORS_WORM_LOCKED"]) == (
        "false",
        "true",
        "true",
    )


def test_the_printed_lock_commands_cover_every_worm_container() -> None:
    printed = "\n".join(hooks.lock_commands(PROVISIONED))
    for container in ("recordings", "ledger", "ledger-anchors"):
        assert f"--container-name {container} " in printed


def test_preprovision_stops_when_the_lock_state_cannot_be_read() -> None:
    cli = FakeCli({("az", "storage", "container", "immutability-policy", "show"): (1, "", "AuthorizationFailed")})
    with pytest.raises(hooks.HookError, match="immutability policy"):
        hooks.discover_deployment(PROVISIONED, cli)


# --- 4. Every provision keeps the scale set's capacity -----------------------------------------


def capacity_violations(main: Bicep, recorder: Bicep) -> list[str]:
    found = []
    capacity = _one(recorder, "Microsoft.Compute/virtualMachineScaleSets").get("sku.capacity")
    if capacity is None or "currentCapacity" not in text(capacity):
        found.append("the scale set's capacity is set from instanceCount on every provision (fights autoscale)")
    if _module_params(main, "./modules/recorder.bicep").get("currentCapacity") != "recorderCurrentCapacity":
        found.append("main.bicep does not pass the current capacity to the recorder")
    if _mapped_variable("recorderCurrentCapacity") not in hooks.DISCOVERED:
        found.append("recorderCurrentCapacity is not fed from what preprovision discovers")
    return found


def test_provisioning_keeps_the_current_capacity(templates: dict[str, Bicep]) -> None:
    assert capacity_violations(templates["main.bicep"], templates["modules/recorder.bicep"]) == []


def test_capacity_check_catches_the_instance_count_capacity(templates: dict[str, Bicep]) -> None:
    recorder = templates["modules/recorder.bicep"].replaced(
        "capacity: currentCapacity > 0 ? currentCapacity : instanceCount", "capacity: instanceCount"
    )
    assert capacity_violations(templates["main.bicep"], recorder) != []


def test_preprovision_reads_the_capacity_and_defaults_to_zero_before_the_scale_set_exists() -> None:
    cli = FakeCli({("az", "vmss", "show"): (0, "7\n", "")})
    assert hooks.discover_deployment(PROVISIONED, cli)["RECORDER_CURRENT_CAPACITY"] == "7"
    gone = FakeCli({("az", "vmss", "show"): (3, "", "(ResourceNotFound) The Resource ... was not found.")})
    assert hooks.discover_deployment(PROVISIONED, gone)["RECORDER_CURRENT_CAPACITY"] == "0"
    assert hooks.discover_deployment({}, FakeCli())["RECORDER_CURRENT_CAPACITY"] == "0"


# --- 5. /api/health probes only what the Function App's data roles allow ---------------------------
#
# Get Blob/Queue Service Properties (`?restype=service&comp=properties` on the account root) need the management
# actions blobServices/read and queueServices/read, which no data role grants
# (https://learn.microsoft.com/rest/api/storageservices/get-blob-service-properties#authorization); every other
# probe must name a container or queue that runtime-storage.bicep creates (the Function App's roles are on that
# account: Storage Blob Data Owner, Storage Queue Data Contributor, Storage Table Data Contributor).


class _RecordingStorage:
    """A storage endpoint that records each request line and answers 200 with nothing in it."""

    def __init__(self) -> None:
        import http.server
        import threading

        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.requests = requests
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def connection_string(self) -> str:
        from devstack.emulators import AZURITE_ACCOUNT, AZURITE_KEY

        base = f"http://127.0.0.1:{self.server.server_address[1]}/{AZURITE_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={base};QueueEndpoint={base};TableEndpoint={base};"
        )


def health_probe_requests(make_checks: Any) -> list[str]:
    """The request paths the health checks send (their answers do not matter here)."""
    from verbatim.platform.settings import Settings
    from verbatim.wiring import Container

    storage = _RecordingStorage()
    try:
        settings = Settings.model_validate({"AzureWebJobsStorage": storage.connection_string()})
        for check in make_checks(Container(settings)).values():
            if check is not None:
                with contextlib.suppress(Exception):  # an empty 200 is not a valid answer; only the request matters
                    check()
    finally:
        storage.server.shutdown()
    return storage.requests


def health_probe_violations(requests: Sequence[str], runtime_storage: Bicep) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    from devstack.emulators import AZURITE_ACCOUNT

    declared = set()
    for name in ("blobContainers", "queues"):
        declared |= set(value(runtime_storage.variables()[name]))  # type: ignore[arg-type]
    problems = []
    for request in requests:
        url = urlsplit(request)
        query = parse_qs(url.query)
        target = url.path.removeprefix(f"/{AZURITE_ACCOUNT}").strip("/").split("/")[0]
        if query.get("restype") == ["service"]:
            problems.append(f"{request}: a service-level call needs a management role the app does not have")
        elif target not in declared and not target.startswith("Tables"):
            problems.append(f"{request}: {target!r} is not a container or queue of runtime-storage.bicep")
    return problems


def test_the_health_probe_reads_only_containers_and_queues_the_app_may_read(templates: dict[str, Bicep]) -> None:
    from verbatim.wiring.health import dependency_checks

    requests = health_probe_requests(dependency_checks)
    assert len(requests) >= 3
    assert health_probe_violations(requests, templates["modules/runtime-storage.bicep"]) == []


def test_health_probe_check_catches_the_service_properties_calls(templates: dict[str, Bicep]) -> None:
    from verbatim.platform import clients

    def old_checks(container: Any) -> dict[str, Any]:
        runtime = container.settings.runtime_storage_connection
        return {
            "blob": lambda: clients.blob_service(runtime).get_service_properties(timeout=3),
            "queue": lambda: clients.queue_service(runtime).get_service_properties(timeout=3),
        }

    violations = health_probe_violations(health_probe_requests(old_checks), templates["modules/runtime-storage.bicep"])
    assert len(violations) == 2


# --- 6. The tiering rules match a tag the Function App sets ----------------------------------------
#
# Lifecycle `blobIndexMatch` filters need the tag on the blob; only Storage Blob Data Owner (the Function App's role
# on `recordings`) or `blobs/tags/write` may set it (storage-manage-find-blobs#setting-blob-index-tags), so the code
# that writes it must be the Function App's (verbatim/), through verbatim.evidence.kinds.


def _tagged_kinds(sources: dict[str, str]) -> dict[str, set[str]]:
    """Which kinds each file tags: `kind_tags(KIND)` passed to set_blob_tags(...) or as `tags=`."""
    import ast

    from verbatim.evidence import kinds

    constants = {"EVIDENCE": kinds.EVIDENCE, "ACCESS_COPY": kinds.ACCESS_COPY}
    found: dict[str, set[str]] = {}
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            # The SDK's Set Blob Tags, or the BlobStore port's (verbatim.platform.blobs) that sends it.
            is_set_tags = isinstance(node.func, ast.Attribute) and node.func.attr in ("set_blob_tags", "set_tags")
            arguments = list(node.args) if is_set_tags else []
            arguments += [k.value for k in node.keywords if k.arg == "tags"]
            for argument in arguments:
                if (
                    isinstance(argument, ast.Call)
                    and isinstance(argument.func, ast.Name)
                    and argument.func.id == "kind_tags"
                    and isinstance(argument.args[0], ast.Name)
                    and argument.args[0].id in constants
                ):
                    found.setdefault(path, set()).add(constants[argument.args[0].id])
    return found


def tiering_tag_violations(recordings_storage: Bicep, sources: dict[str, str]) -> list[str]:
    from verbatim.evidence.kinds import KIND_TAG

    [policy] = recordings_storage.resources_of("Microsoft.Storage/storageAccounts/managementPolicies")
    rules = value(policy.get("properties"))["policy"]["rules"]  # type: ignore[index]
    kind_tag = value(recordings_storage.variables()["kindTag"])
    tagged = _tagged_kinds(sources)
    written = {kind for path, kinds in tagged.items() if path.startswith("verbatim/") for kind in kinds}
    problems = [
        f"{path} sets index tags, which the recorder's role cannot"
        for path in tagged
        if path.startswith("recorder_vm/")
    ]
    for rule in rules:
        for match in rule["definition"]["filters"].get("blobIndexMatch", []):
            name = kind_tag if match["name"] == Expr("kindTag") else match["name"]
            if name != KIND_TAG:
                problems.append(f"rule {rule['name']}: matches tag {name!r}, the code sets {KIND_TAG!r}")
            elif match["value"] not in written:
                problems.append(f"rule {rule['name']}: nothing in the Function App tags a blob {name}={match['value']}")
    return problems


def _python_sources() -> dict[str, str]:
    return {
        str(path.relative_to(REPO)): path.read_text()
        for root in ("verbatim", "recorder_vm")
        for path in sorted((REPO / root).rglob("*.py"))
    }


def test_the_tiering_rules_match_tags_the_function_app_sets(templates: dict[str, Bicep]) -> None:
    assert tiering_tag_violations(templates["modules/recordings-storage.bicep"], _python_sources()) == []


def test_tiering_check_catches_tags_nobody_sets(templates: dict[str, Bicep]) -> None:
    sources = _python_sources()
    # Every place that tags a blob evidence or access copy (the audio copy, and the video MP4 since issue 19).
    untagged = {
        path: re.sub(r",\s*tags=kind_tags\((EVIDENCE|ACCESS_COPY)\)", "", text) for path, text in sources.items()
    }
    finalise, access_copy = "verbatim/evidence/finalise.py", "verbatim/evidence/access_copy.py"
    assert untagged[finalise] != sources[finalise] and untagged[access_copy] != sources[access_copy]
    assert len(tiering_tag_violations(templates["modules/recordings-storage.bicep"], untagged)) == 2
    by_recorder = dict(sources, **{"recorder_vm/x.py": "blob.set_blob_tags(kind_tags(EVIDENCE))"})
    assert tiering_tag_violations(templates["modules/recordings-storage.bicep"], by_recorder) != []


# --- 7. The recorder reads its certificate, not every secret ------------------------------------

OLD_CERTIFICATE_ROLE = """resource recCertificate 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, recorderPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
"""


def vault_scope_violations(rbac: Bicep, certificate_vault: Bicep, recorder: Bicep) -> list[str]:
    found = []
    for assignment in rbac.resources_of("Microsoft.Authorization/roleAssignments"):
        principal = value(assignment.get("properties.principalId"))
        scope = assignment.get("scope")
        if principal == Expr("recorderPrincipalId") and scope is not None and text(scope) == "vault":
            found.append(f"{assignment.symbol}: the recorder holds a role on the whole main vault (every secret)")
    certificate_role = next(
        (r for r in rbac.resources_of("Microsoft.Authorization/roleAssignments") if r.symbol == "recCertificate"), None
    )
    if certificate_role is None or text(certificate_role.get("scope")) != "certificateVault":  # type: ignore[arg-type]
        found.append("the recorder's certificate role must sit on the certificate vault")
    for type_ in ("Microsoft.KeyVault/vaults/secrets", "Microsoft.KeyVault/vaults/keys"):
        if certificate_vault.resources_of(type_):
            found.append(f"the certificate vault must hold nothing but the certificate ({type_})")
    url = value(recorder.variables()["bootstrapConfig"]).get("certificateUrl")  # type: ignore[union-attr]
    if not isinstance(url, Expr) or "certificateVaultUri" not in url.text:
        found.append("the Key Vault extension must read the certificate from the certificate vault")
    return found


def test_the_recorder_can_read_only_its_certificate(templates: dict[str, Bicep]) -> None:
    assert (
        vault_scope_violations(
            templates["modules/rbac.bicep"],
            templates["modules/certificate-vault.bicep"],
            templates["modules/recorder.bicep"],
        )
        == []
    )


def test_vault_scope_check_catches_the_vault_wide_certificate_role(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"]
    new = rbac.source.decode()
    start = new.index("resource recCertificate")
    old_rbac = Bicep(
        (new[:start] + OLD_CERTIFICATE_ROLE + new[new.index("  properties:", start) :]).encode(), rbac.path
    )
    assert (
        vault_scope_violations(
            old_rbac, templates["modules/certificate-vault.bicep"], templates["modules/recorder.bicep"]
        )
        != []
    )


# --- 8. The NSG lets Teams in --------------------------------------------------------------------

# Microsoft 365 endpoint sets 11 (UDP 3478-3481) and 12 (TCP 443), Microsoft Teams, IPv4 ranges, as
# https://learn.microsoft.com/microsoft-365/enterprise/urls-and-ip-address-ranges publishes them (2026-08-14).
TEAMS_IPV4 = ["52.112.0.0/14", "52.122.0.0/15"]


def nsg_source_violations(network: Bicep, main: Bicep) -> list[str]:
    found = []
    nsg = _one(network, "Microsoft.Network/networkSecurityGroups")
    for rule in value(nsg.get("properties.securityRules")):  # type: ignore[union-attr]
        p = rule["properties"]
        if p["access"] != "Allow":
            continue
        source = p.get("sourceAddressPrefix")
        if source in ("AzureCloud", "Internet", "*"):
            found.append(f"{rule['name']}: allows {source}; Teams comes from the Microsoft 365 ranges")
    for name in ("teamsSignallingPrefixes", "teamsMediaPrefixes"):
        if value(network.params()[name].default) != TEAMS_IPV4:
            found.append(f"network.bicep {name} default is not the documented Teams ranges")
        if value(main.params()[name].default) != ",".join(TEAMS_IPV4):
            found.append(f"main.bicep {name} default is not the documented Teams ranges")
        variable = _mapped_variable(name)
        if variable is None or not PARAMETERS[name]["value"].endswith("=" + ",".join(TEAMS_IPV4) + "}"):
            found.append(f"main.parameters.json maps {name} without the documented default")
    return found


def test_the_nsg_admits_teams_from_its_published_ranges(templates: dict[str, Bicep]) -> None:
    assert nsg_source_violations(templates["modules/network.bicep"], templates["main.bicep"]) == []


_MEDIA_CONTROL_SOURCE = "sourceAddressPrefixes: teamsSignallingPrefixes\n          sourcePortRange: '*'\n" + (
    "          destinationAddressPrefix: '*'\n          destinationPortRange: string(ports.media)"
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (_MEDIA_CONTROL_SOURCE, _MEDIA_CONTROL_SOURCE.replace("sourceAddressPrefixes: teamsSignallingPrefixes",
                                                              "sourceAddressPrefix: 'AzureCloud'")),
        ("sourceAddressPrefixes: concat(teamsSignallingPrefixes, operatorPrefixes)", "sourceAddressPrefix: 'Internet'"),
    ],
)  # fmt: skip
def test_nsg_source_check_catches_azure_cloud_and_internet(templates: dict[str, Bicep], old: str, new: str) -> None:
    assert nsg_source_violations(templates["modules/network.bicep"].replaced(old, new), templates["main.bicep"]) != []


# --- 9. The smaller ones --------------------------------------------------------------------------


def calls_without_subscription(calls: list[list[str]]) -> list[str]:
    """az calls that address ARM without --subscription <AZURE_SUBSCRIPTION_ID> (az ad is tenant-wide)."""
    missing = []
    for call in calls:
        if call[0] != "az" or call[1] == "ad":
            continue
        if "--subscription" not in call or call[call.index("--subscription") + 1] != SUBSCRIPTION:
            missing.append(" ".join(call[:4]))
    return missing


def _every_hook_call(repo: Path) -> list[list[str]]:
    cli = FakeCli({("az", "ad", "sp", "show"): (0, "11111111-2222-3333-4444-555555555555\n", "")})
    env = {
        **PROVISIONED,
        "AZURE_ENV_NAME": "prod",
        "AZURE_LOCATION": "westeurope",
        "GRAPH_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "GRAPH_CLIENT_SECRET": "s",
        "ALERT_EMAIL": "ops@contoso.com",
    }
    assert hooks.preprovision(env, cli, repo) == 0
    assert hooks.postprovision(env, cli) == 0
    assert hooks.predeploy(env, cli, repo) == 0
    assert hooks.postdeploy(env, cli, repo) == 0
    return cli.calls


def test_every_arm_call_of_the_hooks_names_the_subscription(tmp_path: Path) -> None:
    for name in ("recorder_vm/deploy/install.ps1", "recorder_vm/__init__.py", "verbatim/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    calls = _every_hook_call(tmp_path)
    assert [c[:2] for c in calls if c[0] == "az"], "the hooks call az"
    assert calls_without_subscription(calls) == []
    printed_lock = " ".join(hooks.lock_commands(PROVISIONED))
    assert f"--subscription {SUBSCRIPTION}" in printed_lock


def test_subscription_check_catches_the_old_postdeploy_call() -> None:
    old = ["az", "functionapp", "keys", "set", "--resource-group", "rg-prod", "--name", "func", "--key-type",
           "functionKeys", "--key-name", "graph-webhook", "--key-value", "k"]  # fmt: skip
    assert calls_without_subscription([old]) == ["az functionapp keys set"]


# Parameters deliberately left to their defaults (everything else an operator may set is mapped).
DEFAULT_ONLY = {
    "graphBaseUrl",
    "graphAuthorityHost",
    "recorderZones",
    "recorderAdminUsername",
    "recorderCertificateName",
    "evidenceColdAfterDays",
    "evidenceArchiveAfterDays",
    "captureVersionsDeleteAfterDays",
    "cosmosAutoscaleMaxThroughput",
    "alwaysReadyHttpInstances",
    "alwaysReadyDurableInstances",
    "durableTaskHubName",
    "logLevel",
    "botSku",
}


def unmapped_parameters(main: Bicep, parameters: dict[str, Any]) -> set[str]:
    return set(main.params()) - set(parameters) - DEFAULT_ONLY


def test_every_parameter_is_mapped_or_deliberately_default(main: Bicep) -> None:
    assert unmapped_parameters(main, PARAMETERS) == set()


def test_parameter_check_catches_the_unmapped_allowed_ip_ranges(main: Bicep) -> None:
    old = {name: entry for name, entry in PARAMETERS.items() if name != "allowedIpRanges"}
    assert unmapped_parameters(main, old) == {"allowedIpRanges"}


def recover_violations(vault: Bicep) -> list[str]:
    created = value(_one(vault, "Microsoft.KeyVault/vaults").get("properties.createMode"))
    if created != Expr("recover ? 'recover' : 'default'"):
        return ["the vault cannot be recovered after azd down (purge protection keeps its name for 90 days)"]
    return []


@pytest.mark.parametrize("module", ["modules/keyvault.bicep", "modules/certificate-vault.bicep"])
def test_soft_deleted_vaults_are_recovered(templates: dict[str, Bicep], module: str) -> None:
    assert recover_violations(templates[module]) == []
    old = templates[module].replaced("    createMode: recover ? 'recover' : 'default'\n", "")
    assert recover_violations(old) != []


def test_preprovision_recovers_this_environments_soft_deleted_vaults() -> None:
    cli = FakeCli(
        {
            ("az", "keyvault", "show-deleted", "--name", "kv-abc"): (0, "kv-abc\n", ""),
            ("az", "keyvault", "show-deleted", "--name", "kv-rec-abc"): (3, "", "(DeletedVaultNotFound) not found"),
        }
    )
    found = hooks.discover_deployment(PROVISIONED, cli)
    assert (found["MAIN_VAULT_RECOVER"], found["CERTIFICATE_VAULT_RECOVER"]) == ("true", "false")
    for parameter in ("mainVaultRecover", "certificateVaultRecover"):
        assert _mapped_variable(parameter) in hooks.DISCOVERED


def role_name_violations(rbac: Bicep) -> list[str]:
    roles = rbac.resources_of("Microsoft.Authorization/roleDefinitions")
    assert roles, "expected the custom role definitions"
    found = []
    for role in roles:
        name = role.get("properties.roleName")
        if name is None or not re.search(r"uniqueString\((resourceGroup|subscription)\(\)\.id", text(name)):
            found.append(
                f"{role.symbol}: custom role names are unique per tenant; the name must carry a hash of the id"
            )
    return found


def test_the_custom_role_name_is_unique_per_tenant(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"]
    assert role_name_violations(rbac) == []
    old = rbac.replaced(
        "roleName: 'Verbatim recorder self-service ${resourceGroup().name} ${uniqueString(resourceGroup().id)}'",
        "roleName: 'Verbatim recorder self-service (${resourceGroup().name})'",
    )
    assert role_name_violations(old) != []


def azd_version_violations(azure_yaml: dict[str, Any]) -> list[str]:
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", str(azure_yaml.get("requiredVersions", {}).get("azd", "")))
    if not match or tuple(int(part) for part in match.groups()) < (1, 23, 13):
        return ["azd >= 1.23.13 is needed (.funcignore for Flex Consumption, hook values in parameters)"]
    return []


def test_azd_minimum_version_covers_the_features_used() -> None:
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert azd_version_violations(azure_yaml) == []
    assert azd_version_violations({**azure_yaml, "requiredVersions": {"azd": ">= 1.10.0"}}) != []


# Microsoft's Flex Consumption quickstart lists (Azure-Samples/functions-quickstart-python-http-azd@7ed4638).
FLEX_REGIONS = {
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus", "eastasia",
    "eastus", "eastus2", "eastus2euap", "francecentral", "germanywestcentral", "italynorth", "japaneast",
    "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
    "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
}  # fmt: skip


def region_violations(main: Bicep) -> list[str]:
    allowed = main.params()["location"].decorator_value("allowed")
    if not isinstance(allowed, list) or not allowed:
        return ["location takes any region, including ones without Flex Consumption"]
    return [f"{region} is not a Flex Consumption region" for region in allowed if region not in FLEX_REGIONS]


def test_location_is_limited_to_flex_consumption_regions(main: Bicep) -> None:
    assert region_violations(main) == []
    source = main.source.decode()
    start = source.index("@allowed([\n  'australiaeast'")
    end = source.index("])\n", start) + 3
    assert region_violations(Bicep((source[:start] + source[end:]).encode(), main.path)) != []
    assert region_violations(main.replaced("  'westus3'\n", "  'westus3'\n  'chinanorth3'\n")) != []


# --- 10. What a senior reviewer expects ------------------------------------------------------------

DIAGNOSTIC = "Microsoft.Insights/diagnosticSettings"


def diagnostics_violations(main: Bicep, diagnostics: Bicep) -> list[str]:
    if _module(main, "./modules/diagnostics.bicep") is None:
        return ["no diagnostic settings: Key Vault, storage and Cosmos access is not logged"]
    found = []
    variables = diagnostics.variables()
    by_scope: dict[str, Any] = {}
    for setting in diagnostics.resources_of(DIAGNOSTIC):
        properties = value(setting.get("properties"))
        assert isinstance(properties, dict)
        logs = properties.get("logs")
        if isinstance(logs, Expr) and logs.text in variables:  # a shared list, e.g. storageLogs
            properties["logs"] = value(variables[logs.text])
        by_scope[text(setting.get("scope"))] = properties  # type: ignore[arg-type]
    expected = {
        "vault": {"AuditEvent"},
        "certificateVault": {"AuditEvent"},
        "runtimeStorage::blobService": {"StorageRead", "StorageWrite", "StorageDelete"},
        "runtimeStorage::queueService": {"StorageRead", "StorageWrite", "StorageDelete"},
        "runtimeStorage::tableService": {"StorageRead", "StorageWrite", "StorageDelete"},
        "recordingsStorage::blobService": {"StorageRead", "StorageWrite", "StorageDelete"},
        "cosmos": {"DataPlaneRequests", "ControlPlaneRequests"},
    }
    for scope, categories in expected.items():
        properties = by_scope.get(scope)
        logs = {log["category"] for log in properties.get("logs", []) if log.get("enabled")} if properties else set()  # type: ignore[union-attr]
        if logs != categories:
            found.append(f"{scope}: logs {sorted(logs)}, expected {sorted(categories)}")
        elif properties.get("workspaceId") != Expr("workspaceId"):  # type: ignore[union-attr]
            found.append(f"{scope}: not sent to the workspace")
    return found


def test_access_to_vaults_storage_and_cosmos_is_logged(templates: dict[str, Bicep]) -> None:
    assert diagnostics_violations(templates["main.bicep"], templates["modules/diagnostics.bicep"]) == []


def test_diagnostics_check_catches_a_missing_category(templates: dict[str, Bicep]) -> None:
    diagnostics = templates["modules/diagnostics.bicep"]
    assert (
        diagnostics_violations(templates["main.bicep"], diagnostics.replaced("'StorageDelete'", "'StorageRead'")) != []
    )
    source = templates["main.bicep"].source.decode()
    start, end = source.index("module diagnostics"), source.index("module alerts")
    without = Bicep((source[:start] + source[end:]).encode(), templates["main.bicep"].path)
    assert diagnostics_violations(without, diagnostics) != []


def agent_violations(recorder: Bicep) -> list[str]:
    found = []
    extensions = {
        e["properties"]["type"]: e["properties"]
        for e in value(
            _one(recorder, "Microsoft.Compute/virtualMachineScaleSets").get(
                "properties.virtualMachineProfile.extensionProfile.extensions"
            )
        )  # type: ignore[union-attr]
    }
    agent = extensions.get("AzureMonitorWindowsAgent")
    if agent is None or agent.get("publisher") != "Microsoft.Azure.Monitor":
        found.append("the scale set runs no Azure Monitor Agent: recorder logs never leave the VMs")
    elif agent["settings"]["authentication"]["managedIdentity"] != {
        "identifier-name": "mi_res_id",
        "identifier-value": Expr("identityId"),
    }:
        found.append("the agent must authenticate with the recorder's user-assigned identity")
    rules = recorder.resources_of("Microsoft.Insights/dataCollectionRules")
    if len(rules) != 1 or value(rules[0].get("kind")) != "Windows":
        found.append("no Windows data collection rule")
    else:
        queries = value(rules[0].get("properties.dataSources.windowsEventLogs"))[0]["xPathQueries"]  # type: ignore[index]
        from recorder_vm.deploy.windows_service import SERVICE_NAME
        from recorder_vm.event_log import EVENT_SOURCE

        provider = f"Application!*[System[Provider[@Name='{EVENT_SOURCE}']]]"
        if provider not in queries or EVENT_SOURCE != SERVICE_NAME:
            found.append("the data collection rule does not collect the events the recorder writes")
    association = recorder.resources_of("Microsoft.Insights/dataCollectionRuleAssociations")
    if len(association) != 1 or text(association[0].get("scope")) != "scaleSet":  # type: ignore[arg-type]
        found.append("the data collection rule is not associated with the scale set")
    return found


def test_recorder_logs_leave_the_vms_through_the_azure_monitor_agent(templates: dict[str, Bicep]) -> None:
    assert agent_violations(templates["modules/recorder.bicep"]) == []
    without = templates["modules/recorder.bicep"].replaced("type: 'AzureMonitorWindowsAgent'", "type: 'Removed'")
    assert agent_violations(without) != []


def backup_violations(cosmos: Bicep) -> list[str]:
    policy = value(_one(cosmos, "Microsoft.DocumentDB/databaseAccounts").get("properties.backupPolicy"))
    if not isinstance(policy, dict) or policy.get("type") != "Continuous":
        return ["Cosmos DB (ledger, audit) has no continuous backup: no point-in-time restore"]
    return []


def test_cosmos_has_continuous_backup(templates: dict[str, Bicep]) -> None:
    cosmos = templates["modules/cosmos.bicep"]
    assert backup_violations(cosmos) == []
    assert backup_violations(cosmos.replaced("type: 'Continuous'", "type: 'Periodic'")) != []


def rotation_violations(vault: Bicep, function_app_params: dict[str, str]) -> list[str]:
    found = []
    key = _one(vault, "Microsoft.KeyVault/vaults/keys")
    actions = value(key.get("properties.rotationPolicy.lifetimeActions"))
    if not isinstance(actions, list) or not any(a["action"]["type"] == "rotate" for a in actions):
        found.append("the ledger key has no rotation policy")
    if function_app_params.get("ledgerKeyId") != "keyVault.outputs.ledgerKeyUri":
        found.append("the app pins one key version: after a rotation it signs with a stale (expiring) version")
    return found


def test_the_ledger_key_rotates_and_the_app_follows(templates: dict[str, Bicep]) -> None:
    vault, main = templates["modules/keyvault.bicep"], templates["main.bicep"]
    params = _module_params(main, "./modules/function-app.bicep")
    assert rotation_violations(vault, params) == []
    assert rotation_violations(vault, {**params, "ledgerKeyId": "keyVault.outputs.ledgerKeyUriWithVersion"}) != []
    assert rotation_violations(vault.replaced("action: { type: 'rotate' }", "action: { type: 'notify' }"), params) != []


def autoscale_violations(recorder: Bicep) -> list[str]:
    """Scale out and in on calls per instance (the metric recorder_vm.metrics posts), which the recorder may post."""
    from recorder_vm import metrics

    variables = {name: value(node) for name, node in recorder.variables().items()}

    def resolved(item: Any) -> Any:
        return variables.get(item.text, item) if isinstance(item, Expr) else item

    found = []
    [autoscale] = recorder.resources_of("Microsoft.Insights/autoscalesettings")
    rules = [rule for profile in value(autoscale.get("properties.profiles")) for rule in profile["rules"]]  # type: ignore[union-attr]
    on_calls = {
        rule["scaleAction"]["direction"]
        for rule in rules
        if resolved(rule["metricTrigger"]["metricName"]) == metrics.METRIC
        and resolved(rule["metricTrigger"]["metricNamespace"]) == metrics.NAMESPACE
        and rule["metricTrigger"]["metricResourceUri"] == Expr("scaleSet.id")
    }
    for direction in ("Increase", "Decrease"):
        if direction not in on_calls:
            found.append(f"no {direction} rule on {metrics.NAMESPACE}/{metrics.METRIC} of the scale set")
    settings = value(recorder.variables()["recorderSettings"])
    assert isinstance(settings, dict)
    if not {"RECORDER_METRICS_ENDPOINT", "RECORDER_METRICS_RESOURCE_ID"} <= set(settings):
        found.append("the recorder is not told where to post its calls metric")
    publisher = [
        a
        for a in recorder.resources_of("Microsoft.Authorization/roleAssignments")
        if text(a.get("scope")) == "scaleSet" and text(a.get("properties.roleDefinitionId")) == "metricsPublisherRoleId"
    ]
    if not publisher:
        found.append("the recorder may not post metrics on the scale set (Monitoring Metrics Publisher)")
    return found


def test_autoscale_follows_calls_per_instance(templates: dict[str, Bicep]) -> None:
    assert autoscale_violations(templates["modules/recorder.bicep"]) == []


def test_autoscale_check_catches_cpu_only_rules(templates: dict[str, Bicep]) -> None:
    recorder = templates["modules/recorder.bicep"]
    cpu_only = recorder.replaced("metricName: callsMetricName", "metricName: 'Percentage CPU'")
    assert len(autoscale_violations(cpu_only)) == 2
    no_role = recorder.replaced("roleDefinitionId: metricsPublisherRoleId", "roleDefinitionId: selfServiceRoleId")
    assert autoscale_violations(no_role) != []


# --- Alerts an operator must act on ---------------------------------------------------------------

REQUIRED_ALERTS = {
    "verbatim-policy-call-not-recorded",
    "verbatim-callrecords-subscription-not-renewed",
    "verbatim-completeness-report-missing",
    "verbatim-evidence-worm-not-locked",
    "verbatim-poison-messages",
    "verbatim-recorder-silent",
    "verbatim-recorder-unhealthy",
}
_PYTHON_SOURCES = "\n".join(
    path.read_text() for folder in ("verbatim", "functions", "recorder_vm") for path in (REPO / folder).rglob("*.py")
)


def alert_violations(main: Bicep, alerts: Bicep) -> list[str]:
    if _module(main, "./modules/alerts.bicep") is None:
        return ["no alert rules: the reconciler only writes log lines nobody reads"]
    found = []
    group = _one(alerts, "Microsoft.Insights/actionGroups")
    receivers = value(group.get("properties.emailReceivers"))
    if not receivers or receivers[0].get("emailAddress") != Expr("alertEmail"):  # type: ignore[index,union-attr]
        found.append("the action group does not e-mail the operators (alertEmail)")
    log_alerts = value(alerts.variables()["logAlerts"])
    assert isinstance(log_alerts, list)
    names = {f"verbatim-{a['name']}" for a in log_alerts} | {
        str(value(r.get("name"))) for r in alerts.resources_of("Microsoft.Insights/metricAlerts")
    }
    found += [f"missing alert {name}" for name in sorted(REQUIRED_ALERTS - names)]
    for alert in log_alerts:
        query = alert["query"] if isinstance(alert["query"], str) else alert["query"].text
        # Every message the query looks for is a log message in the code; every request name a function.
        for message in re.findall(r'Message (?:startswith|has) "([^"]+)"', query):
            if message not in _PYTHON_SOURCES:
                found.append(f"{alert['name']}: no code logs {message!r}")
        for function in re.findall(r'\bName == "([^"]+)"', query):
            if not re.search(rf"def {re.escape(function)}\(", _PYTHON_SOURCES):
                found.append(f"{alert['name']}: no function {function!r}")
    return found


def test_the_alerts_exist_and_look_for_what_the_code_logs(templates: dict[str, Bicep]) -> None:
    assert alert_violations(templates["main.bicep"], templates["modules/alerts.bicep"]) == []


def test_alert_check_catches_a_query_for_a_message_nobody_logs(templates: dict[str, Bicep]) -> None:
    alerts = templates["modules/alerts.bicep"]
    renamed = alerts.replaced("ensuring the callRecords subscription failed", "subscription renewal failed")
    assert alert_violations(templates["main.bicep"], renamed) != []
    wrong_function = alerts.replaced('Name == "completeness_report"', 'Name == "daily_report"')
    assert alert_violations(templates["main.bicep"], wrong_function) != []


def test_application_insights_does_not_sample_what_the_alerts_count() -> None:
    sampling = json.loads((REPO / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Trace", "Exception"} <= set(sampling["excludedTypes"].split(";"))
