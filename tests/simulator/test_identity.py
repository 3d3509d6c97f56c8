"""Identity: MSAL gets Graph tokens from the simulator's HTTPS authority, tokens verify against the
published keys, Graph paths answer 401 without a token and 403 without the permission, dev logins
produce compliance-API user tokens, and platform tokens can be minted for bot-side rejection tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest
import requests

from tests.simulator.conftest import SimProcess
from tests.simulator.harness import (
    FUNCTIONS_APP,
    FUNCTIONS_SECRET,
    RECORDER_APP,
    RECORDER_SECRET,
    TENANT_ID,
    SimClient,
)

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]


def _verify(token: str, openid_url: str, audience: str, ca: Path | None = None) -> dict[str, Any]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca) if ca else True
    config = session.get(openid_url, timeout=5).json()
    keys = session.get(config["jwks_uri"], timeout=5).json()["keys"]
    header = jwt.get_unverified_header(token)
    key = next(jwt.PyJWK(k).key for k in keys if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=config["issuer"])
    return claims


def test_msal_client_credentials_work_against_the_simulator_authority(sim_process: SimProcess) -> None:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override session.verify
    session.verify = str(sim_process.ca_file)
    app = msal.ConfidentialClientApplication(
        FUNCTIONS_APP,
        client_credential=FUNCTIONS_SECRET,
        authority=f"{sim_process.https}/{TENANT_ID}",
        instance_discovery=False,
        http_client=session,
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    claims = _verify(
        result["access_token"],
        f"{sim_process.base}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        "https://graph.microsoft.com",
    )
    assert claims["tid"] == TENANT_ID and claims["appid"] == FUNCTIONS_APP
    assert "CallRecords.Read.All" in claims["roles"]
    cached = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert cached["access_token"] == result["access_token"]  # MSAL's cache serves the second call
    wrong = msal.ConfidentialClientApplication(
        FUNCTIONS_APP,
        client_credential="not-the-secret",
        authority=f"{sim_process.https}/{TENANT_ID}",
        instance_discovery=False,
        http_client=session,
    ).acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert wrong.get("error") == "invalid_client"


def test_graph_paths_need_a_valid_token_with_the_right_permission(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        status, error, headers = await sim.request("GET", "/v1.0/communications/callRecords")
        assert status == 401 and error["error"]["code"] == "InvalidAuthenticationToken"
        assert "Bearer" in headers["WWW-Authenticate"]
        status, error, _ = await sim.request("GET", "/v1.0/communications/callRecords", token="not.a.jwt")
        assert status == 401
        recorder = await sim.token(RECORDER_APP, RECORDER_SECRET)
        for path, role in (
            ("/v1.0/communications/callRecords", "CallRecords.Read.All"),
            ("/v1.0/groups/7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a01/transitiveMembers", "GroupMember.Read.All"),
            ("/v1.0/users", "User.Read.All"),
            (
                "/beta/admin/teams/policy/getPolicyId(type='TeamsComplianceRecordingPolicy',name='StrictRecording')",
                "TeamsPolicyUserAssign.ReadWrite.All",
            ),
        ):
            status, error, _ = await sim.request("GET", path, token=recorder)
            assert status == 403 and role in error["error"]["message"], (path, error)
        # a token for another audience is not a Graph token
        user = await sim.ok(
            "POST", "/sim/tokens", json={"sub": "cora", "name": "Cora", "roles": ["Compliance.Officer"]}
        )
        status, _, _ = await sim.request("GET", "/v1.0/users", token=user["access_token"])
        assert status == 401

    run(body)


def test_the_token_endpoint_rejects_bad_clients_grants_and_scopes(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        url = f"/{TENANT_ID}/oauth2/v2.0/token"
        base = {"grant_type": "client_credentials", "client_id": FUNCTIONS_APP, "client_secret": FUNCTIONS_SECRET}
        cases = [
            ({**base, "client_secret": "nope", "scope": "https://graph.microsoft.com/.default"}, 401, "invalid_client"),
            (
                {**base, "client_id": "unknown", "scope": "https://graph.microsoft.com/.default"},
                400,
                "unauthorized_client",
            ),
            (
                {**base, "grant_type": "password", "scope": "https://graph.microsoft.com/.default"},
                400,
                "unsupported_grant_type",
            ),
            ({**base, "scope": "User.Read"}, 400, "invalid_scope"),
        ]
        for form, status_expected, error_expected in cases:
            status, error, _ = await sim.request("POST", url, data=form)
            assert (status, error["error"]) == (status_expected, error_expected)
            assert error["error_description"].startswith("AADSTS")
        status, _, _ = await sim.request("POST", "/not-the-tenant/oauth2/v2.0/token", data=base)
        assert status == 400

    run(body)


def test_dev_login_tokens_verify_for_the_compliance_api(run: Run, sim_process: SimProcess) -> None:
    async def body(sim: SimClient) -> None:
        token = await sim.ok(
            "POST",
            "/sim/tokens",
            json={"sub": "cora.compliance@contoso.onmicrosoft.com", "name": "Cora", "roles": ["Recordings.Read"]},
        )
        claims = await asyncio.to_thread(
            _verify,
            token["access_token"],
            f"{sim_process.base}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            "api://verbatim",
        )
        assert claims["roles"] == ["Recordings.Read"] and claims["name"] == "Cora" and claims["tid"] == TENANT_ID
        status, error, _ = await sim.request("POST", "/sim/tokens", json={"name": "no subject"})
        assert status == 400 and error["title"] == "BadRequest"

    run(body)


def test_platform_tokens_for_bot_rejection_tests_carry_what_was_asked(run: Run, sim_process: SimProcess) -> None:
    async def body(sim: SimClient) -> None:
        minted = await sim.ok("POST", "/sim/platform-tokens", json={"aud": RECORDER_APP, "expiresInSeconds": -60})
        openid = f"{sim_process.base}/platform/v1/.well-known/OpenIdConfiguration"
        with pytest.raises(jwt.ExpiredSignatureError):
            await asyncio.to_thread(_verify, minted["token"], openid, RECORDER_APP)
        fresh = await sim.ok("POST", "/sim/platform-tokens", json={"aud": "some-other-bot"})
        with pytest.raises(jwt.InvalidAudienceError):
            await asyncio.to_thread(_verify, fresh["token"], openid, RECORDER_APP)

    run(body)


# --- DNS rebinding (issue 13, finding 12) ------------------------------------------------------------------
# A web page the developer opens can rebind its own name to 127.0.0.1 and then POST to the simulator as a
# same-origin request; what tells it apart is the Host header, which carries the page's name. The simulator's
# own routes (token minting included) answer only requests addressed to a loopback name or its own host.


@pytest.mark.parametrize("path", ["/sim/tokens", "/sim/platform-tokens", "/sim/reset"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:7300", "127.0.0.1.evil.example", "localhost.evil"])
def test_simulator_routes_refuse_a_rebound_host_name(sim_process: SimProcess, path: str, host: str) -> None:
    body = {"sub": "cora", "name": "Cora", "roles": ["Compliance.Officer"], "aud": "x"}
    response = httpx.post(f"{sim_process.base}{path}", json=body, headers={"Host": host}, timeout=10)
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "access_token" not in response.text and "token" not in response.json()
    assert "Host" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:1234", "[::1]:80"])
def test_simulator_token_route_answers_loopback_names(sim_process: SimProcess, host: str) -> None:
    body = {"sub": "cora", "name": "Cora", "roles": ["Compliance.Officer"]}
    response = httpx.post(f"{sim_process.base}/sim/tokens", json=body, headers={"Host": host}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]
