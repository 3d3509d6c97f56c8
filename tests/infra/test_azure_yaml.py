"""azure.yaml is valid for azd, its hooks exist, and what they and the parameters file need exists.

azd cannot be installed here: azure.yaml is validated against azd's own JSON Schema, vendored in
infra/vendor/azure.yaml.json (source and commit in infra/vendor/README.md), with no network access.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from scripts.azd import hooks
from tests.infra.bicep_tree import INFRA, REPO, Bicep, value

SCHEMA = json.loads((INFRA / "vendor" / "azure.yaml.json").read_text())
AZURE_YAML = REPO / "azure.yaml"
HOOKS_PY = REPO / "scripts" / "azd" / "hooks.py"
# Set by azd itself for every environment.
AZD_PROVIDED = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_TYPE"}


def _offline(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # never fetch a remote schema: a branch needing one is an error


def schema_errors(document: object) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA, registry=Registry(retrieve=_offline))
    try:
        return sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document))
    except Unresolvable as error:
        # Only documents that enter an extension's branch (e.g. no `host`) need a remote schema.
        return [f"needs a remote schema: {error}"]


@pytest.fixture(scope="module")
def azure_yaml() -> dict[str, Any]:
    document = yaml.safe_load(AZURE_YAML.read_text())
    assert isinstance(document, dict)
    return document


def test_azure_yaml_validates_against_the_azd_schema(azure_yaml: dict[str, Any]) -> None:
    assert schema_errors(azure_yaml) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(name="Verbatim App"),  # names are lowercase
        lambda d: d["hooks"]["preprovision"]["posix"].update(runn="x"),  # unknown hook key
        lambda d: d["hooks"].update(preprovison={"run": "x"}),  # unknown hook name
        lambda d: d["services"]["api"].pop("host"),  # host is required
    ],
)
def test_schema_validation_catches_a_broken_azure_yaml(azure_yaml: dict[str, Any], change) -> None:  # type: ignore[no-untyped-def]
    broken = json.loads(json.dumps(azure_yaml))
    change(broken)
    assert schema_errors(broken) != []


def test_the_function_app_service_is_the_repository_root_and_is_tagged_for_azd(
    azure_yaml: dict[str, Any], templates: dict[str, Bicep]
) -> None:
    (name, service), *others = azure_yaml["services"].items()
    assert others == []
    assert (service["host"], service["language"]) == ("function", "python")
    project = (REPO / service["project"]).resolve()
    assert (project / "function_app.py").is_file() and (project / "host.json").is_file()
    app = templates["modules/function-app.bicep"].source.decode()
    assert f"'azd-service-name': '{name}'" in app


def _hook_commands(azure_yaml: dict[str, Any]) -> dict[str, list[str]]:
    commands: dict[str, list[str]] = {}
    for hook, config in azure_yaml["hooks"].items():
        commands[hook] = [config[platform]["run"] for platform in ("posix", "windows")]
    return commands


def test_every_hook_runs_the_hook_module_on_posix_and_windows(azure_yaml: dict[str, Any]) -> None:
    commands = _hook_commands(azure_yaml)
    assert set(commands) == {"preprovision", "postprovision", "predeploy", "postdeploy"} == set(hooks.HOOKS)
    for hook, runs in commands.items():
        for run in runs:
            assert re.fullmatch(rf"python3? scripts/azd/hooks\.py {hook}", run), run
    assert HOOKS_PY.is_file()


def _output_names_read_by_hooks() -> set[str]:
    """Names passed as literals to hooks.output(env, NAME)."""
    tree = ast.parse(HOOKS_PY.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "output":
            argument = node.args[1]
            assert isinstance(argument, ast.Constant), "hooks.output() takes a literal output name"
            names.add(argument.value)
    return names


def test_every_output_the_hooks_read_is_declared_in_main_bicep(main: Bicep) -> None:
    read = _output_names_read_by_hooks()
    assert read, "the hooks read main.bicep outputs through hooks.output()"
    assert read <= set(hooks.OUTPUTS_USED)
    assert set(hooks.OUTPUTS_USED) - set(main.outputs()) == set()


def test_output_check_catches_a_missing_output(main: Bicep) -> None:

    without = main.replaced("output RECORDER_FQDN string = recorderFqdn\n", "")
    assert set(hooks.OUTPUTS_USED) - set(without.outputs()) == {"RECORDER_FQDN"}


def _parameters_file() -> dict[str, Any]:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert isinstance(parameters, dict)
    return parameters


def _environment_names_read_by_hooks() -> set[str]:
    """Environment names hooks.py reads with env.get("X") or env["X"]."""
    tree = ast.parse(HOOKS_PY.read_text())
    names = set()
    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            is_env_get = (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
            )
            is_int_helper = isinstance(node.func, ast.Name) and node.func.id == "_int" and len(node.args) > 1
            key = node.args[0] if is_env_get else node.args[1] if is_int_helper else None
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "env":
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


def test_parameters_file_maps_onto_main_bicep(main: Bicep) -> None:
    params = main.params()
    mapped = _parameters_file()
    assert set(mapped) - set(params) == set(), "parameters main.bicep does not declare"
    required = {name for name, param in params.items() if param.default is None}
    assert required - set(mapped) == set(), "required parameters azd would not supply"


def test_every_environment_variable_of_the_parameters_file_is_azds_or_checked_by_preprovision() -> None:
    variables = {
        match.group(1)
        for entry in _parameters_file().values()
        for match in re.finditer(r"\$\{([A-Z0-9_]+)(?:=[^}]*)?\}", str(entry["value"]))
    }
    # Read and checked by preprovision, or written by it (the package version, what it discovers).
    checked = _environment_names_read_by_hooks() | {"RECORDER_PACKAGE_VERSION"} | set(hooks.DISCOVERED)
    assert variables - AZD_PROVIDED - checked == set()


def test_secure_parameters_are_fed_from_the_environment_not_the_file(main: Bicep) -> None:
    mapped = _parameters_file()
    for name, param in main.params().items():
        if param.is_secure:
            assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", mapped[name]["value"]), name


def test_main_bicep_outputs_are_values_not_secrets(main: Bicep) -> None:
    secure = {name for name, param in main.params().items() if param.is_secure}
    for name, node in main.outputs().items():
        assert not (secure & set(re.findall(r"\w+", str(value(node))))), name


def test_vendored_schema_says_where_it_came_from() -> None:
    note = (INFRA / "vendor" / "README.md").read_text()
    assert "Azure/azure-dev" in note and "schemas/v1.0/azure.yaml.json" in note
    assert re.search(r"[0-9a-f]{40}", note)
    assert Path(INFRA / "vendor" / "azure.yaml.json").stat().st_size > 10_000
