"""A release that changes an orchestration's steps must not break the instances still in flight.

Each recording's lifecycle (and each export) is a Durable Functions orchestration that replays its history, so
adding, removing or reordering its activities, timers or events is a breaking change for the instances started
before it. Verbatim uses Durable's orchestration versioning (MicrosoftDocs azure-docs,
articles/azure-functions/durable/durable-functions-orchestration-versioning.md): host.json's `defaultVersion`
stamps each new instance, the orchestrators branch on `context.version`, and a worker runs only versions up to its
own (`CurrentOrOlder`, `Reject`). These tests hold a release to that: the code of each orchestrator, as it is for the
version in host.json, is pinned here by a fingerprint of its syntax tree (comments and docstrings excluded)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# orchestrator -> (its module, {defaultVersion: fingerprint of the orchestrator's code at that version}).
RELEASED = {
    "recording_lifecycle": ("functions/lifecycle.py", {"1.0": "fa1ad57f28095a5c"}),
    "export_package": ("functions/exports.py", {"1.0": "7647a93b6294e65e"}),
}

CHANGED = """the orchestrator {name} in {path} is not the code released as version {version}.
If its steps changed (an activity, timer, event or sub-orchestration added, removed, reordered, or given other
input), that breaks the instances in flight: raise `defaultVersion` in host.json (and tests/*/app/host.json), keep
version {version}'s steps in a branch on `context.version` (and its activities registered while such instances may
live), and pin the new version here. If the steps did not change (a rename, a log line), pin the new fingerprint
for {version}: {fingerprint}. See docs/deploy.md, "Updating the Function App"."""


def _fingerprint(path: str, name: str) -> str:
    tree = ast.parse((REPO / path).read_text())
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name)
    for node in ast.walk(function):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    function.decorator_list = []
    return hashlib.sha256(ast.dump(function).encode()).hexdigest()[:16]


def _durable_task(host_json: Path) -> dict[str, object]:
    return dict(json.loads(host_json.read_text())["extensions"]["durableTask"])


def test_each_orchestrator_is_the_code_released_for_the_version_in_host_json() -> None:
    version = str(_durable_task(REPO / "host.json")["defaultVersion"])
    for name, (path, released) in RELEASED.items():
        assert version in released, f"host.json's defaultVersion {version} has no fingerprint of {name} here"
        fingerprint = _fingerprint(path, name)
        assert fingerprint == released[version], CHANGED.format(
            name=name, path=path, version=version, fingerprint=fingerprint
        )


def test_every_host_json_versions_orchestrations_the_same_way_on_a_bundle_that_supports_it() -> None:
    apps = [REPO / "host.json", *sorted(REPO.glob("tests/*/app/host.json"))]
    for host_json in apps:
        durable = _durable_task(host_json)
        assert durable.get("defaultVersion") == _durable_task(REPO / "host.json")["defaultVersion"], host_json
        assert (durable.get("versionMatchStrategy"), durable.get("versionFailureStrategy")) == (
            "CurrentOrOlder",
            "Reject",
        ), host_json
        # Versioning needs extension bundle 4.30.0 or later for Python apps (the versioning article's
        # prerequisites): the range's lower bound must say so.
        bundle = json.loads(host_json.read_text())["extensionBundle"]["version"]
        lower = re.match(r"^\[(\d+)\.(\d+)\.(\d+),", bundle)
        assert lower is not None and tuple(map(int, lower.groups())) >= (4, 30, 0), (host_json, bundle)
