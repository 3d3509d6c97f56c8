"""Finding 10 of issue 13 (and the HTTP side of finding 5), on the local Functions host: every bad input the
review found is a 4xx problem+json with a reason, never a 500 — a Range header of thousands of digits, `limit=²`
(Python's isdigit says yes, int() says no), ledger positions beyond int()'s 4,300 digits, continuation tokens we
never issued, JSON nested a hundred thousand deep on Graph's webhook, a YAML alias bomb on the policy routes.
Anonymous `/api/health` says healthy or not and nothing else; the details (never an exception's text) are for a
caller with an app role; `X-Forwarded-For` is not believed unless configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.emulators import REPO_ROOT
from devstack.processes import free_port
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from tests.security.conftest import ADMIN, AUDITOR, OFFICER, REASON, Stack
from tests.security.test_yaml_limits import SELF_REFERENCE, alias_bomb
from verbatim.platform import layout
from verbatim.wiring import container_for

HUGE = "9" * 5000


def _problem(response: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code and body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    "header",
    [f"bytes={HUGE}-", f"bytes=0-{HUGE}", f"bytes=-{HUGE}", "bytes=٣-٤", "bytes=²-"],
    ids=["huge-first", "huge-last", "huge-suffix", "arabic-indic-digits", "superscript"],
)
def test_a_range_header_of_thousands_of_digits_is_never_a_500(stack: Stack, header: str) -> None:
    assert stack.world.sealed is not None
    media = f"/v1/recordings/{stack.world.sealed.recording_id}/media?copy=access"
    # Sent as UTF-8 bytes: a client can put anything on the wire.
    response = stack.get(media, stack.token(OFFICER), headers={**REASON, "Range": header.encode()})
    if header.startswith(f"bytes={HUGE}"):
        _problem(response, 416)
        assert response.headers["Content-Range"].startswith("bytes */")
    else:
        assert response.status_code in (200, 206), response.text[:200]  # unusable or open-ended: served in parts


@pytest.mark.parametrize(
    ("path", "role", "params"),
    [
        ("/v1/recordings", OFFICER, {"limit": "²"}),
        ("/v1/recordings", OFFICER, {"limit": HUGE}),
        ("/v1/verdicts", OFFICER, {"limit": "٣"}),
        ("/v1/calls", OFFICER, {"limit": "²"}),
        ("/v1/audit", AUDITOR, {"limit": "²"}),
        ("/v1/ledger", AUDITOR, {"from": HUGE}),
        ("/v1/ledger", AUDITOR, {"to": HUGE}),
        ("/v1/ledger", AUDITOR, {"from": "²"}),
        ("/v1/recordings", OFFICER, {"continuation": "bm90IG91cnM="}),
        ("/v1/calls", OFFICER, {"continuation": "%%%"}),
        ("/v1/calls", OFFICER, {"continuation": "bm90IG91cnM="}),
        ("/v1/verdicts", OFFICER, {"continuation": "bm90IG91cnM="}),
        ("/v1/audit", AUDITOR, {"continuation": "bm90IG91cnM="}),
    ],
)
def test_bad_numbers_and_foreign_continuations_are_400(
    stack: Stack, path: str, role: str, params: dict[str, str]
) -> None:
    _problem(stack.get(path, stack.token(role), params=params, headers=REASON), 400)


def test_json_nested_a_hundred_thousand_deep_on_the_graph_webhook_is_400(stack: Stack) -> None:
    body = '{"value": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = httpx.post(
        f"{stack.api}/graph/notifications",
        content=body,
        params={"code": stack.host.function_key},
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert "nests deeper" in _problem(response, 400)["detail"]


@pytest.mark.parametrize("route", ["/v1/policy/validate", "/v1/policy/plan"])
@pytest.mark.parametrize("document", [alias_bomb(7), SELF_REFERENCE], ids=["seven-level-bomb", "self-reference"])
def test_a_yaml_alias_bomb_on_the_policy_routes_is_400_at_once(stack: Stack, route: str, document: str) -> None:
    response = stack.request(
        "POST", route, stack.token(ADMIN), content=document, headers={"Content-Type": "application/yaml"}
    )
    assert "anchors and aliases are not allowed" in str(_problem(response, 400))


def test_a_yaml_alias_bomb_cannot_be_published(stack: Stack) -> None:
    response = stack.request(
        "PUT",
        "/v1/policy/desired-state",
        stack.token(ADMIN),
        content=alias_bomb(7),
        headers={"Content-Type": "application/yaml"},
    )
    _problem(response, 400)


def test_anonymous_health_says_healthy_and_nothing_else(stack: Stack) -> None:
    response = httpx.get(f"{stack.api}/health", timeout=60)
    assert response.status_code == 200
    assert response.json() == {"schema_version": 1, "status": "healthy"}


def test_health_details_need_an_app_role_and_report_the_unlocked_evidence_store(stack: Stack) -> None:
    detailed = httpx.get(
        f"{stack.api}/health", headers={"Authorization": f"Bearer {stack.token(OFFICER)}"}, timeout=60
    ).json()
    assert set(detailed["dependencies"]) == {"blob", "queue", "table", "cosmos"}
    assert detailed["evidence_store"]["worm"] == "not_locked"  # Azurite keeps no WORM policy
    assert detailed["warnings"] == ["evidence store not locked"]
    no_role = httpx.get(f"{stack.api}/health", headers={"Authorization": f"Bearer {stack.token()}"}, timeout=60)
    _problem(no_role, 403)
    garbage = httpx.get(f"{stack.api}/health", headers={"Authorization": "Bearer not-a-jwt"}, timeout=60)
    _problem(garbage, 401)


@pytest.fixture(scope="module")
def broken_host(
    azurite_service: Azurite, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHost]:
    """The same app with its Cosmos account unreachable."""
    launcher = HostLauncher(azurite_service, tmp_path_factory.mktemp("broken-host"))
    try:
        yield launcher.start(REPO_ROOT, env={**stack.env, "COSMOS_ENDPOINT": f"https://127.0.0.1:{free_port()}"})
    finally:
        launcher.stop_all()


def test_a_dependency_down_is_503_and_no_exception_text_reaches_anyone(stack: Stack, broken_host: RunningHost) -> None:
    url = f"{broken_host.base_url}/api/health"
    anonymous = httpx.get(url, timeout=120)
    assert anonymous.status_code == 503 and anonymous.json() == {"schema_version": 1, "status": "unhealthy"}
    detailed = httpx.get(url, headers={"Authorization": f"Bearer {stack.token(ADMIN)}"}, timeout=120)
    assert detailed.status_code == 503
    cosmos = detailed.json()["dependencies"]["cosmos"]
    assert cosmos["status"] == "down"
    assert cosmos["detail"].isidentifier()  # an exception type, e.g. ServiceRequestError
    assert "127.0.0.1" not in detailed.text and "Errno" not in detailed.text


def test_x_forwarded_for_is_not_believed_by_default(stack: Stack) -> None:
    marker = f"sub-{uuid.uuid4().hex[:8]}"
    notification = {
        "value": [
            {
                "subscriptionId": marker,
                "clientState": "not-our-secret",
                "changeType": "created",
                "resource": "communications/callRecords/2f1a1100-b174-40a0-aba7-0b405e01ed92",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.callrecord",
                    "@odata.id": "communications/callRecords/2f1a1100-b174-40a0-aba7-0b405e01ed92",
                    "id": "2f1a1100-b174-40a0-aba7-0b405e01ed92",
                },
                "tenantId": stack.simulator.tenant_id,
            }
        ]
    }
    response = httpx.post(
        f"{stack.api}/graph/notifications",
        json=notification,
        params={"code": stack.host.function_key},
        headers={"X-Forwarded-For": "203.0.113.66, 198.51.100.7"},
        timeout=60,
    )
    assert response.status_code < 500
    audit = container_for(stack.settings).cosmos(layout.AUDIT)
    rejected = [
        record
        for record in audit.query_items(
            "SELECT * FROM c WHERE c.category = 'security'", enable_cross_partition_query=True
        )
        if marker in str(record)
    ]
    assert rejected, "the rejected notification is a security record"
    assert all("203.0.113.66" not in str(record) and "198.51.100.7" not in str(record) for record in rejected)
