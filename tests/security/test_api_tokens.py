"""Findings 8 and 9 of issue 13, on the local Functions host with the simulator as the Entra-like issuer.

8: a legal-hold release needs two different *people*: an application's token (client credentials, here the
demo tenant's "Compliance Automation" with the Compliance.Officer application permission) can neither request
nor approve it, whoever does the other step.

9: the token validator accepts only access tokens of the tenants it serves. Entra signs every tenant's tokens
with the same keys and its multi-tenant metadata names the issuer `.../{tenantid}/v2.0`, so a token of any
tenant verified against it; and an ID token (audience = the app's client id, which AUTH_AUDIENCE lists) passed
as an access token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.emulators import REPO_ROOT
from devstack.testkit.records import TRADER
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from tests.security.conftest import AUDITOR, OFFICER, REASON, Stack

AUTOMATION_ID = "5c2e8a41-7d93-4b1f-a6e0-3f9b2c8d7e14"
AUTOMATION_SECRET = "sim-automation-local-only"  # the local simulator's demo tenant only
OTHER_TENANT = "0b0e1c2d-0000-4000-8000-00000000f00d"


def _app_token(stack: Stack) -> str:
    """A real client-credentials token for our API, from the simulator's token endpoint (as MSAL gets one)."""
    tenant = stack.simulator.tenant_id
    response = httpx.post(
        f"{stack.simulator.https_url}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": AUTOMATION_ID,
            "client_secret": AUTOMATION_SECRET,
            "scope": f"{stack.simulator.api_audience}/.default",
        },
        verify=stack.simulator.ca_file,
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _hold(stack: Stack, officer: str) -> str:
    response = stack.request(
        "POST",
        "/v1/holds",
        officer,
        json={"matterId": f"M-{uuid.uuid4().hex[:6]}", "description": "four eyes", "custodians": [TRADER]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["hold"]["id"])


def _release(stack: Stack, hold: str, token: str, step: str) -> httpx.Response:
    path = f"/v1/holds/{hold}/release" + ("/approve" if step == "approve" else "")
    return stack.request("POST", path, token, json={"reason": "matter closed"})


def test_an_application_token_can_read_as_an_officer_but_not_release_a_hold(stack: Stack) -> None:
    app = _app_token(stack)
    assert stack.get("/v1/holds", app).status_code == 200  # the permission works for reading
    ada = stack.token(OFFICER, subject=f"ada-{uuid.uuid4().hex[:6]}")

    # A person requests, the application approves: refused, the hold stays.
    hold = _hold(stack, ada)
    assert _release(stack, hold, ada, "request").status_code == 202
    approved = _release(stack, hold, app, "approve")
    assert approved.status_code == 403, approved.text
    assert "sign in as yourself" in approved.json()["detail"]
    assert stack.get(f"/v1/holds/{hold}", ada).json()["hold"]["status"] == "active"

    # The application requests: refused before anything is asked.
    other = _hold(stack, ada)
    requested = _release(stack, other, app, "request")
    assert requested.status_code == 403, requested.text
    assert stack.get(f"/v1/holds/{other}", ada).json()["hold"].get("releaseRequest") is None


def test_two_different_people_still_release_a_hold(stack: Stack) -> None:
    ada = stack.token(OFFICER, subject=f"ada-{uuid.uuid4().hex[:6]}")
    bob = stack.token(OFFICER, subject=f"bob-{uuid.uuid4().hex[:6]}")
    hold = _hold(stack, ada)
    assert _release(stack, hold, ada, "request").status_code == 202
    assert _release(stack, hold, ada, "approve").status_code == 403  # the same person twice
    released = _release(stack, hold, bob, "approve")
    assert released.status_code == 200, released.text
    assert released.json()["hold"]["status"] == "released"


def test_an_id_token_is_not_an_access_token_even_with_our_audience_and_roles(stack: Stack) -> None:
    id_token = stack.token(AUDITOR, tokenType="id")
    response = stack.get("/v1/audit", id_token, headers=REASON)
    assert response.status_code == 401, response.text
    assert "not an access token" in response.json()["detail"]
    assert stack.get("/v1/audit", stack.token(AUDITOR), headers=REASON).status_code == 200


@pytest.fixture(scope="module")
def multi_tenant_host(
    azurite_service: Azurite, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHost]:
    """The same app with Entra's multi-tenant metadata (`/common/...`), our tenant allowed."""
    launcher = HostLauncher(azurite_service, tmp_path_factory.mktemp("multi-tenant-host"))
    env = {
        **stack.env,
        "AUTH_OPENID_CONFIG_URL": f"{stack.simulator.http_url}/common/v2.0/.well-known/openid-configuration",
        "AUTH_TENANT_IDS": stack.simulator.tenant_id,
    }
    try:
        yield launcher.start(REPO_ROOT, env=env)
    finally:
        launcher.stop_all()


def test_a_multi_tenant_issuer_accepts_only_the_allowed_tenants(stack: Stack, multi_tenant_host: RunningHost) -> None:
    url = f"{multi_tenant_host.base_url}/api/v1/audit"
    ours = stack.token(AUDITOR)
    foreign = stack.token(AUDITOR, subject="intruder", tid=OTHER_TENANT)
    assert httpx.get(url, headers={"Authorization": f"Bearer {ours}", **REASON}, timeout=60).status_code == 200
    refused = httpx.get(url, headers={"Authorization": f"Bearer {foreign}", **REASON}, timeout=60)
    assert refused.status_code == 401, refused.text
    assert "tenant" in refused.json()["detail"]
