"""The policy HTTP triggers, called as the Functions host calls them: bearer tokens from a real OpenID
provider on loopback, Recorder.Admin required, problem+json for bad input, Cosmos (emulator) behind
publishing, coverage and the effective-policy query."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions import policy as triggers
from tests.callrecords.oidc import AUDIENCE, OpenIdProvider, openid_provider
from tests.policy.conftest import TRADERS, VALID
from verbatim.contracts.policy import EffectivePolicy
from verbatim.platform import clients
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore, observe
from verbatim.wiring import container_for

EXPORT = json.loads((Path(__file__).parent / "data" / "export-partial.json").read_text())


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture(autouse=True)
def _auth(provider: OpenIdProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_OPENID_CONFIG_URL", provider.config_url)
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    monkeypatch.delenv("POLICY_SIMULATOR_URL", raising=False)
    from verbatim.platform.settings import reload_settings

    reload_settings()


def handler(builder: Any) -> Callable[[func.HttpRequest], func.HttpResponse]:
    function: Callable[[func.HttpRequest], func.HttpResponse] = builder._function.get_user_function()
    return function


def request(
    method: str,
    route: str,
    body: bytes = b"",
    *,
    token: str | None,
    content_type: str | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["content-type"] = content_type
    return func.HttpRequest(
        method=method,
        url=f"http://localhost/api/{route}",
        headers=headers,
        params=params or {},
        route_params=route_params or {},
        body=body,
    )


def admin(provider: OpenIdProvider) -> str:
    return provider.mint(roles=["Recorder.Admin"], name="Ada Admin", oid="admin-oid")


def test_validating_needs_a_token_and_the_recorder_admin_role(provider: OpenIdProvider) -> None:
    validate = handler(triggers.validate_desired_state)

    anonymous = validate(
        request("POST", "v1/policy/validate", VALID.encode(), token=None, content_type="application/yaml")
    )
    officer = validate(
        request("POST", "v1/policy/validate", VALID.encode(), token=provider.mint(), content_type="application/yaml")
    )
    ok = validate(
        request("POST", "v1/policy/validate", VALID.encode(), token=admin(provider), content_type="application/yaml")
    )

    assert (anonymous.status_code, officer.status_code, ok.status_code) == (401, 403, 200)
    assert anonymous.mimetype == "application/problem+json"
    assert json.loads(ok.get_body())["valid"] is True


def test_validating_an_invalid_file_reports_each_error_with_its_place(provider: OpenIdProvider) -> None:
    body = VALID.replace("rank: 2", "rank: 1").encode()

    response = handler(triggers.validate_desired_state)(
        request("POST", "v1/policy/validate", body, token=admin(provider), content_type="application/yaml")
    )

    report = json.loads(response.get_body())
    assert response.status_code == 200 and report["valid"] is False
    assert [(i["path"], i["line"]) for i in report["issues"] if i["severity"] == "error"] == [
        ("assignments.groups[1].rank", 41)
    ]


def test_a_plan_against_an_export_comes_back_as_json_or_text(provider: OpenIdProvider) -> None:
    body = json.dumps({"desiredState": VALID, "currentState": EXPORT}).encode()
    plan = handler(triggers.plan_desired_state)

    as_json = plan(request("POST", "v1/policy/plan", body, token=admin(provider), content_type="application/json"))
    as_text = plan(
        request(
            "POST",
            "v1/policy/plan",
            body,
            token=admin(provider),
            content_type="application/json",
            params={"format": "text"},
        )
    )

    document = json.loads(as_json.get_body())
    assert as_json.status_code == 200 and document["schemaVersion"] == 1
    assert {c["kind"] for c in document["changes"] if c["action"] == "remove"} == {
        "user-assignment",
        "group-assignment",
        "recording-policy",
    }
    assert as_text.mimetype == "text/plain"
    assert as_text.get_body().decode().endswith("Plan: 7 to add, 3 to change, 3 to remove.\n")


def test_the_plans_powershell_comes_as_a_download_that_makes_its_changes(provider: OpenIdProvider) -> None:
    """The portal's "Download PowerShell": the script `verbatim policy script` writes for the same plan."""
    body = json.dumps({"desiredState": VALID, "currentState": EXPORT}).encode()
    plan = handler(triggers.plan_desired_state)

    script = plan(
        request(
            "POST",
            "v1/policy/plan",
            body,
            token=admin(provider),
            content_type="application/json",
            params={"format": "powershell"},
        )
    )
    as_json = json.loads(
        plan(request("POST", "v1/policy/plan", body, token=admin(provider), content_type="application/json")).get_body()
    )

    text = script.get_body().decode()
    assert script.status_code == 200 and script.mimetype == "text/plain"
    assert script.headers["Content-Disposition"] == 'attachment; filename="verbatim-policy-changes.ps1"'
    assert "Verbatim: apply compliance recording policy changes" in text
    assert f"desired state sha256 {as_json['desiredSha256']}" in text
    for change in as_json["changes"]:
        assert change["subject"] in text, change


def test_a_plan_without_a_current_state_or_of_an_invalid_file_is_a_400(provider: OpenIdProvider) -> None:
    plan = handler(triggers.plan_desired_state)

    no_current = plan(
        request("POST", "v1/policy/plan", VALID.encode(), token=admin(provider), content_type="text/yaml")
    )
    invalid = plan(
        request(
            "POST",
            "v1/policy/plan",
            json.dumps({"desiredState": "version: 1\nrecordingPolicies: 3\n", "currentState": EXPORT}).encode(),
            token=admin(provider),
            content_type="application/json",
        )
    )

    assert no_current.status_code == 400 and "no current state" in json.loads(no_current.get_body())["detail"]
    problem = json.loads(invalid.get_body())
    assert invalid.status_code == 400 and problem["title"] == "Invalid desired state"
    assert problem["errors"] == [
        {
            "severity": "error",
            "path": "recordingPolicies",
            "message": "must be a list, not a number 3",
            "line": 2,
            "column": 1,
        }
    ]


@pytest.mark.integration
def test_publishing_stores_the_desired_state_and_records_it_in_the_ledger(
    provider: OpenIdProvider, stack_env: Settings
) -> None:
    response = handler(triggers.publish_desired_state)(
        request(
            "PUT", "v1/policy/desired-state", VALID.encode(), token=admin(provider), content_type="application/yaml"
        )
    )

    info = json.loads(response.get_body())
    assert response.status_code == 200, info
    assert info["mustRecordGroups"] == [TRADERS] and info["publishedBy"] == "Ada Admin"
    stored = list(
        clients.cosmos_database(stack_env)
        .get_container_client("control")
        .query_items("SELECT * FROM c WHERE c.id = 'policy-desired-state'", partition_key="policy-desired-state")
    )
    assert stored[0]["published"]["text"] == VALID
    read = handler(triggers.read_desired_state)
    view = json.loads(read(request("GET", "v1/policy/desired-state", token=admin(provider))).get_body())
    assert (view["text"], view["sha256"], view["publishedBy"]) == (VALID, info["sha256"], "Ada Admin")
    auditor = provider.mint(roles=["Compliance.Auditor"])
    assert read(request("GET", "v1/policy/desired-state", token=auditor)).status_code == 403
    subject = f"policy:desired-state:{info['sha256']}"
    published = [
        e for e in container_for(stack_env).ledger.entries_for_subject(subject) if e.kind == "policy.published"
    ]
    assert len(published) == 1
    assert published[0].actor == "admin-oid"  # the token's subject, as in every entry of a person; not a name


@pytest.mark.integration
def test_the_effective_policy_of_a_user_at_a_time_and_the_missing_coverage_report(
    provider: OpenIdProvider, stack_env: Settings
) -> None:
    store = CosmosPolicySnapshotStore(clients.cosmos_database(stack_env).get_container_client("policy_snapshots"))
    observe(
        store,
        EffectivePolicy(user_id="u-alice", policy_name="Traders-Strict", source="group", records=True, strict=True),
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        previous_observation=None,
    )
    auditor = provider.mint(roles=["Compliance.Auditor"])

    found = handler(triggers.effective_policy_at)(
        request(
            "GET",
            "v1/policy/effective/u-alice",
            token=auditor,
            params={"at": "2026-03-02T10:00:00Z"},
            route_params={"userId": "u-alice"},
        )
    )
    coverage = handler(triggers.last_coverage_report)(request("GET", "v1/policy/coverage", token=auditor))

    answer = json.loads(found.get_body())
    assert found.status_code == 200
    assert answer["snapshot"]["effective"]["policyName"] == "Traders-Strict" and answer["pending"] is None
    assert coverage.status_code == 404
    unpublished = handler(triggers.read_desired_state)(request("GET", "v1/policy/desired-state", token=admin(provider)))
    assert unpublished.status_code == 404 and "no desired state" in json.loads(unpublished.get_body())["detail"]
