"""Security and platform policies over the Bicep parse trees.

Each policy is proven twice: it holds for every template, and it catches a bad snippet (or the real
template with the safe setting flipped), so a check that silently stopped looking would fail here.
"""

from __future__ import annotations

import re

import pytest

from tests.infra import bicep_policy as policy
from tests.infra.bicep_tree import Bicep, Expr, text, value

# --- generic policies: hold everywhere ------------------------------------------------------------


@pytest.mark.parametrize("check", policy.GENERIC_POLICIES, ids=lambda c: c.__name__)
def test_policy_holds_for_every_template(check, templates: dict[str, Bicep]) -> None:  # type: ignore[no-untyped-def]
    violations = [v for template in templates.values() for v in check(template)]
    assert violations == []


# --- ... and each one catches what it is there to catch ------------------------------------------

STORAGE_OK = """
resource sa 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    supportsHttpsTrafficOnly: true
  }
}
"""


def _snippet(text: str) -> Bicep:
    return Bicep.from_text(text)


def test_a_compliant_storage_snippet_passes_every_generic_check() -> None:
    # The baseline the negative cases below change one setting of.
    for check in policy.GENERIC_POLICIES:
        if check is not policy.local_files_exist:
            assert check(_snippet(STORAGE_OK)) == [], check.__name__


@pytest.mark.parametrize(
    ("check", "old", "new"),
    [
        (policy.tls_minimum, "'TLS1_2'", "'TLS1_0'"),
        (policy.tls_minimum, "    minimumTlsVersion: 'TLS1_2'\n", ""),
        (policy.no_public_blob_access, "allowBlobPublicAccess: false", "allowBlobPublicAccess: true"),
        (policy.keys_off, "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
        (policy.keys_off, "allowSharedKeyAccess: false", "allowSharedKeyAccess: keysWanted"),
        (policy.https_only, "supportsHttpsTrafficOnly: true", "supportsHttpsTrafficOnly: false"),
    ],
)
def test_storage_checks_catch_an_unsafe_setting(check, old: str, new: str) -> None:  # type: ignore[no-untyped-def]
    assert check(_snippet(STORAGE_OK.replace(old, new))) != []


def test_public_container_is_caught() -> None:
    snippet = "resource c 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {\n"
    snippet += "  name: 'x'\n  properties: { publicAccess: 'Blob' }\n}\n"
    assert policy.no_public_blob_access(_snippet(snippet)) != []


def test_key_listing_is_caught() -> None:
    snippet = "var conn = 'DefaultEndpointsProtocol=https;AccountKey=${sa.listKeys().keys[0].value}'\n"
    assert any("listKeys" in v for v in policy.keys_off(_snippet(snippet)))


def test_cosmos_local_auth_and_old_tls_are_caught(templates: dict[str, Bicep]) -> None:
    cosmos = templates["modules/cosmos.bicep"]
    assert policy.keys_off(cosmos.replaced("disableLocalAuth: true", "disableLocalAuth: false")) != []
    assert policy.tls_minimum(cosmos.replaced("minimalTlsVersion: 'Tls12'", "minimalTlsVersion: 'Tls'")) != []


def test_function_app_without_https_or_identity_is_caught(templates: dict[str, Bicep]) -> None:
    app = templates["modules/function-app.bicep"]
    assert policy.https_only(app.replaced("httpsOnly: true", "httpsOnly: false")) != []
    assert policy.tls_minimum(app.replaced("minTlsVersion: '1.2'\n", "minTlsVersion: '1.0'\n")) != []
    assert policy.keys_off(app.replaced("properties: { allow: false }", "properties: { allow: true }")) != []
    no_identity = app.replaced("type: 'UserAssigned'\n    userAssignedIdentities", "type: 'None'\n    x")
    assert policy.managed_identity_on_compute(no_identity) != []


def test_scale_set_without_identity_is_caught(templates: dict[str, Bicep]) -> None:
    recorder = templates["modules/recorder.bicep"]
    assert policy.managed_identity_on_compute(recorder.replaced("type: 'UserAssigned'", "type: 'None'")) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "param adminPassword string = 'P@ssw0rd!'\n",
        "@secure()\nparam anything string = 'hunter2'\n",
        "param clientSecret string\n",  # looks secret, not @secure()
        "var conn = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc=='\n",
    ],
)
def test_secret_defaults_and_literal_credentials_are_caught(snippet: str) -> None:
    assert policy.no_secret_defaults(_snippet(snippet)) != []


def test_a_secure_parameter_without_default_is_fine() -> None:
    assert policy.no_secret_defaults(_snippet("@secure()\nparam adminPassword string\n")) == []


def test_missing_module_file_and_registry_module_are_caught(templates: dict[str, Bicep]) -> None:
    main = templates["main.bicep"]
    assert policy.local_files_exist(main.replaced("'./modules/cosmos.bicep'", "'./modules/nope.bicep'")) != []
    registry = main.replaced("'./modules/cosmos.bicep'", "'br/public:avm/res/document-db/database-account:0.1.0'")
    assert policy.local_files_exist(registry) != []
    missing_json = main.replaced("loadJsonContent('./abbreviations.json')", "loadJsonContent('./nope.json')")
    assert policy.local_files_exist(missing_json) != []


def test_plain_http_health_probe_is_caught(templates: dict[str, Bicep]) -> None:
    network = templates["modules/network.bicep"]
    assert policy.https_only(network.replaced("protocol: 'Https'", "protocol: 'Http'")) != []
    recorder = templates["modules/recorder.bicep"]
    assert policy.https_only(recorder.replaced("protocol: 'https'", "protocol: 'http'")) != []


# --- project policies: evidence, vault, Functions, recorder ----------------------------------------


def _one(template: Bicep, type_: str):  # type: ignore[no-untyped-def]
    found = template.resources_of(type_)
    assert len(found) == 1, f"expected one {type_}, found {[r.symbol for r in found]}"
    return found[0]


def _recordings_container(template: Bicep):  # type: ignore[no-untyped-def]
    containers = {value(r.get("name")): r for r in template.resources_of(policy.CONTAINER)}
    return containers.get("recordings") or next(
        r for r in template.resources_of(policy.CONTAINER) if value(r.get("name")) == Expr("recordingsContainerName")
    )


def worm_violations(template: Bicep) -> list[str]:
    """Recordings: versioning on, version-level immutability on the container, an unlocked default policy."""
    found = []
    blob_service = _one(template, "Microsoft.Storage/storageAccounts/blobServices")
    if value(blob_service.get("properties.isVersioningEnabled")) is not True:
        found.append("blob versioning is off")
    container = _recordings_container(template)
    if value(container.get("properties.immutableStorageWithVersioning.enabled")) is not True:
        found.append("the recordings container has no version-level immutability")
    policies = {
        p.symbol: p
        for p in template.resources_of("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies")
    }
    default = policies.get("defaultRetention")
    if default is None or value(default.get("properties.immutabilityPeriodSinceCreationInDays")) != Expr(
        "defaultRetentionDays"
    ):
        found.append("the recordings container needs one default policy of defaultRetentionDays")
    # The ledger v2 log (version-level, like the evidence) and its anchor store (container-level) are WORM too.
    ledger = next((r for r in template.resources_of(policy.CONTAINER) if r.symbol == "ledgerContainer"), None)
    if ledger is None or value(ledger.get("properties.immutableStorageWithVersioning.enabled")) is not True:
        found.append("the ledger container has no version-level immutability")
    for symbol in ("ledgerRetention", "ledgerAnchorsRetention"):
        declared = policies.get(symbol)
        if declared is None or value(declared.get("properties.immutabilityPeriodSinceCreationInDays")) != Expr(
            "ledgerRetentionDays"
        ):
            found.append(f"{symbol}: the ledger's containers need a policy of ledgerRetentionDays")
    source = template.source.decode()
    if "/lock" in source or re.search(r"state:\s*'Locked'", source):
        found.append("the template must never lock a policy (irreversible; printed by postprovision)")
    return found


def test_recordings_are_worm_with_versioning(templates: dict[str, Bicep]) -> None:
    assert worm_violations(templates["modules/recordings-storage.bicep"]) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("isVersioningEnabled: true", "isVersioningEnabled: false"),
        ("immutableStorageWithVersioning: { enabled: true }", "immutableStorageWithVersioning: { enabled: false }"),
        ("immutabilityPeriodSinceCreationInDays: defaultRetentionDays", "immutabilityPeriodSinceCreationInDays: 1"),
        ("allowProtectedAppendWrites: false", "allowProtectedAppendWrites: false\n    state: 'Locked'"),
    ],
)
def test_worm_check_catches_a_weakened_recordings_account(templates: dict[str, Bicep], old: str, new: str) -> None:
    assert worm_violations(templates["modules/recordings-storage.bicep"].replaced(old, new)) != []


def lifecycle_violations(template: Bicep) -> list[str]:
    """Lifecycle rules tier evidence and access copies; they never delete a current blob."""
    found = []
    rules = value(_one(template, "Microsoft.Storage/storageAccounts/managementPolicies").get("properties.policy.rules"))
    assert isinstance(rules, list)
    actions = [rule["definition"]["actions"] for rule in rules]
    for action in actions:
        base = action.get("baseBlob")
        if isinstance(base, dict) and "delete" in base:
            found.append("a lifecycle rule deletes current blobs (retention deletions are explicit sweeps)")
    names = {rule["name"] for rule in rules}
    if not {"evidence-to-cold", "access-copies-cool"} <= names:
        found.append(f"missing tiering rules: {names}")
    return found


def test_lifecycle_tiers_and_never_silently_deletes_evidence(templates: dict[str, Bicep]) -> None:
    assert lifecycle_violations(templates["modules/recordings-storage.bicep"]) == []


def test_lifecycle_check_catches_a_delete_rule(templates: dict[str, Bicep]) -> None:
    storage = templates["modules/recordings-storage.bicep"].replaced(
        "actions: { baseBlob: { tierToCool: { daysAfterCreationGreaterThan: 0 } } }",
        "actions: { baseBlob: { delete: { daysAfterCreationGreaterThan: 0 } } }",
    )
    assert lifecycle_violations(storage) != []


def _expanded(node_value: object, template: Bicep) -> object:
    """An interpolated string with each `${variable}` replaced by the variable's literal value."""
    if not isinstance(node_value, Expr):
        return node_value
    variables = {name: value(node) for name, node in template.variables().items()}
    return re.sub(r"\$\{(\w+)\}", lambda m: str(variables.get(m.group(1), m.group(0))), node_value.text.strip("'"))


def capture_version_violations(template: Bicep) -> list[str]:
    """The previous versions the lifecycle's clean-up leaves in `captures` (versioning is account-wide) are deleted
    after a parameter's days; current capture blobs are never touched by a rule (an unsealed capture is the only
    copy, a salvaged generation is kept on purpose)."""
    rules = value(_one(template, "Microsoft.Storage/storageAccounts/managementPolicies").get("properties.policy.rules"))
    assert isinstance(rules, list)
    found = []
    on_captures = [
        rule
        for rule in rules
        if "captures/" in [_expanded(p, template) for p in rule["definition"]["filters"].get("prefixMatch", [])]
    ]
    if len(on_captures) != 1:
        return [f"expected one lifecycle rule on captures/, found {len(on_captures)}"]
    rule = on_captures[0]
    if rule.get("enabled") is not True or rule["definition"]["filters"].get("blobTypes") != ["blockBlob"]:
        found.append("the captures rule must be enabled, on block blobs")
    if rule["definition"]["actions"] != {
        "version": {"delete": {"daysAfterCreationGreaterThan": Expr("captureVersionsDeleteAfterDays")}}
    }:
        found.append(f"the captures rule must only delete previous versions: {rule['definition']['actions']}")
    param = template.params().get("captureVersionsDeleteAfterDays")
    days = value(param.default) if param is not None else None
    if not isinstance(days, int) or not 1 <= days <= 30:
        found.append(f"captureVersionsDeleteAfterDays defaults to {days}: a margin of days, not a retention period")
    return found


def test_previous_capture_versions_are_deleted_and_current_ones_never(templates: dict[str, Bicep]) -> None:
    assert capture_version_violations(templates["modules/recordings-storage.bicep"]) == []


def test_the_main_template_passes_the_capture_version_days(main: Bicep) -> None:
    param = main.params()["captureVersionsDeleteAfterDays"]
    assert value(param.default) == 7
    assert "captureVersionsDeleteAfterDays: captureVersionsDeleteAfterDays" in main.source.decode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("prefixMatch: ['${capturesContainerName}/']", "prefixMatch: ['${recordingsContainerName}/captures/']"),
        (
            "actions: { version: { delete: { daysAfterCreationGreaterThan: captureVersionsDeleteAfterDays } } }",
            "actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: captureVersionsDeleteAfterDays } } }",
        ),
        (
            "actions: { version: { delete: { daysAfterCreationGreaterThan: captureVersionsDeleteAfterDays } } }",
            "actions: { version: { delete: { daysAfterCreationGreaterThan: captureVersionsDeleteAfterDays } }, "
            "baseBlob: { delete: { daysAfterModificationGreaterThan: 30 } } }",
        ),
        (
            "actions: { version: { delete: { daysAfterCreationGreaterThan: captureVersionsDeleteAfterDays } } }",
            "actions: { version: { delete: { daysAfterCreationGreaterThan: defaultRetentionDays + 1 } } }",
        ),
        ("param captureVersionsDeleteAfterDays int = 7", "param captureVersionsDeleteAfterDays int = 3650"),
        (
            "name: 'capture-versions-after-seal'\n          enabled: true",
            "name: 'capture-versions-after-seal'\n          enabled: false",
        ),
    ],
)
def test_capture_version_check_catches_a_missing_or_wider_rule(templates: dict[str, Bicep], old: str, new: str) -> None:
    assert capture_version_violations(templates["modules/recordings-storage.bicep"].replaced(old, new)) != []


def vault_violations(template: Bicep) -> list[str]:
    vault = _one(template, policy.VAULT)
    found = []
    for path in ("enableRbacAuthorization", "enablePurgeProtection", "enableSoftDelete"):
        if value(vault.get(f"properties.{path}")) is not True:
            found.append(f"Key Vault {path} must be true")
    names = {value(r.get("name")) for r in template.resources_of("Microsoft.KeyVault/vaults/secrets")}
    if names != {"graph-client-secret", "graph-client-state"}:
        found.append(f"Key Vault secrets are {names}")
    keys = template.resources_of("Microsoft.KeyVault/vaults/keys")
    if [value(k.get("name")) for k in keys] != ["ledger-signing"]:
        found.append("Key Vault needs the ledger-signing key")
    return found


def test_key_vault_is_rbac_with_purge_protection_and_holds_the_credentials(templates: dict[str, Bicep]) -> None:
    assert vault_violations(templates["modules/keyvault.bicep"]) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("enableRbacAuthorization: true", "enableRbacAuthorization: false"),
        ("enablePurgeProtection: true", "enablePurgeProtection: false"),
        ("name: 'ledger-signing'", "name: 'other-key'"),
    ],
)
def test_vault_check_catches_access_policies_or_no_purge_protection(
    templates: dict[str, Bicep], old: str, new: str
) -> None:
    assert vault_violations(templates["modules/keyvault.bicep"].replaced(old, new)) != []


# Settings the Flex plan rejects or ignores: the runtime and the package live in functionAppConfig.
FLEX_DEPRECATED_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "AzureWebJobsStorage",  # the key-based connection string
}


def function_app_violations(template: Bicep) -> list[str]:
    site = _one(template, policy.SITE)
    config = value(site.get("properties.functionAppConfig"))
    assert isinstance(config, dict)
    found = []
    if config.get("runtime") != {"name": "python", "version": "3.11"}:
        found.append(f"runtime must be python 3.11, is {config.get('runtime')}")
    always_ready = {entry["name"] for entry in config["scaleAndConcurrency"].get("alwaysReady", [])}
    if not {"http", "durable"} <= always_ready:
        found.append(f"always-ready groups are {always_ready}, need http and durable")
    if config["deployment"]["storage"]["authentication"]["type"] != "UserAssignedIdentity":
        found.append("the deployment package must be read with the managed identity")
    plan = _one(template, "Microsoft.Web/serverfarms")
    if value(plan.get("sku")) != {"name": "FC1", "tier": "FlexConsumption"}:
        found.append("the plan must be Flex Consumption (FC1)")
    settings = value(template.variables()["appSettings"])
    assert isinstance(settings, dict)
    found += [f"deprecated or key-based setting {name}" for name in FLEX_DEPRECATED_SETTINGS & set(settings)]
    if value(site.get("tags")) is None or "azd-service-name" not in template.source.decode():
        found.append("the site must carry the azd-service-name tag")
    return found


def test_function_app_is_flex_python_311_with_always_ready_http_and_durable(templates: dict[str, Bicep]) -> None:
    assert function_app_violations(templates["modules/function-app.bicep"]) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("runtime: { name: 'python', version: '3.11' }", "runtime: { name: 'python', version: '3.12' }"),
        ("          { name: 'durable', instanceCount: alwaysReadyDurableInstances }\n", ""),
        ("  VERBATIM_LOG_LEVEL: logLevel\n", "  VERBATIM_LOG_LEVEL: logLevel\n  FUNCTIONS_WORKER_RUNTIME: 'python'\n"),
        ("sku: { name: 'FC1', tier: 'FlexConsumption' }", "sku: { name: 'EP1', tier: 'ElasticPremium' }"),
    ],
)
def test_function_app_check_catches_drift(templates: dict[str, Bicep], old: str, new: str) -> None:
    assert function_app_violations(templates["modules/function-app.bicep"].replaced(old, new)) != []


def scale_set_violations(template: Bicep) -> list[str]:
    scale_set = _one(template, policy.SCALE_SET)
    get = scale_set.get
    found = []
    if value(get("properties.virtualMachineProfile.priority")) != "Regular":
        found.append("recorders must run on regular (not Spot) capacity")
    if value(get("properties.upgradePolicy.mode")) != "Manual":
        found.append("upgrades must be manual (calls are pinned to their VM)")
    windows = "properties.virtualMachineProfile.osProfile.windowsConfiguration"
    if value(get(f"{windows}.enableAutomaticUpdates")) is not False:
        found.append("Windows automatic updates must be off")
    if value(get("properties.overprovision")) is not False:
        found.append("overprovisioning must be off")
    if value(get("properties.automaticRepairsPolicy.enabled")) is not False:
        found.append("automatic repairs must be off (they would replace an instance holding calls)")
    ip_configuration = value(get("properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations"))
    if "publicIPAddressConfiguration" not in str(ip_configuration):
        found.append("instances need instance-level public IPs")
    if value(get("properties.virtualMachineProfile.storageProfile.imageReference.offer")) != "WindowsServer":
        found.append("the media library needs Windows Server")
    extensions = policy.scale_set_extensions(scale_set)
    for needed in ("KeyVaultForWindows", "CustomScriptExtension", "ApplicationHealthWindows"):
        if needed not in extensions:
            found.append(f"missing the {needed} extension")
    health = extensions.get("ApplicationHealthWindows", {}).get("properties", {})
    if isinstance(health, dict) and health.get("settings", {}).get("requestPath") != "/health":
        found.append("the Application Health extension must probe /health")
    install = extensions.get("CustomScriptExtension", {}).get("properties", {})
    if isinstance(install, dict) and "commandToExecute" not in str(install.get("protectedSettings")):
        found.append("the install command belongs in protectedSettings")
    if template.resources_of("Microsoft.Insights/autoscalesettings") == []:
        found.append("the recorder scale set needs autoscale")
    return found


def test_recorder_scale_set_follows_the_media_bot_rules(templates: dict[str, Bicep]) -> None:
    assert scale_set_violations(templates["modules/recorder.bicep"]) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("priority: 'Regular'", "priority: 'Spot'"),
        ("upgradePolicy: { mode: 'Manual' }", "upgradePolicy: { mode: 'Automatic' }"),
        ("enableAutomaticUpdates: false", "enableAutomaticUpdates: true"),
        ("overprovision: false", "overprovision: true"),
        ("type: 'ApplicationHealthWindows'", "type: 'SomethingElse'"),
        ("requestPath: '/health'", "requestPath: '/'"),
    ],
)
def test_scale_set_check_catches_drift(templates: dict[str, Bicep], old: str, new: str) -> None:
    assert scale_set_violations(templates["modules/recorder.bicep"].replaced(old, new)) != []


def test_recorder_installs_from_the_recorder_vm_deploy_script(templates: dict[str, Bicep]) -> None:
    recorder = templates["modules/recorder.bicep"]
    config = value(recorder.variables()["bootstrapConfig"])
    assert isinstance(config, dict)
    assert config["installScript"] == "recorder_vm\\deploy\\install.ps1"
    loaded = [text(call) for call in recorder.calls("loadTextContent")]
    assert loaded == ["loadTextContent('../scripts/recorder-bootstrap.ps1')"], "the bootstrap ships in userData"


# The port plan (docs/deploy.md): the NSG opens exactly these, from these sources (the Microsoft 365
# ranges published for Teams, as parameters; operators may also reach the load-balanced /health).
EXPECTED_INBOUND = {
    ("Tcp", "ports.signalling", "concat(teamsSignallingPrefixes, operatorPrefixes)"),
    ("Tcp", "ports.notification", "teamsSignallingPrefixes"),
    ("Tcp", "ports.media", "teamsSignallingPrefixes"),
    ("Udp", "*", "teamsMediaPrefixes"),
}


def nsg_violations(template: Bicep) -> list[str]:
    nsg = _one(template, "Microsoft.Network/networkSecurityGroups")
    rules = value(nsg.get("properties.securityRules"))
    assert isinstance(rules, list)
    allowed = set()
    for rule in rules:
        p = rule["properties"]
        if p["direction"] == "Inbound" and p["access"] == "Allow":
            port = p["destinationPortRange"]
            port_text = port.text.removeprefix("string(").removesuffix(")") if isinstance(port, Expr) else port
            source = p.get("sourceAddressPrefix") or p.get("sourceAddressPrefixes")
            source_text = source.text if isinstance(source, Expr) else source
            allowed.add((p["protocol"], port_text, source_text))
    found = [f"unexpected inbound rule {rule}" for rule in allowed - EXPECTED_INBOUND]
    found += [f"missing inbound rule {rule}" for rule in EXPECTED_INBOUND - allowed]
    return found


def test_nsg_opens_only_the_recorder_port_plan(templates: dict[str, Bicep]) -> None:
    assert nsg_violations(templates["modules/network.bicep"]) == []


def test_nsg_check_catches_an_open_rdp_port(templates: dict[str, Bicep]) -> None:
    network = templates["modules/network.bicep"].replaced(
        "destinationPortRange: string(ports.media)", "destinationPortRange: '3389'"
    )
    assert nsg_violations(network) != []


def test_port_plan_matches_the_load_balancer_rules(main: Bicep, templates: dict[str, Bicep]) -> None:
    ports = value(main.variables()["recorderPorts"])
    assert isinstance(ports, dict)
    assert (ports["signalling"], ports["notification"], ports["media"]) == (9442, 9441, 8445)
    assert (ports["notificationPublicStart"], ports["mediaPublicStart"]) == (10100, 20000)
    balancer = _one(templates["modules/network.bicep"], "Microsoft.Network/loadBalancers")
    rules = value(balancer.get("properties.inboundNatRules"))
    assert isinstance(rules, list)
    names = templates["modules/network.bicep"].variables()
    backends = {value(names[rule["name"].text]): rule["properties"]["backendPort"] for rule in rules}
    assert backends == {"notification": Expr("ports.notification"), "media-control": Expr("ports.media")}
    # NAT rules v2 (port range + backend pool), not v1 pools.
    assert all("frontendPortRangeStart" in rule["properties"] for rule in rules)
    assert balancer.get("properties.inboundNatPools") is None


# Built-in roles the templates may assign, by id (names as in Azure's built-in role list).
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": "Storage Queue Data Message Sender",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": "Key Vault Certificate User",
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
    # Storage Blob Delegator: only Get User Delegation Key (user-delegation SAS links of export packages).
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
    # Cosmos DB Built-in Data Contributor (data plane, sqlRoleDefinitions).
    "00000000-0000-0000-0000-000000000002": "Cosmos DB Built-in Data Contributor",
}
# Roles that would make the app or the recorder an administrator of what it should only use.
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
}

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def role_violations(template: Bicep) -> list[str]:
    found = []
    source = template.source.decode()
    for guid in set(_GUID.findall(source)):
        if guid in FORBIDDEN_ROLES:
            found.append(f"assigns {FORBIDDEN_ROLES[guid]} ({guid})")
        elif guid not in ALLOWED_ROLES:
            found.append(f"unknown role id {guid}")
        elif "// " + ALLOWED_ROLES[guid].split(" (")[0] not in source:
            found.append(f"role id {guid} is not named in a comment ({ALLOWED_ROLES[guid]})")
    return found


def test_roles_are_least_privilege_and_named(templates: dict[str, Bicep]) -> None:
    violations = [f"{name}: {v}" for name, t in templates.items() for v in role_violations(t)]
    assert violations == []


def test_role_check_catches_contributor_and_unnamed_roles(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"]
    owner = rbac.replaced("'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'", "'b24988ac-6180-42a0-ab88-20f7382dd24c'")
    assert any("Contributor" in v for v in role_violations(owner))
    unnamed = rbac.replaced("// Key Vault Crypto User:", "// signing:")
    assert any("not named" in v for v in role_violations(unnamed))


SUPER_USER_DATA_ACTIONS = (
    "blobs/runAsSuperUser/action",
    "blobs/permanentDelete/action",
    "blobs/move/action",
    "blobs/manageOwnership/action",
    "blobs/modifyPermissions/action",
    "blobs/*",
)


def evidence_role_violations(rbac: str) -> list[str]:
    """What makes the Function App's role on `recordings` more than sealing needs (issue 13, finding 3)."""
    found = []
    start = rbac.index("resource evidenceKeeper ")
    role = rbac[start : rbac.index("\n}\n", start)]
    found += [f"the evidence role grants {action}" for action in SUPER_USER_DATA_ACTIONS if action in role]
    if "containers/delete" in role:
        found.append("the evidence role may delete the container")
    assignment = rbac[rbac.index("resource fnRecordings ") :]
    assignment = assignment[: assignment.index("\n}\n")]
    if "evidenceKeeperRoleId" not in assignment:
        found.append("the Function App's role on recordings is not the evidence role")
    for name in re.findall(
        r"resource (\w+) [^\n]+\n(?:.*\n){0,3}?.*recordings\b.*\n(?:.*\n){0,2}?.*storageBlobDataOwner", rbac
    ):
        found.append(f"{name} assigns Storage Blob Data Owner on recordings")
    return found


def test_the_function_apps_evidence_role_has_no_super_user_blob_action(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"].source.decode()
    assert evidence_role_violations(rbac) == []
    # Set Blob Immutability Policy needs immutableStorage/runAsSuperUser (Microsoft's permissions table): kept, and
    # only the Function App's role has it; the recorder writes captures only, as a Data Contributor there.
    assert rbac.count("immutableStorage/runAsSuperUser/action'") == 1


def test_the_evidence_role_check_catches_super_user_actions_and_owner(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"].source.decode()
    superuser = rbac.replace(
        "          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'\n",
        "          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/runAsSuperUser/action'\n",
        1,
    )
    assert any("runAsSuperUser" in v for v in evidence_role_violations(superuser))
    owner = rbac.replace("    roleDefinitionId: evidenceKeeperRoleId\n", "    roleDefinitionId: ownerRoleId\n", 1)
    assert any("not the evidence role" in v for v in evidence_role_violations(owner))


def recorder_blob_scopes(rbac_source: str) -> list[str]:
    """The scopes of every blob data role the recorder's identity is given in rbac.bicep."""
    blocks = re.split(r"\n(?=resource \w+ )", rbac_source)
    scopes = []
    for block in blocks:
        if "principalId: recorderPrincipalId" not in block or "roles.storageBlob" not in block:
            continue
        scope = re.search(r"\n\s*scope: ([\w:]+)", block)
        scopes.append(scope.group(1) if scope else "?")
    return scopes


def test_the_recorder_may_write_only_the_captures_container(templates: dict[str, Bicep]) -> None:
    # Issue 14 / issue 13 finding 3: the recorder stages captures in `captures`; the Function App seals a
    # verified copy into `recordings`, which the recorder's identity cannot write (or read).
    rbac = templates["modules/rbac.bicep"].source.decode()
    scopes = recorder_blob_scopes(rbac)
    assert "recordingsStorage::blobService::captures" in scopes
    assert all(
        scope in ("recordingsStorage::blobService::captures", "runtimeStorage::blobService::recorderPackages")
        for scope in scopes
    ), scopes
    assert "resource fnCaptures " in rbac  # the lifecycle reads, commits (salvage), breaks leases and deletes there


def test_the_captures_check_catches_a_recorder_role_on_the_evidence(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"].source.decode()
    widened = rbac.replace(
        "scope: recordingsStorage::blobService::captures\n  properties: {\n    roleDefinitionId: "
        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "roles.storageBlobDataContributor)\n    principalId: recorderPrincipalId",
        "scope: recordingsStorage::blobService::recordings\n  properties: {\n    roleDefinitionId: "
        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "roles.storageBlobDataContributor)\n    principalId: recorderPrincipalId",
    )
    assert widened != rbac
    assert "recordingsStorage::blobService::recordings" in recorder_blob_scopes(widened)


def capture_role_violations(rbac: str) -> list[str]:
    """What keeps the Function App's role on `captures` from doing what retention needs there (delete every version
    of a deleted recording's captures: versioning is on for the account), or makes it more than that."""
    found = []
    assignment = rbac[rbac.index("resource fnCaptures ") :]
    assignment = assignment[: assignment.index("\n}\n")]
    if "roleDefinitionId: captureKeeperRoleId" not in assignment or "functionPrincipalId" not in assignment:
        found.append("the Function App's role on captures is not the capture role")
    start = rbac.index("resource captureKeeper ")
    role = rbac[start : rbac.index("\n}\n", start)]
    for action in ("blobs/read", "blobs/write", "blobs/delete", "blobs/deleteBlobVersion/action"):
        if f"containers/{action}'" not in role:
            found.append(f"the capture role lacks {action}")
    found += [f"the capture role grants {action}" for action in SUPER_USER_DATA_ACTIONS if action in role]
    found += [
        f"the capture role grants {a}"
        for a in ("containers/write", "containers/delete", "immutableStorage")
        if a in role
    ]
    return found


def test_the_function_app_may_delete_every_version_of_a_capture_and_nothing_more(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"].source.decode()
    assert capture_role_violations(rbac) == []
    without = rbac.replace(
        "          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action'\n", "", 2
    )
    assert "the capture role lacks blobs/deleteBlobVersion/action" in capture_role_violations(without)
    contributor = rbac.replace(
        "    roleDefinitionId: captureKeeperRoleId\n",
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "roles.storageBlobDataContributor)\n",
        1,
    )
    assert "the Function App's role on captures is not the capture role" in capture_role_violations(contributor)
