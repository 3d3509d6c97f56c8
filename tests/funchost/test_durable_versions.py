"""Orchestration versioning in the local host, as the Durable Functions extension documents it (public preview):
MicrosoftDocs azure-docs, articles/azure-functions/durable/durable-functions-orchestration-versioning.md — an
instance keeps the version it started with (the client's, else host.json's `defaultVersion`); a worker runs only
instances its `versionMatchStrategy` accepts (`CurrentOrOlder` by default) and `versionFailureStrategy` decides what
happens to the others (`Reject`, the default, leaves them for a newer worker; `Fail` fails them)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.funchost.durable.taskhub import DurableOptions, TaskHubConfigError
from devstack.funchost.durable.versions import compare, matches
from tests.funchost.conftest import APPS, RunningHost, StartHost, wait_for

TERMINAL = {"Completed", "Failed", "Terminated"}


# --- the documented comparison rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "order"),
    [
        (None, "", 0),  # 1. empty and null are equal
        (None, "1.0", -1),  # 2. empty or null is older than any defined version
        ("", "v1.0-release", -1),
        ("1.10", "1.9", 1),  # 3. both parse as System.Version: component by component, not as text
        ("2.0", "10.0", -1),
        ("1.0", "1.0.0", -1),  # System.Version: an absent build is older than build 0
        ("1.2.3.4", "1.2.3.4", 0),
        ("V1.0-Release", "v1.0-release", 0),  # 4. otherwise case-insensitive text
        ("2025-01-01", "2025-02-01", -1),  # the docs' date-based example: not a System.Version, compared as text
        ("10", "9", -1),  # one component is not a System.Version either: text, so "10" < "9" (use "1.0" forms)
    ],
)
def test_versions_compare_by_the_documented_rules(left: str | None, right: str | None, order: int) -> None:
    assert compare(left, right) == order
    assert compare(right, left) == -order


def test_each_strategy_accepts_what_the_docs_say() -> None:
    assert matches("1.0", "2.0", "CurrentOrOlder") and matches("2.0", "2.0", "CurrentOrOlder")
    assert matches(None, "2.0", "CurrentOrOlder")  # instances from before versioning run on a versioned worker
    assert not matches("3.0", "2.0", "CurrentOrOlder")
    assert matches("2.0", "2.0", "Strict") and not matches("1.0", "2.0", "Strict")
    assert matches("3.0", "2.0", "None")


def test_host_json_versioning_settings_are_read_with_the_extension_defaults() -> None:
    plain = DurableOptions.from_host_json({"extensions": {"durableTask": {"hubName": "hub1"}}}, {})
    assert (plain.default_version, plain.version_match, plain.version_failure) == (None, "CurrentOrOlder", "Reject")
    section = {"hubName": "hub1", "defaultVersion": "2.0", "versionMatchStrategy": "strict"}
    chosen = section | {"versionFailureStrategy": "Fail"}
    set_ = DurableOptions.from_host_json({"extensions": {"durableTask": chosen}}, {})
    assert (set_.default_version, set_.version_match, set_.version_failure) == ("2.0", "Strict", "Fail")
    with pytest.raises(TaskHubConfigError, match="versionMatchStrategy"):
        DurableOptions.from_host_json({"extensions": {"durableTask": section | {"versionMatchStrategy": "Newest"}}}, {})


# --- a real host, two releases of one app on one task hub ------------------------------------------------------


def _release(root: Path, name: str, **durable: Any) -> Path:
    """The fixture app as deployed with these durableTask settings (a release's host.json)."""
    app = root / name
    shutil.copytree(APPS / "durable", app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["durableTask"].update(durable)
    (app / "host.json").write_text(json.dumps(host_json))
    return app


def _start(host: RunningHost, name: str, value: Any, version: str | None = None) -> str:
    params = {"version": version} if version else None
    response = httpx.post(f"{host.base_url}/api/orchestrators/{name}", params=params, json=value, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _status(host: RunningHost, instance_id: str) -> dict[str, Any]:
    response = httpx.get(f"{host.base_url}/api/instances/{instance_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _finished(host: RunningHost, instance_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = _status(host, instance_id)
        return status if status["runtimeStatus"] in TERMINAL else None

    return dict(wait_for(done, timeout=30, interval=0.2))


@pytest.mark.integration
def test_a_newer_release_runs_the_instances_an_older_worker_left_and_new_instances_get_its_version(
    start_host: StartHost, tmp_path: Path
) -> None:
    hub = {"DURABLE_TASK_HUB_NAME": f"v{uuid.uuid4().hex[:12]}"}
    old = start_host(_release(tmp_path, "release-1", defaultVersion="1.0"), env=hub)

    current = _start(old, "versioned", "Lisbon")
    assert _finished(old, current)["output"] == {"version": "1.0", "step": "Hello Lisbon!", "child_version": "1.0"}

    # An instance of a newer version reaches the old worker only: it leaves it alone (Reject), while an instance
    # started after it, of its own version, runs to the end.
    newer = _start(old, "versioned", "Oslo", version="2.0")
    later = _start(old, "versioned", "Rome")
    assert _finished(old, later)["runtimeStatus"] == "Completed"
    assert _status(old, newer)["runtimeStatus"] == "Pending"
    assert "left for another worker" in old.log_path.read_text()

    # The new release comes up beside it on the same task hub (a rolling deployment) and runs it, on its branch.
    new = start_host(_release(tmp_path, "release-2", defaultVersion="2.0"), env=hub)
    finished = _finished(new, newer)
    assert (finished["runtimeStatus"], finished["output"]) == (
        "Completed",
        {"version": "2.0", "step": "ABC", "child_version": "2.0"},
    )
    # ... and still runs the older version's instances on their own branch.
    older = _start(new, "versioned", "Paris", version="1.0")
    assert _finished(new, older)["output"] == {"version": "1.0", "step": "Hello Paris!", "child_version": "2.0"}


@pytest.mark.integration
def test_with_the_fail_strategy_an_instance_of_a_newer_version_fails_with_the_reason(
    start_host: StartHost, tmp_path: Path
) -> None:
    release = _release(tmp_path, "release-1", defaultVersion="1.0", versionFailureStrategy="Fail")
    host = start_host(release, env={"DURABLE_TASK_HUB_NAME": f"v{uuid.uuid4().hex[:12]}"})
    status = _finished(host, _start(host, "versioned", "Oslo", version="2.0"))
    assert status["runtimeStatus"] == "Failed"
    assert "version 2.0" in json.dumps(status["output"]) and "CurrentOrOlder" in json.dumps(status["output"])
