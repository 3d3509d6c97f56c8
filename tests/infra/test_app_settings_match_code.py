"""The app settings the Bicep gives the Function App and the recorder are the ones the code reads.

verbatim.settings is the one list of settings; this test cross-checks it against the `appSettings`
object of modules/function-app.bicep and the `recorderSettings` object of modules/recorder.bicep.
Differences are allowed only through the commented allow-lists below.
"""

from __future__ import annotations

from pydantic import SecretStr

from tests.infra.bicep_tree import Bicep, Expr, value
from tests.infra.conftest import mutated
from verbatim.settings import Settings, app_setting_names

# Set by the Bicep for the platform; verbatim.settings does not (and need not) read them.
PLATFORM_SETTINGS = {
    # The Functions host sends its telemetry (and our JSON logs) to Application Insights ...
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    # ... authenticating with the managed identity: the component has local (key) auth disabled.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # The host and its bindings reach AzureWebJobsStorage with the managed identity.
    "AzureWebJobsStorage__credential",
}

# Read by verbatim.settings, never set in Azure: they exist for the emulators and the devstack.
LOCAL_ONLY_SETTINGS = {
    # Connection strings (Azurite); Azure uses the identity-based <connection>__* settings.
    "AzureWebJobsStorage",
    "RECORDINGS_STORAGE",
    # The Cosmos emulator's key; Cosmos local auth is disabled in Azure.
    "COSMOS_KEY",
    # CA bundles of locally generated TLS certificates (Cosmos emulator, Graph simulator, OpenID provider).
    "COSMOS_CA_CERT",
    "GRAPH_CA_CERT",
    "AUTH_CA_CERT",
    # A local PEM signing key; Azure signs with the Key Vault key (LEDGER_SIGNING_KEY_VAULT_KEY_ID).
    "LEDGER_SIGNING_KEY_FILE",
    # True only against Azurite, which cannot enforce WORM; Azure does.
    "RECORDINGS_STORAGE_IS_EMULATOR",
    # The Teams/Graph simulator's URL for `verbatim policy plan/apply --target sim`.
    "POLICY_SIMULATOR_URL",
}

# Read by verbatim.settings and deliberately not set by the Bicep: the default is right in Azure,
# or an operator sets the value when the situation arises.
OPERATOR_SETTINGS = {
    # The installed package's own version (the default is verbatim.__version__).
    "VERBATIM_VERSION",
    # Only while rotating clientState: the previous value, accepted until subscriptions are renewed.
    "GRAPH_CLIENT_STATE_PREVIOUS",
    # Emergency numbers beyond 112/911/999, specific to a tenant's countries.
    "PSTN_EMERGENCY_NUMBERS",
    # Fingerprints of earlier ledger signing keys, after a key rotation.
    "LEDGER_TRUSTED_KEY_FINGERPRINTS",
    # Extra Entra groups whose members must be recorded, beyond the published desired state.
    "POLICY_MUST_RECORD_GROUPS",
}

NOT_SET_IN_AZURE = LOCAL_ONLY_SETTINGS | OPERATOR_SETTINGS


def bicep_settings(template: Bicep, variable: str) -> dict[str, object]:
    settings = value(template.variables()[variable])
    assert isinstance(settings, dict), f"{variable} must be an object literal"
    return settings


def _function_app(templates: dict[str, Bicep]) -> dict[str, object]:
    return bicep_settings(templates["modules/function-app.bicep"], "appSettings")


def _recorder(templates: dict[str, Bicep]) -> dict[str, object]:
    return bicep_settings(templates["modules/recorder.bicep"], "recorderSettings")


def mismatch(set_by_bicep: set[str], read_by_code: set[str]) -> tuple[set[str], set[str]]:
    """(set but never read, read but never set), after the allow-lists."""
    unexpected = set_by_bicep - read_by_code - PLATFORM_SETTINGS
    missing = read_by_code - NOT_SET_IN_AZURE - set_by_bicep
    return unexpected, missing


def test_bicep_sets_exactly_the_settings_the_code_reads(templates: dict[str, Bicep]) -> None:
    set_by_bicep = set(_function_app(templates)) | set(_recorder(templates))
    assert mismatch(set_by_bicep, app_setting_names()) == (set(), set())


def test_the_recorder_gets_only_settings_the_code_reads(templates: dict[str, Bicep]) -> None:
    assert set(_recorder(templates)) - app_setting_names() == set()


def test_the_cross_check_catches_an_unknown_and_a_forgotten_setting(templates: dict[str, Bicep]) -> None:
    app = templates["modules/function-app.bicep"]
    extra = mutated(app, "  VERBATIM_LOG_LEVEL: logLevel\n", "  VERBATIM_LOG_LEVEL: logLevel\n  VERBATIM_TYPO: 'x'\n")
    forgot = mutated(app, "  COSMOS_ENDPOINT: cosmosEndpoint\n", "")
    recorder = set(_recorder(templates))
    code = app_setting_names()
    baseline_unexpected, baseline_missing = mismatch(set(_function_app(templates)) | recorder, code)
    unexpected, _ = mismatch(set(bicep_settings(extra, "appSettings")) | recorder, code)
    _, missing = mismatch(set(bicep_settings(forgot, "appSettings")) | recorder, code)
    assert unexpected - baseline_unexpected == {"VERBATIM_TYPO"}
    assert missing - baseline_missing == {"COSMOS_ENDPOINT"}


def test_allow_lists_name_real_settings_and_do_not_overlap() -> None:
    code = app_setting_names()
    assert code >= NOT_SET_IN_AZURE, f"stale allow-list entries: {NOT_SET_IN_AZURE - code}"
    assert not PLATFORM_SETTINGS & code
    assert not LOCAL_ONLY_SETTINGS & OPERATOR_SETTINGS


def test_local_only_settings_never_reach_azure(templates: dict[str, Bicep]) -> None:
    set_by_bicep = set(_function_app(templates)) | set(_recorder(templates))
    assert set_by_bicep & LOCAL_ONLY_SETTINGS == set()


def _defaults() -> dict[str, object]:
    defaults = {}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        name = alias.choices[0] if alias is not None and hasattr(alias, "choices") else None
        if isinstance(name, str) and field.default is not None and not callable(field.default_factory):
            defaults[name] = field.default
    return defaults


def test_literal_values_in_the_bicep_equal_the_model_defaults(templates: dict[str, Bicep]) -> None:
    # A literal in the Bicep restates a default so admins see it in the portal; it must not drift.
    # Values that differ on purpose are expressions (parameters), not literals.
    defaults = _defaults()
    drift = {}
    for settings in (_function_app(templates), _recorder(templates)):
        for name, literal in settings.items():
            if isinstance(literal, str) and name in defaults:
                expected = defaults[name]
                expected_text = str(expected).lower() if isinstance(expected, bool) else str(expected)
                if literal != expected_text:
                    drift[name] = (literal, expected_text)
    assert drift == {}


def test_secrets_are_key_vault_references(templates: dict[str, Bicep]) -> None:
    secret_names = {
        field.validation_alias.choices[0]  # type: ignore[union-attr]
        for field in Settings.model_fields.values()
        if field.annotation is not None and SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }
    for settings in (_function_app(templates), _recorder(templates)):
        for name in secret_names & set(settings):
            literal = settings[name]
            assert isinstance(literal, Expr) and literal.text.startswith("'@Microsoft.KeyVault(SecretUri="), name
