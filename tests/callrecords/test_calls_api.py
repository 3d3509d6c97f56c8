"""GET /api/v1/calls/{id} and GET /api/v1/calls through their triggers: real RS256 tokens, the Cosmos
emulator, roles enforced, and every read audited (a read that cannot be audited is refused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions import calls_api
from tests.callrecords.fake_graph import call_record
from tests.callrecords.fixtures import documented_record
from tests.callrecords.helpers import cosmos_items, get, handler
from tests.callrecords.oidc import AUDIENCE, OpenIdProvider, openid_provider
from verbatim.callrecords.normalise import normalise
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for

get_call = handler(calls_api.get_call)
list_calls = handler(calls_api.list_calls)


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture
def api_env(stack_env: Settings, provider: OpenIdProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("AUTH_OPENID_CONFIG_URL", provider.config_url)
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    settings = reload_settings()
    store = container_for(settings).callrecords.store
    raw = documented_record()
    store.save_if_newer(normalise(raw, tenant_id="t1"), raw)
    for n in range(3):
        other = call_record(f"c{n}", 1, users=("alice", "bob"))
        other["startDateTime"] = f"2024-05-0{n + 1}T09:00:00Z"
        store.save_if_newer(normalise(other), other)
    return settings


def access_events(settings: Settings) -> list[dict[str, object]]:
    return cosmos_items(settings, "audit", "SELECT * FROM c WHERE c.category = 'access'")


def test_an_officer_reads_a_normalised_call_record_and_the_read_is_audited(
    api_env: Settings, provider: OpenIdProvider
) -> None:
    token = provider.mint(roles=["Compliance.Officer"])

    response = get_call(get("v1/calls/x", token=token, route_params={"id": "e523d2ed-2966-4b6b-925b-754a88034cc5"}))

    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["id"] == "e523d2ed-2966-4b6b-925b-754a88034cc5" and body["type"] == "peerToPeer"
    assert body["organizer"]["displayName"] == "Abbie Wilkins"
    assert body["sessions"][0]["callee"]["feedbackRating"] == "poor"
    assert "raw" not in body
    (event,) = access_events(api_env)
    assert (event["action"], event["actor"], event["actorName"], event["target"]) == (
        "callrecord.read",
        "officer-oid",
        "Olivia Officer",
        "callrecord:e523d2ed-2966-4b6b-925b-754a88034cc5",
    )
    subject = "callrecord:e523d2ed-2966-4b6b-925b-754a88034cc5"
    (entry,) = [e for e in container_for(api_env).ledger.entries_for_subject(subject) if e.kind == "accessed"]
    assert entry.actor == "officer-oid"


def test_an_auditor_lists_calls_by_time_and_participant_with_paging(
    api_env: Settings, provider: OpenIdProvider
) -> None:
    token = provider.mint(roles=["Compliance.Auditor"])
    params = {"from": "2024-05-01T00:00:00Z", "to": "2024-06-01T00:00:00Z", "participant": "alice", "limit": "2"}

    first = json.loads(list_calls(get("v1/calls", token=token, params=params)).get_body())
    second = json.loads(
        list_calls(get("v1/calls", token=token, params={**params, "continuation": first["continuation"]})).get_body()
    )

    assert [c["id"] for c in first["items"]] == ["c2", "c1"]
    assert [c["id"] for c in second["items"]] == ["c0"] and second["continuation"] is None
    assert len(access_events(api_env)) == 2


def test_missing_or_insufficient_credentials_are_401_and_403(api_env: Settings, provider: OpenIdProvider) -> None:
    assert list_calls(get("v1/calls")).status_code == 401
    assert list_calls(get("v1/calls", token=provider.mint(aud="api://other"))).status_code == 401
    assert list_calls(get("v1/calls", token=provider.mint(roles=["Recorder.Admin"]))).status_code == 403
    assert access_events(api_env) == []


def test_bad_query_parameters_are_400_and_an_unknown_id_is_404(api_env: Settings, provider: OpenIdProvider) -> None:
    token = provider.mint()
    assert list_calls(get("v1/calls", token=token, params={"from": "yesterday"})).status_code == 400
    assert list_calls(get("v1/calls", token=token, params={"limit": "5000"})).status_code == 400
    assert (
        list_calls(
            get("v1/calls", token=token, params={"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"})
        ).status_code
        == 400
    )
    assert get_call(get("v1/calls/nope", token=token, route_params={"id": "nope"})).status_code == 404


def test_a_read_that_cannot_be_recorded_is_refused(
    api_env: Settings, provider: OpenIdProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verbatim.platform.audit import InMemoryAuditLog

    monkeypatch.setattr(container_for(api_env).access, "audit", InMemoryAuditLog(fail=True))

    response = get_call(get("v1/calls/c1", token=provider.mint(), route_params={"id": "c1"}))

    assert response.status_code == 503
