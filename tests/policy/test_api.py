"""The policy HTTP service layer: bodies in YAML or JSON, precise errors, plans against an exported current
state, publishing, and the effective-policy-at-a-time query."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.policy.conftest import VALID
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.platform.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verbatim.policy import api
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.policy.stores import InMemoryDesiredStateStore
from verbatim.policy.validation import InvalidDesiredState

EXPORT = json.loads((Path(__file__).parent / "data" / "export-partial.json").read_text())
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_yaml_body_is_validated_with_its_warnings() -> None:
    report = api.validate_request("application/yaml; charset=utf-8", VALID.encode())

    assert report.valid is True
    assert [issue["path"] for issue in report.issues] == ["recordingPolicies[1].recorders"]


def test_an_invalid_body_gives_every_error_with_its_line() -> None:
    body = VALID.replace(
        "concurrentInvitationCount: 2", "concurrentInvitationCount: 2\n        pairedWith: x@contoso.com"
    )

    report = api.validate_request("text/yaml", body.encode())

    assert report.valid is False
    assert report.issues[0]["path"] == "recordingPolicies[1].recorders[0]"
    assert report.issues[0]["line"] == 21
    assert str(report.issues[0]["message"]).startswith("concurrentInvitationCount and pairedWith are both set")


def test_a_json_body_may_be_the_desired_state_itself() -> None:
    report = api.validate_request("application/json", json.dumps({"version": 1, "recordingPolicies": [{}]}).encode())

    assert report.valid is False
    assert [(i["path"], i["message"]) for i in report.issues] == [
        (
            "recordingPolicies[0]",
            "missing required field 'name': policy identity without the Tag: prefix; 'Global' is the tenant default",
        ),
        (
            "recordingPolicies[0]",
            "missing required field 'enabled': whether the policy is active "
            "(Teams default false, so it must be stated)",
        ),
    ]


def test_other_media_types_and_oversized_bodies_are_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        api.validate_request("application/xml", b"<x/>")
    with pytest.raises(PayloadTooLarge):
        api.validate_request("application/yaml", b"#" * (api.MAX_BODY + 1))


def test_a_plan_needs_a_current_state_when_no_simulator_is_configured() -> None:
    with pytest.raises(InvalidInput, match="no current state to compare with"):
        api.plan_request("application/yaml", VALID.encode(), simulator_url=None)


def test_a_plan_against_the_exported_current_state_in_the_body() -> None:
    body = json.dumps({"desiredState": VALID, "currentState": EXPORT}).encode()

    plan = api.plan_request("application/json", body, simulator_url=None)

    assert plan.target == "export in the request"
    assert (plan.count("add"), plan.count("change"), plan.count("remove")) == (7, 3, 3)


def test_a_plan_of_an_invalid_desired_state_raises_with_the_issues() -> None:
    body = json.dumps({"desiredState": {"version": 1, "colour": "red"}, "currentState": EXPORT}).encode()

    with pytest.raises(InvalidDesiredState) as caught:
        api.plan_request("application/json", body, simulator_url=None)

    assert caught.value.status == 400
    assert caught.value.extensions["errors"] == [
        {
            "severity": "error",
            "path": "colour",
            "message": "unknown field 'colour'; allowed fields here: applicationInstances, assignments, "
            "callingPolicies, jurisdictions, mustRecord, recordingPolicies, version",
        }
    ]


def test_publishing_stores_the_text_as_posted_and_writes_the_ledger() -> None:
    store = InMemoryDesiredStateStore()
    ledger_store = InMemoryLedgerStore()

    info = api.publish_request(
        "application/yaml",
        VALID.encode(),
        store,
        actor="admin@contoso.com",
        now=NOW,
        ledger=Ledger(ledger_store, "main", None),
    )

    assert store.published is not None and store.published.text == VALID
    assert info.must_record_groups == ["6f1c2a3b-0000-4000-8000-0000000000a1"]
    entry = ledger_store.read_entry("main", 1)
    assert entry is not None and entry.kind == "policy.published" and entry.actor == "admin@contoso.com"


def test_publishing_an_invalid_desired_state_keeps_the_previous_one() -> None:
    store = InMemoryDesiredStateStore()
    api.publish_request("application/yaml", VALID.encode(), store, actor=None, now=NOW, ledger=None)

    with pytest.raises(InvalidDesiredState):
        api.publish_request("application/yaml", b"version: 3\n", store, actor=None, now=NOW, ledger=None)

    assert store.published is not None and store.published.text == VALID


def test_the_effective_policy_query_needs_a_zoned_time() -> None:
    store = InMemoryPolicySnapshotStore()

    assert api.effective_at_request(store, "u-1", "2026-03-02T09:30:00Z", NOW).at == datetime(
        2026, 3, 2, 9, 30, tzinfo=UTC
    )
    assert api.effective_at_request(store, "u-1", None, NOW).at == NOW
    with pytest.raises(InvalidInput, match="time zone"):
        api.effective_at_request(store, "u-1", "2026-03-02T09:30:00", NOW)
    with pytest.raises(InvalidInput, match="ISO 8601"):
        api.effective_at_request(store, "u-1", "yesterday", NOW)
