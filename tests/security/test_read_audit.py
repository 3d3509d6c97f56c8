"""Finding 4 of issue 13: every read is on the record.

The registered routes of function_app.py are enumerated: every route that reads data (each GET under
/api/v1, and the POSTs that answer with data) must be in READS below — a new read route without an entry
fails `test_every_read_route_is_listed` — and each is called on the local Functions host by a principal of
its own, after which an `access` audit record of that principal must exist. Searches and lists record the
ids they returned; `audit.read` records every filter; Recorder.Admin gets counts and states, never names.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.testkit.records import T0, TRADER
from tests.security.conftest import ADMIN, AUDITOR, OFFICER, REASON, Stack
from verbatim.platform import layout
from verbatim.wiring import container_for

# Read by nobody's data: the API's own description, and who the caller's own token names.
NOT_DATA = {("GET", "v1/openapi.json"), ("POST", "v1/dev/token"), ("GET", "v1/me")}
# POST routes that answer with data another principal could not otherwise see.
POST_READS = {
    "v1/data-subjects/search",
    "v1/admin/reconciliation/calls/{id}",
    "v1/policy/coverage/audit",
    "v1/exports/{id}/link",
    "v1/exports/{id}/parts/{name}/link",
}


@dataclass(frozen=True)
class Read:
    role: str
    params: Callable[[Stack, dict[str, str]], dict[str, str]] = lambda stack, made: {}
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Callable[[Stack], dict[str, Any]] | None = None
    nothing_to_read: bool = False  # the call finds nothing (404), so there is no read to record


def _recording(stack: Stack, made: dict[str, str]) -> dict[str, str]:
    assert stack.world.sealed is not None
    return {"id": stack.world.sealed.recording_id}


def _call(stack: Stack, made: dict[str, str]) -> dict[str, str]:
    assert stack.world.sealed is not None
    return {"id": stack.world.sealed.call_id}


def _hold(stack: Stack, made: dict[str, str]) -> dict[str, str]:
    return {"id": made["hold"]}


READS: dict[tuple[str, str], Read] = {
    ("GET", "v1/recordings"): Read(OFFICER),
    ("GET", "v1/recordings/{id}"): Read(OFFICER, _recording),
    ("GET", "v1/recordings/{id}/media"): Read(OFFICER, _recording, headers={**REASON, "Range": "bytes=0-99"}),
    ("GET", "v1/verdicts"): Read(OFFICER),
    ("GET", "v1/reports/completeness"): Read(AUDITOR),
    ("GET", "v1/reports/completeness/{day}"): Read(AUDITOR, lambda stack, made: {"day": T0.date().isoformat()}),
    ("GET", "v1/ledger"): Read(AUDITOR, query={"from": "1", "to": "5"}),
    ("GET", "v1/ledger/checkpoint"): Read(AUDITOR),
    ("GET", "v1/ledger/checkpoints/{size}"): Read(AUDITOR, lambda stack, made: {"size": "1"}),
    ("GET", "v1/ledger/entries/{index}"): Read(AUDITOR, lambda stack, made: {"index": "0"}),
    ("GET", "v1/ledger/entries/{index}/proof"): Read(
        AUDITOR, lambda stack, made: {"index": "0"}, headers={"Accept": "application/json"}
    ),
    ("GET", "v1/ledger/consistency"): Read(AUDITOR, query={"from": "1"}),
    ("GET", "v1/ledger/tile/{*path}"): Read(AUDITOR, lambda stack, made: {"*path": "entries/000.p/1"}),
    ("GET", "v1/live"): Read(OFFICER),
    ("GET", "v1/policy/desired-state"): Read(ADMIN),
    ("GET", "v1/exports"): Read(OFFICER, headers=REASON),
    ("GET", "v1/exports/{id}"): Read(OFFICER, lambda stack, made: {"id": "exp-nothing"}, headers=REASON),
    # No export of that id: nothing exists to read, and the 404 needs no record (a real download is recorded:
    # tests/exports).
    ("GET", "v1/exports/{id}/package"): Read(
        OFFICER, lambda stack, made: {"id": "exp-nothing"}, headers=REASON, nothing_to_read=True
    ),
    # A link to a package is a download (recorded as one: tests/exports); no export of that id, nothing to read.
    ("POST", "v1/exports/{id}/link"): Read(
        OFFICER, lambda stack, made: {"id": "exp-nothing"}, headers=REASON, nothing_to_read=True
    ),
    # What to download, a part of it, a link to a part: no export of that id, nothing to read (a real multi-part
    # export's list, parts and their downloads are recorded: tests/exports/test_export_host.py).
    ("GET", "v1/exports/{id}/parts"): Read(
        OFFICER, lambda stack, made: {"id": "exp-nothing"}, headers=REASON, nothing_to_read=True
    ),
    ("GET", "v1/exports/{id}/parts/{name}"): Read(
        OFFICER,
        lambda stack, made: {"id": "exp-nothing", "name": "part-0001.zip"},
        headers=REASON,
        nothing_to_read=True,
    ),
    ("POST", "v1/exports/{id}/parts/{name}/link"): Read(
        OFFICER,
        lambda stack, made: {"id": "exp-nothing", "name": "part-0001.zip"},
        headers=REASON,
        nothing_to_read=True,
    ),
    ("GET", "v1/chats"): Read(OFFICER, query={"participant": TRADER}),
    ("GET", "v1/chat-search"): Read(OFFICER, query={"q": "hello"}),
    ("GET", "v1/chats/{id}"): Read(OFFICER, lambda stack, made: {"id": "19:nothing@thread.v2"}),
    ("GET", "v1/chats/{id}/verification"): Read(OFFICER, lambda stack, made: {"id": "19:nothing@thread.v2"}),
    ("GET", "v1/recordings/{id}/chat"): Read(OFFICER, _recording),
    ("GET", "v1/audit"): Read(AUDITOR, query={"category": "access", "action": "recording.read", "target": "x"}),
    ("GET", "v1/calls"): Read(OFFICER),
    ("GET", "v1/calls/{id}"): Read(OFFICER, _call),
    ("GET", "v1/holds"): Read(OFFICER),
    ("GET", "v1/holds/{id}"): Read(AUDITOR, _hold),
    ("GET", "v1/holds/{id}/recordings"): Read(AUDITOR, _hold),
    ("GET", "v1/policy/coverage"): Read(ADMIN),
    ("GET", "v1/policy/coverage/users"): Read(OFFICER),
    # Runs an audit and answers its report (201), or 409 when one ran minutes ago: the read is recorded first.
    ("POST", "v1/policy/coverage/audit"): Read(ADMIN),
    ("GET", "v1/policy/effective/{userId}"): Read(ADMIN, lambda stack, made: {"userId": TRADER}),
    ("GET", "v1/retention/classes"): Read(OFFICER),
    ("GET", "v1/retention/recordings/{id}"): Read(OFFICER, _recording),
    ("GET", "v1/retention/reports/expiring"): Read(AUDITOR, query={"days": "3660"}),
    ("GET", "v1/retention/reports/holds"): Read(AUDITOR),
    ("GET", "v1/retention/reports/deletions"): Read(
        AUDITOR, query={"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
    ),
    ("POST", "v1/data-subjects/search"): Read(
        OFFICER, body=lambda stack: {"subject": {"userId": TRADER}, "requestId": f"dsr-{uuid.uuid4().hex[:8]}"}
    ),
    ("POST", "v1/admin/reconciliation/calls/{id}"): Read(ADMIN, _call),
}


@functools.cache
def registered_routes() -> frozenset[tuple[str, str]]:
    """(method, route) of every HTTP trigger function_app.py registers (the app can be listed once per process:
    azure-functions checks function names against those it has seen)."""
    from function_app import app

    routes: set[tuple[str, str]] = set()
    for function in app.get_functions():
        trigger = function.get_trigger()
        route = getattr(trigger, "route", None)
        for method in getattr(trigger, "methods", None) or []:
            if route:
                routes.add((str(getattr(method, "value", method)).upper(), route))
    return frozenset(routes)


def read_routes() -> set[tuple[str, str]]:
    return {
        (method, route)
        for method, route in registered_routes()
        if route.startswith("v1/")
        and (method, route) not in NOT_DATA
        and (method == "GET" or (method == "POST" and route in POST_READS))
    }


def test_every_read_route_is_listed() -> None:
    assert read_routes() == set(READS), "a read route without an audit check (add it to READS)"


@pytest.fixture(scope="module")
def made(stack: Stack) -> dict[str, str]:
    assert stack.world.sealed is not None
    hold = stack.request(
        "POST",
        "/v1/holds",
        stack.token(OFFICER, subject="hold-maker"),
        json={"matterId": "M-13", "description": "issue 13 reads", "custodians": [TRADER]},
    )
    assert hold.status_code == 201, hold.text
    # A coverage audit to read (409: the timer ran one moments ago).
    audit = stack.request("POST", "/v1/policy/coverage/audit", stack.token(ADMIN, subject="coverage-auditor"))
    assert audit.status_code in (201, 409), audit.text
    return {"hold": hold.json()["hold"]["id"]}


def _access_records(stack: Stack, actor: str) -> list[dict[str, Any]]:
    audit = container_for(stack.settings).cosmos(layout.AUDIT)
    return list(
        audit.query_items(
            "SELECT * FROM c WHERE c.category = 'access' AND c.actor = @actor",
            parameters=[{"name": "@actor", "value": actor}],
            enable_cross_partition_query=True,
        )
    )


def _call_route(stack: Stack, made: dict[str, str], key: tuple[str, str], actor: str) -> Any:
    method, route = key
    spec = READS[key]
    path = "/" + route
    for name, value in spec.params(stack, made).items():
        path = path.replace("{" + name + "}", value)
    token = stack.token(spec.role, subject=actor)
    body = spec.body(stack) if spec.body else None
    return stack.request(method, path, token, params=spec.query, headers=spec.headers, json=body)


@pytest.mark.parametrize("key", sorted(READS), ids=lambda key: f"{key[0]} {key[1]}")
def test_every_read_route_writes_an_access_record(stack: Stack, made: dict[str, str], key: tuple[str, str]) -> None:
    actor = f"reader-{uuid.uuid4().hex[:10]}"
    response = _call_route(stack, made, key, actor)
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 201, 206, 404, 409), response.text
    records = _access_records(stack, actor)
    if READS[key].nothing_to_read:
        assert response.status_code == 404, response.text
        return
    assert records, f"{key}: no access record for {actor}"
    assert all(record["actor"] == actor for record in records)


def test_searches_and_lists_record_the_ids_they_returned(stack: Stack, made: dict[str, str]) -> None:
    checks = {
        ("GET", "v1/verdicts"): lambda body: [v["id"] for v in body["items"]],
        ("GET", "v1/calls"): lambda body: [c["id"] for c in body["items"]],
        ("GET", "v1/holds"): lambda body: [h["id"] for h in body["items"]],
        ("GET", "v1/holds/{id}/recordings"): lambda body: [r["recordingId"] for r in body["items"]],
        ("POST", "v1/data-subjects/search"): lambda body: [r["recordingId"] for r in body["recordings"]],
        ("GET", "v1/retention/reports/expiring"): lambda body: [
            r["recordingId"] for c in body["classes"] for r in c["recordings"]
        ],
    }
    for key, ids_of in checks.items():
        actor = f"lister-{uuid.uuid4().hex[:10]}"
        response = _call_route(stack, made, key, actor)
        assert response.status_code == 200, (key, response.text)
        returned = ids_of(response.json())
        (record,) = _access_records(stack, actor)
        assert record["detail"]["results"] == returned, key


def test_reading_the_audit_trail_records_every_filter(stack: Stack) -> None:
    actor = f"auditor-{uuid.uuid4().hex[:10]}"
    query = {"day": T0.date().isoformat(), "category": "security", "action": "evidence.tampered", "target": "x"}
    response = stack.get("/v1/audit", stack.token(AUDITOR, subject=actor), params={**query, "limit": "7"})
    assert response.status_code == 200, response.text
    (record,) = _access_records(stack, actor)
    assert record["detail"]["filters"] == {**query, "limit": 7}


def test_recorder_admin_gets_counts_and_states_of_a_reevaluated_call_and_the_read_is_recorded(
    stack: Stack, made: dict[str, str]
) -> None:
    actor = f"admin-{uuid.uuid4().hex[:10]}"
    response = _call_route(stack, made, ("POST", "v1/admin/reconciliation/calls/{id}"), actor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"callId", "found", "changed", "verdicts", "states"}
    assert isinstance(body["verdicts"], int) and body["verdicts"] >= 1
    assert set(body["states"]) <= {"recorded", "partial", "missing", "pending"}
    text = response.text
    assert stack.world.sealed is not None and TRADER not in text and "Tom" not in text and "upn" not in text.lower()
    (record,) = _access_records(stack, actor)
    assert record["action"] == "reconciliation.reevaluate"
