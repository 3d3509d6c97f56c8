"""The stores the Bicep creates are exactly those of verbatim.platform.layout (the one source of names)."""

from __future__ import annotations

import re

from tests.infra.bicep_policy import CONTAINER
from tests.infra.bicep_tree import Bicep, Expr, Resource, text, value
from verbatim.platform import layout

QUEUE = "Microsoft.Storage/storageAccounts/queueServices/queues"
COSMOS_CONTAINER = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"

# Containers the infrastructure needs that the code never names: the Flex deployment package
# container is named per Function App (app-package-<app>-<hash>) and read only by the platform.
INFRA_ONLY_CONTAINER_PARAMS = {"deploymentContainerName"}


def declared_names(template: Bicep, type_: str) -> tuple[set[str], set[str]]:
    """Names of the resources of one type: literals, loop items of a literal array, or variables.

    Returns (names, unresolved): unresolved holds the expressions that name a resource from outside
    the file (parameters), so a test can say which of those it accepts.
    """
    variables = template.variables()
    names: set[str] = set()
    unresolved: set[str] = set()
    for resource in template.resources_of(type_):
        names_here, unresolved_here = _names_of(resource, variables)
        names |= names_here
        unresolved |= unresolved_here
    return names, unresolved


def _names_of(resource: Resource, variables: dict) -> tuple[set[str], set[str]]:  # type: ignore[type-arg]
    name = value(resource.get("name"))
    if isinstance(name, str):
        return {name}, set()
    assert isinstance(name, Expr)
    loop = resource.loop_variable
    if loop and resource.loop_source is not None and name.text.split(".")[0] == loop:
        items = value(variables.get(text(resource.loop_source)))
        if isinstance(items, list) and all(isinstance(item, str) for item in items):
            return set(items), set()  # type: ignore[arg-type]
        if isinstance(items, list):
            return {str(item[name.text.split(".")[-1]]) for item in items if isinstance(item, dict)}, set()
    if name.text in variables and isinstance(value(variables[name.text]), str):
        return {str(value(variables[name.text]))}, set()
    return set(), {name.text}


def _all_names(templates: dict[str, Bicep], type_: str) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    unresolved: set[str] = set()
    for template in templates.values():
        found, open_ = declared_names(template, type_)
        names |= found
        unresolved |= open_
    return names, unresolved


def test_cosmos_containers_and_partition_keys_equal_the_layout(templates: dict[str, Bicep]) -> None:
    declared = value(templates["modules/cosmos.bicep"].variables()["containers"])
    assert isinstance(declared, list)
    pairs = [(c["name"], c["partitionKeyPath"]) for c in declared]
    assert sorted(pairs) == sorted((c.name, c.partition_key) for c in layout.COSMOS_CONTAINERS)
    assert len(pairs) == len(set(pairs))
    # ... and the container resource is built from exactly that list.
    names, unresolved = declared_names(templates["modules/cosmos.bicep"], COSMOS_CONTAINER)
    assert (names, unresolved) == ({c.name for c in layout.COSMOS_CONTAINERS}, set())


def test_a_wrong_partition_key_is_detected(templates: dict[str, Bicep]) -> None:
    cosmos = templates["modules/cosmos.bicep"].replaced("partitionKeyPath: '/callId'", "partitionKeyPath: '/id'")
    declared = value(cosmos.variables()["containers"])
    assert isinstance(declared, list)
    pairs = sorted((c["name"], c["partitionKeyPath"]) for c in declared)
    assert pairs != sorted((c.name, c.partition_key) for c in layout.COSMOS_CONTAINERS)


def test_blob_containers_equal_the_layout(templates: dict[str, Bicep]) -> None:
    names, unresolved = _all_names(templates, CONTAINER)
    assert names == set(layout.BLOB_CONTAINERS)
    assert unresolved == INFRA_ONLY_CONTAINER_PARAMS


def test_queues_equal_the_layout(templates: dict[str, Bicep]) -> None:
    names, unresolved = _all_names(templates, QUEUE)
    assert names == set(layout.QUEUES)
    assert unresolved == set()


def test_a_missing_queue_is_detected(templates: dict[str, Bicep]) -> None:
    runtime = templates["modules/runtime-storage.bicep"].replaced("  'recorder-events-poison'\n", "")
    names, _ = declared_names(runtime, QUEUE)
    assert set(layout.QUEUES) - names == {"recorder-events-poison"}


def test_the_recordings_container_of_the_settings_is_the_worm_one(templates: dict[str, Bicep]) -> None:
    names, _ = declared_names(templates["modules/recordings-storage.bicep"], CONTAINER)
    assert "recordings" in names
    settings = value(templates["modules/function-app.bicep"].variables()["appSettings"])
    assert isinstance(settings, dict)
    assert settings["RECORDINGS_CONTAINER"] == "recordings"


def test_webhook_urls_point_at_the_routes_the_function_app_serves(templates: dict[str, Bicep]) -> None:
    import re

    from tests.infra.bicep_tree import REPO

    served = set(re.findall(r'route="(graph/[^"]+)"', (REPO / "functions" / "graph_webhook.py").read_text()))
    served |= set(re.findall(r'route="(chat/[^"]+)"', (REPO / "functions" / "chat.py").read_text()))
    routes = value(templates["modules/webhook-secrets.bicep"].variables()["routes"])
    assert isinstance(routes, dict)
    assert set(routes.values()) == served
    assert served == {"graph/notifications", "graph/lifecycle", "chat/notifications", "chat/lifecycle"}


def test_the_progress_table_is_the_one_the_recorder_writes(templates: dict[str, Bicep]) -> None:
    from verbatim.evidence.progress import PROGRESS_TABLE

    names, unresolved = declared_names(
        templates["modules/runtime-storage.bicep"], "Microsoft.Storage/storageAccounts/tableServices/tables"
    )
    assert (names, unresolved) == ({PROGRESS_TABLE}, set())
    assert f"name: '{PROGRESS_TABLE}'" in templates["modules/rbac.bicep"].source.decode()


ACCOUNT_MODULES = {"recordings": "modules/recordings-storage.bicep", "runtime": "modules/runtime-storage.bicep"}


def misplaced_containers(templates: dict[str, Bicep]) -> set[str]:
    """`name on module` for every blob container a storage module declares or lacks against the layout's account."""
    found: set[str] = set()
    for account, module in ACCOUNT_MODULES.items():
        names, _ = declared_names(templates[module], CONTAINER)
        expected = {name for name in layout.BLOB_CONTAINERS if layout.blob_account(name) == account}
        found |= {f"{name} on {module}" for name in names ^ expected}
    return found


def test_each_blob_container_is_created_on_the_account_the_code_uses(templates: dict[str, Bicep]) -> None:
    assert misplaced_containers(templates) == set()


def test_a_container_on_the_wrong_account_is_detected(templates: dict[str, Bicep]) -> None:
    moved = dict(templates)
    moved["modules/runtime-storage.bicep"] = templates["modules/runtime-storage.bicep"].replaced(
        "['recorder-packages', 'lifecycle-scratch']", "['recorder-packages', 'lifecycle-scratch', 'callrecords']"
    )
    assert misplaced_containers(moved) == {"callrecords on modules/runtime-storage.bicep"}


def containers_the_function_app_cannot_reach(rbac: str) -> set[str]:
    """Blob containers of the recordings account on which the Function App's identity holds no role: the code
    writes each of them (the layout), so in Azure every such write would be refused (403)."""
    start = rbac.index("resource recordingsStorage ")
    block = rbac[start : rbac.index("\n}\n", start)]
    symbols = dict(re.findall(r"resource (\w+) 'containers' existing = \{\n\s+name: '([^']+)'", block))
    reached = {
        symbols[scope]
        for scope, principal in re.findall(
            r"scope: recordingsStorage::blobService::(\w+)\n(?:.*\n){1,3}?\s+principalId: (\w+)", rbac
        )
        if principal == "functionPrincipalId" and scope in symbols
    }
    return {name for name in layout.BLOB_CONTAINERS if layout.blob_account(name) == "recordings"} - reached


def test_the_function_app_has_a_role_on_every_container_of_the_recordings_account(
    templates: dict[str, Bicep],
) -> None:
    # The ledger v2 log (`ledger`, `ledger-anchors`) and `exports` shipped without one (issue 13, finding 3 review).
    assert containers_the_function_app_cannot_reach(templates["modules/rbac.bicep"].source.decode()) == set()


def test_a_container_the_function_app_cannot_write_is_detected(templates: dict[str, Bicep]) -> None:
    rbac = templates["modules/rbac.bicep"].source.decode()
    dropped = rbac.replace("scope: recordingsStorage::blobService::ledgerAnchors\n", "scope: vault\n", 1)
    assert containers_the_function_app_cannot_reach(dropped) == {"ledger-anchors"}
