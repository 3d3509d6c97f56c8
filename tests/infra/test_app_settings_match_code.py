"""The app settings the Bicep gives the Function App and the recorder are the ones the code reads.

Two settings models, two cross-checks: `appSettings` of modules/function-app.bicep against
verbatim.platform.settings, and `recorderSettings` of modules/recorder.bicep against recorder_vm.settings.
Differences are allowed only through the commented allow-lists below.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, TypeAdapter

from recorder_vm import settings as recorder_settings
from tests.infra.bicep_tree import BICEP_FUNCTION_APP, BICEP_RECORDER, Bicep, Expr, value
from verbatim.platform import settings as app_settings

# --- Function App (verbatim.platform.settings) -----------------------------------------------------------

# Set by the Bicep for the platform; verbatim.platform.settings does not (and need not) read them.
APP_PLATFORM_SETTINGS = {
    # The Functions host sends its telemetry (and our JSON logs) to Application Insights ...
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    # ... authenticating with the managed identity: the component has local (key) auth disabled.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # The host and its bindings reach AzureWebJobsStorage with the managed identity.
    "AzureWebJobsStorage__credential",
}

# Read by verbatim.platform.settings, never set in Azure: they exist for the emulators and the devstack.
APP_LOCAL_ONLY = {
    # Connection strings (Azurite); Azure uses the identity-based <connection>__* settings.
    "AzureWebJobsStorage",
    "RECORDINGS_STORAGE",
    # The Cosmos emulator's key; Cosmos local auth is disabled in Azure.
    "COSMOS_KEY",
    # CA bundles of locally generated TLS certificates (Cosmos emulator, Graph simulator, OpenID provider).
    "COSMOS_CA_CERT",
    "GRAPH_CA_CERT",
    "AUTH_CA_CERT",
    "RECORDER_CONTROL_CA_CERT",  # the local recorder's TLS CA; in Azure its certificate is publicly trusted
    # A local PEM signing key; Azure signs with the Key Vault key (LEDGER_SIGNING_KEY_VAULT_KEY_ID).
    "LEDGER_SIGNING_KEY_FILE",
    # True only against Azurite, which cannot enforce WORM; Azure does.
    "RECORDINGS_STORAGE_IS_EMULATOR",
    # The Teams/Graph simulator's URL for `verbatim policy plan/apply --target sim`.
    "POLICY_SIMULATOR_URL",
    # The devstack's chat encryption key pair as a file; Azure has it as a Key Vault reference (CHAT_ENCRYPTION_PEM).
    "CHAT_ENCRYPTION_PEM_FILE",
}

# Read by verbatim.platform.settings and deliberately not set by the Bicep: the default is right in Azure, or
# an operator sets the value when the situation arises.
APP_LEFT_TO_DEFAULT_OR_OPERATOR = {
    # The installed package's own version (the default is verbatim.__version__).
    "VERBATIM_VERSION",
    # Only while rotating clientState: the previous value, accepted until subscriptions are renewed.
    "GRAPH_CLIENT_STATE_PREVIOUS",
    # Emergency numbers beyond 112/911/999, specific to a tenant's countries.
    "PSTN_EMERGENCY_NUMBERS",
    # Fingerprints of earlier ledger signing keys, after a key rotation.
    "LEDGER_TRUSTED_KEY_FINGERPRINTS",
    # Ledger v2: log keys of earlier rotations (C2SP vkeys), and the customer's RFC 3161 time-stamping authority
    # (URL and root certificates) when they choose one; anchoring without time stamps is the default.
    "LEDGER_TRUSTED_VKEYS",
    "LEDGER_TSA_URL",
    "LEDGER_TSA_CA_CERTS",
    # Witnesses that cosign each checkpoint (docs/ledger-v2.md#witness-cosignatures): run by someone else, so
    # the operator names them once they have agreed with one; none by default.
    "LEDGER_WITNESSES",
    # Extra Entra groups whose members must be recorded, beyond the published desired state.
    "POLICY_MUST_RECORD_GROUPS",
    # Tenants whose API tokens are accepted, beyond GRAPH_TENANT_ID (the Bicep's single-tenant issuer pins it).
    "AUTH_TENANT_IDS",
    # Retention (issue 8): the firm's own classes and group mapping (the default class is built in), and the
    # sweep's schedule and bounds, whose defaults (daily at 02:00 UTC) are right unless an operator says otherwise.
    "RETENTION_CLASSES",
    "RETENTION_DEFAULT_LEGAL_BASIS",
    "RETENTION_GROUP_CLASSES",
    "RETENTION_SWEEP_SCHEDULE",
    "RETENTION_SWEEP_BATCH_SIZE",
    "RETENTION_SWEEP_PAGE_SIZE",
    "RETENTION_SWEEP_MAX_DELETIONS",
    "RETENTION_SWEEP_LEASE_SECONDS",
    # Chat capture: the previous encryption key pair, only while rotating it (docs/chat.md); the Microsoft
    # identity platform's published keys for validation tokens (the default; the devstack points at its own);
    # the Teams APIs' licensing model, which Microsoft stopped metering in August 2025; how long a chat's
    # membership is cached before the policy-user gate reads it again.
    "CHAT_ENCRYPTION_PEM_PREVIOUS",
    "CHAT_VALIDATION_JWKS_URL",
    "CHAT_PAYMENT_MODEL",
    "CHAT_MEMBERSHIP_TTL_MINUTES",
    # Exports: where a package splits into parts; the defaults are Azure's own limit (50,000 blocks per blob) and
    # tests lower them to force many parts from tiny data.
    "EXPORT_PART_BLOCKS",
    "EXPORT_PART_ITEMS",
}

# --- recorder scale set (recorder_vm.settings) --------------------------------------------------

RECORDER_PLATFORM_SETTINGS: set[str] = set()

RECORDER_LOCAL_ONLY = {
    # Connection strings (Azurite); Azure uses the identity-based settings.
    "AzureWebJobsStorage",
    "RECORDINGS_STORAGE",
    # CA bundles of the local Graph simulator and its OpenID endpoint.
    "GRAPH_CA_CERT",
    "RECORDER_PLATFORM_CA_CERT",
}

RECORDER_LEFT_TO_DEFAULT_OR_OPERATOR = {
    "VERBATIM_VERSION",  # the installed package's own version
    "RECORDER_ARM_ENDPOINT",  # https://management.azure.com (other clouds and tests only)
    "RECORDER_SCALE_IN_RELEASE_SECONDS",  # how long after the last call scale-in protection is released
    "RECORDER_INSTANCE_ID",  # the VM's host name
    "RECORDER_SPILL_DIR",  # <RECORDER_STATE_DIR>\spill
    "RECORDER_CALLBACK_BASE_URL",  # built from RECORDER_SERVICE_FQDN and RECORDER_CALLBACK_PUBLIC_PORT
    "RECORDER_TENANT_IDS",  # more tenants than GRAPH_TENANT_ID, for a recorder that serves several
    # The recorder never touches the sealed evidence: it writes CAPTURES_CONTAINER only (rbac.bicep).
    "RECORDINGS_CONTAINER",
    "AUTH_CA_CERT",  # the tenant's OpenID endpoint is Entra's, under a public CA
    # From the published desired state (`verbatim policy capture-setting FILE`); unset, each policy keeps what the
    # video settings receive, which the Bicep turns off (docs/video.md).
    "RECORDER_CAPTURE_POLICIES",
}

# Per instance, so not in the scale-set model: the bootstrap (infra/scripts/recorder-bootstrap.ps1) adds
# them from the load balancer's NAT port mapping (tests/infra/test_recorder_bootstrap.py) ...
RECORDER_SET_BY_BOOTSTRAP = {"RECORDER_CALLBACK_PUBLIC_PORT", "RECORDER_MEDIA_PUBLIC_PORT"}
# ... and recorder_vm/deploy/install.ps1 from the certificate the Key Vault extension installed and the
# media library it installs.
RECORDER_SET_BY_INSTALLER = {
    "RECORDER_MEDIA_PUBLIC_IP",  # IMDS load balancer metadata (recorder_vm.deploy.instance_endpoints)
    "RECORDER_CERTIFICATE_THUMBPRINT",
    "RECORDER_TLS_CERT_FILE",
    "RECORDER_TLS_KEY_FILE",
    "RECORDER_MEDIA_LIBRARY_DIR",
    "RECORDER_ADMIN_PORT",  # the loopback admin listener used by drain.ps1 and the Windows service
    "RECORDER_VM_RESOURCE_ID",  # from the instance facts (IMDS), for scale-in protection
}

# Literals that differ from the model's defaults on purpose (the defaults suit the devstack).
RECORDER_DEPLOYMENT_VALUES = {
    "RECORDER_STATE_DIR",  # C:\verbatim\state instead of .devstack/recorder
    "RECORDER_LISTEN_HOST",  # all interfaces: traffic arrives on the NIC from the load balancer
    "RECORDER_MEDIA_HOST",
    "RECORDER_MEDIA_PLATFORM",  # Microsoft's media library, not the simulator's
    "RECORDER_SCHEDULED_EVENTS_ENABLED",  # terminate notifications exist only in Azure
    "RECORDER_DRAIN_ACCEPT_SECONDS",  # the Azure load balancer's probe window; locally the balancer probes per call
}


class Side:
    """One compute tier: its Bicep settings object, its settings model and its allow-lists."""

    def __init__(
        self, template: str, variable: str, model: type[BaseModel], platform: set[str], not_set: set[str]
    ) -> None:
        self.template, self.variable, self.model = template, variable, model
        self.platform, self.not_set = platform, not_set

    def code_names(self) -> set[str]:
        names: set[str] = set()
        for field in self.model.model_fields.values():
            names.update(str(choice) for choice in getattr(field.validation_alias, "choices", ()))
        return names

    def bicep(self, templates: dict[str, Bicep]) -> dict[str, object]:
        return bicep_settings(templates[self.template], self.variable)

    def mismatch(self, set_by_bicep: set[str]) -> tuple[set[str], set[str]]:
        """(set but never read, read but never set), after the allow-lists."""
        code = self.code_names()
        return set_by_bicep - code - self.platform, code - self.not_set - set_by_bicep


FUNCTION_APP = Side(
    BICEP_FUNCTION_APP,
    "appSettings",
    app_settings.Settings,
    APP_PLATFORM_SETTINGS,
    APP_LOCAL_ONLY | APP_LEFT_TO_DEFAULT_OR_OPERATOR,
)
RECORDER = Side(
    BICEP_RECORDER,
    "recorderSettings",
    recorder_settings.RecorderSettings,
    RECORDER_PLATFORM_SETTINGS,
    RECORDER_LOCAL_ONLY | RECORDER_LEFT_TO_DEFAULT_OR_OPERATOR | RECORDER_SET_BY_BOOTSTRAP | RECORDER_SET_BY_INSTALLER,
)
SIDES = pytest.mark.parametrize("side", [FUNCTION_APP, RECORDER], ids=["function-app", "recorder"])


def bicep_settings(template: Bicep, variable: str) -> dict[str, object]:
    settings = value(template.variables()[variable])
    assert isinstance(settings, dict), f"{variable} must be an object literal"
    return settings


def test_the_models_are_the_ones_the_code_uses() -> None:
    assert FUNCTION_APP.code_names() == app_settings.app_setting_names()
    assert RECORDER.code_names() == recorder_settings.app_setting_names()


@SIDES
def test_bicep_sets_exactly_the_settings_the_code_reads(side: Side, templates: dict[str, Bicep]) -> None:
    assert side.mismatch(set(side.bicep(templates))) == (set(), set())


def test_the_cross_check_catches_an_unknown_and_a_forgotten_setting(templates: dict[str, Bicep]) -> None:
    app = templates[BICEP_FUNCTION_APP]
    extra = app.replaced("  VERBATIM_LOG_LEVEL: logLevel\n", "  VERBATIM_LOG_LEVEL: logLevel\n  VERBATIM_TYPO: 'x'\n")
    forgot = app.replaced("  COSMOS_ENDPOINT: cosmosEndpoint\n", "")
    baseline_unexpected, baseline_missing = FUNCTION_APP.mismatch(set(FUNCTION_APP.bicep(templates)))
    unexpected, _ = FUNCTION_APP.mismatch(set(bicep_settings(extra, "appSettings")))
    _, missing = FUNCTION_APP.mismatch(set(bicep_settings(forgot, "appSettings")))
    assert unexpected - baseline_unexpected == {"VERBATIM_TYPO"}
    assert missing - baseline_missing == {"COSMOS_ENDPOINT"}
    recorder = templates[BICEP_RECORDER].replaced("  RECORDER_MEDIA_PLATFORM: 'windows'\n", "")
    assert "RECORDER_MEDIA_PLATFORM" in RECORDER.mismatch(set(bicep_settings(recorder, "recorderSettings")))[1]


@SIDES
def test_allow_lists_name_real_settings_and_are_never_set_by_the_bicep(side: Side, templates: dict[str, Bicep]) -> None:
    code = side.code_names()
    assert code >= side.not_set, f"stale allow-list entries: {side.not_set - code}"
    assert not side.platform & code
    assert not set(side.bicep(templates)) & side.not_set


def _typed_default(model: type[BaseModel], name: str) -> tuple[bool, Any, Any]:
    """(has a default, the default, a validator for app-setting strings) of the field read from `name`."""
    for field in model.model_fields.values():
        if name in getattr(field.validation_alias, "choices", ()):
            adapter = TypeAdapter(field.annotation)
            has_default = field.default_factory is None and field.default is not None
            return has_default, field.default, adapter
    raise KeyError(name)


@SIDES
def test_literal_values_equal_the_model_defaults(side: Side, templates: dict[str, Bicep]) -> None:
    # A literal restates a default so the deployed configuration is explicit; it must not drift from
    # the code. Deployment-specific values are parameters (expressions) or listed above.
    drift = {}
    for name, literal in side.bicep(templates).items():
        if not isinstance(literal, str) or name in RECORDER_DEPLOYMENT_VALUES or name not in side.code_names():
            continue
        has_default, default, adapter = _typed_default(side.model, name)
        if has_default and adapter.validate_python(literal) != default:
            drift[name] = (literal, default)
    assert drift == {}


def test_the_drift_check_compares_typed_values(templates: dict[str, Bicep]) -> None:
    _, default, adapter = _typed_default(recorder_settings.RecorderSettings, "RECORDER_PLATFORM_KEYS_REFRESH_SECONDS")
    assert adapter.validate_python("7200") == default
    assert adapter.validate_python("600") != default


def test_x_forwarded_for_is_believed_one_hop_from_the_right_behind_the_app_service_front_end(
    templates: dict[str, Bicep],
) -> None:
    # Issue 13, finding 10: the Functions front end is one proxy (where App Service terminates TLS, MicrosoftDocs
    # azure-docs articles/app-service/configure-language-python.md, "Detect HTTPS session"); the code's default
    # (0, the header ignored) is for anywhere no proxy of ours is in front.
    app = templates[BICEP_FUNCTION_APP]
    assert FUNCTION_APP.bicep(templates)["TRUSTED_FORWARDED_HOPS"] == Expr("string(trustedForwardedHops)")
    assert value(app.variables()["trustedForwardedHops"]) == 1


def test_recorder_deployment_values_are_what_azure_needs(templates: dict[str, Bicep]) -> None:
    settings = RECORDER.bicep(templates)
    assert settings["RECORDER_MEDIA_PLATFORM"] == "windows"
    assert settings["RECORDER_SCHEDULED_EVENTS_ENABLED"] == "true"
    assert settings["RECORDER_LISTEN_PORT"] == Expr("string(ports.signalling)")
    assert settings["RECORDER_CALLBACK_LISTEN_PORT"] == Expr("string(ports.notification)")
    assert settings["RECORDER_MEDIA_PORT"] == Expr("string(ports.media)")


@SIDES
def test_secrets_are_key_vault_references(side: Side, templates: dict[str, Bicep]) -> None:
    settings = side.bicep(templates)
    for field in side.model.model_fields.values():
        name = next(iter(getattr(field.validation_alias, "choices", ())), None)
        is_secret = SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
        if is_secret and name in settings:
            literal = settings[name]
            assert isinstance(literal, Expr) and literal.text.startswith("'@Microsoft.KeyVault(SecretUri="), name
