"""Project policies over Bicep parse trees; each check returns its violations as sentences.

The checks look at literal values only (what the parse tree can prove). A property set from an
expression counts as a violation where the policy needs a literal (e.g. `allowSharedKeyAccess`),
so a template cannot make a security setting conditional without a test saying so.
"""

from __future__ import annotations

import re

from tests.infra.bicep_tree import Bicep, Expr, Resource, string_value, value, walk

STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
SITE = "Microsoft.Web/sites"
COSMOS = "Microsoft.DocumentDB/databaseAccounts"
VAULT = "Microsoft.KeyVault/vaults"
SCALE_SET = "Microsoft.Compute/virtualMachineScaleSets"
# Resources that run our code and must therefore carry a managed identity.
COMPUTE_TYPES = (SITE, SCALE_SET, "Microsoft.Compute/virtualMachines", "Microsoft.App/containerApps")

_SECRET_NAME = re.compile(r"(password|secret|key|token|connectionstring|clientstate|credential)", re.I)
# Names that merely mention a key or secret without being one.
_SECRET_NAME_EXCEPTIONS = re.compile(r"(name|uri|url|id|ids|version|type|count|days)$", re.I)


def _where(bicep: Bicep, resource: Resource) -> str:
    name = bicep.path.name if bicep.path else "<snippet>"
    return f"{name}: {resource.symbol} ({resource.type})"


def _expect(bicep: Bicep, resource: Resource, path: str, expected: object) -> list[str]:
    actual = value(resource.get(path))
    if actual == expected:
        return []
    shown = actual.text if isinstance(actual, Expr) else actual
    return [f"{_where(bicep, resource)}: {path} must be {expected!r}, is {shown!r}"]


def tls_minimum(bicep: Bicep) -> list[str]:
    """TLS 1.2 minimum on storage, Cosmos DB and web apps (and their SCM site)."""
    found = []
    for r in bicep.resources_of(STORAGE):
        found += _expect(bicep, r, "properties.minimumTlsVersion", "TLS1_2")
    for r in bicep.resources_of(COSMOS):
        found += _expect(bicep, r, "properties.minimalTlsVersion", "Tls12")
    for r in bicep.resources_of(SITE):
        found += _expect(bicep, r, "properties.siteConfig.minTlsVersion", "1.2")
        found += _expect(bicep, r, "properties.siteConfig.scmMinTlsVersion", "1.2")
    return found


def no_public_blob_access(bicep: Bicep) -> list[str]:
    """No anonymous access: accounts disallow it and every container says publicAccess None."""
    found = []
    for r in bicep.resources_of(STORAGE):
        found += _expect(bicep, r, "properties.allowBlobPublicAccess", False)
    for r in bicep.resources_of(CONTAINER):
        found += _expect(bicep, r, "properties.publicAccess", "None")
    return found


def keys_off(bicep: Bicep) -> list[str]:
    """Shared keys and local auth off everywhere; no key listing; no publishing passwords."""
    found = []
    for r in bicep.resources_of(STORAGE):
        found += _expect(bicep, r, "properties.allowSharedKeyAccess", False)
    for r in bicep.resources_of(COSMOS):
        found += _expect(bicep, r, "properties.disableLocalAuth", True)
    for r in bicep.resources_of("Microsoft.Insights/components"):
        found += _expect(bicep, r, "properties.DisableLocalAuth", True)
    for r in bicep.resources_of("Microsoft.Web/sites/basicPublishingCredentialsPolicies"):
        found += _expect(bicep, r, "properties.allow", False)
    for function in ("listKeys", "listConnectionStrings", "listAccountSas", "listServiceSas"):
        for call in bicep.calls(function):
            found.append(f"{_name(bicep)}: line {call.start_point[0] + 1} calls {function}() (keyless only)")
    return found


def https_only(bicep: Bicep) -> list[str]:
    """Storage and web apps refuse plain HTTP; health probes speak HTTPS."""
    found = []
    for r in bicep.resources_of(STORAGE):
        found += _expect(bicep, r, "properties.supportsHttpsTrafficOnly", True)
    for r in bicep.resources_of(SITE):
        found += _expect(bicep, r, "properties.httpsOnly", True)
        found += _expect(bicep, r, "properties.siteConfig.ftpsState", "Disabled")
    for r in bicep.resources_of("Microsoft.Network/loadBalancers"):
        for probe in value(r.get("properties.probes")) or []:
            if isinstance(probe, dict) and probe.get("properties", {}).get("protocol") == "Http":
                found.append(f"{_where(bicep, r)}: probe {probe.get('name')} uses plain HTTP")
    for r in bicep.resources_of(SCALE_SET):
        for extension in _extensions(r):
            properties = extension.get("properties", {})
            is_health = str(properties.get("type", "")).startswith("ApplicationHealth")  # type: ignore[union-attr]
            if is_health and properties.get("settings", {}).get("protocol") != "https":  # type: ignore[union-attr]
                found.append(f"{_where(bicep, r)}: the Application Health extension must probe over https")
    return found


def managed_identity_on_compute(bicep: Bicep) -> list[str]:
    """Every compute resource has a managed identity (it is how it reaches everything else)."""
    found = []
    for type_ in COMPUTE_TYPES:
        for r in bicep.resources_of(type_):
            identity_type = value(r.get("identity.type"))
            if not isinstance(identity_type, str) or "Assigned" not in identity_type:
                found.append(f"{_where(bicep, r)}: no managed identity (identity.type)")
    return found


def no_secret_defaults(bicep: Bicep) -> list[str]:
    """Secrets are @secure() parameters without defaults; no literal looks like a credential."""
    found = []
    for param in bicep.params().values():
        looks_secret = _SECRET_NAME.search(param.name) and not _SECRET_NAME_EXCEPTIONS.search(param.name)
        if looks_secret and not param.is_secure:
            found.append(f"{_name(bicep)}: parameter {param.name} looks like a secret but is not @secure()")
        if (param.is_secure or looks_secret) and param.default is not None:
            found.append(f"{_name(bicep)}: secret parameter {param.name} has a default")
    for node in walk(bicep.root):
        literal = string_value(node) if node.type == "string" else None
        if literal and re.search(r"(AccountKey=|SharedAccessSignature=|sig=|-----BEGIN)", literal):
            found.append(f"{_name(bicep)}: line {node.start_point[0] + 1} has a literal credential")
    return found


def local_files_exist(bicep: Bicep) -> list[str]:
    """Every module and every loadXxx() path points at an existing file; no registry modules."""
    found = []
    base = bicep.path.parent if bicep.path else None
    paths = [(m.source, f"module {m.symbol}") for m in bicep.modules()]
    for function in ("loadJsonContent", "loadTextContent", "loadFileAsBase64", "loadYamlContent"):
        for call in bicep.calls(function):
            argument = string_value(call.named_children[1].named_children[0])
            paths.append((argument or "", f"{function}()"))
    for source, what in paths:
        if source.startswith(("br:", "br/", "ts:", "ts/")):
            found.append(f"{_name(bicep)}: {what} comes from a registry ({source}); keep modules local")
        elif base is None or not (base / source).is_file():
            found.append(f"{_name(bicep)}: {what} refers to {source!r}, which does not exist")
    return found


def _name(bicep: Bicep) -> str:
    return bicep.path.name if bicep.path else "<snippet>"


def _extensions(scale_set: Resource) -> list[dict[str, object]]:
    extensions = value(scale_set.get("properties.virtualMachineProfile.extensionProfile.extensions"))
    return [e for e in extensions if isinstance(e, dict)] if isinstance(extensions, list) else []


def scale_set_extensions(scale_set: Resource) -> dict[str, dict[str, object]]:
    """The scale set's extensions by type (KeyVaultForWindows, CustomScriptExtension, ...)."""
    return {str(e.get("properties", {}).get("type")): e for e in _extensions(scale_set)}  # type: ignore[union-attr]


# The generic policies every .bicep file must pass.
GENERIC_POLICIES = (
    tls_minimum,
    no_public_blob_access,
    keys_off,
    https_only,
    managed_identity_on_compute,
    no_secret_defaults,
    local_files_exist,
)
