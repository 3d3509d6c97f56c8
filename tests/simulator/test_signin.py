"""Sign-in as Entra ID does it for a single-page app (devstack/simulator/signin.py): the authorization code flow
with PKCE against the simulator's authorize and token endpoints, at the protocol level, and the compliance API's
own token validator accepting what it issues.

The requests and answers follow Microsoft's "Microsoft identity platform and OAuth 2.0 authorization code flow"
(MicrosoftDocs/entra-docs, docs/identity-platform/v2-oauth2-auth-code-flow.md): its example authorize request
(client_id, response_type=code, redirect_uri, response_mode, scope, state, code_challenge, S256), its token
request (client_id, scope, code, redirect_uri, grant_type, code_verifier) and refresh request, and the error
codes of "Microsoft Entra authentication and authorization error codes" (reference-error-codes.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.simulator.conftest import SimProcess
from tests.simulator.harness import CORA, TENANT_ID
from verbatim.platform.auth import TokenValidator

pytestmark = pytest.mark.integration

PORTAL_APP = "5e0c8b3a-7d41-4f2e-9a6b-1c2d3e4f5a60"
OSCAR = "6e5f7a81-92a3-4ebf-80d1-f4a5b6c7d107"
AUDE = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c03"
REDIRECT = "http://127.0.0.1:8123/api/portal/redirect.html"  # registered without a port: loopback matches any
ORIGIN = "http://127.0.0.1:8123"
API_SCOPE = "api://verbatim/user_impersonation"
SCOPES = f"{API_SCOPE} openid profile offline_access"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@pytest.fixture
def browser(sim_process: SimProcess) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects (the test reads each one)."""
    with httpx.Client(base_url=sim_process.https, verify=str(sim_process.ca_file), timeout=10) as client:
        yield client


def authorize(browser: httpx.Client, challenge: str, **extra: str) -> httpx.Response:
    params = {
        "client_id": PORTAL_APP,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "response_mode": "fragment",
        "scope": SCOPES,
        "state": "12345",
        "nonce": "abcde",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "client_info": "1",
        **extra,
    }
    return browser.get(f"/{TENANT_ID}/oauth2/v2.0/authorize", params={k: v for k, v in params.items() if v})


def choose(browser: httpx.Client, login_page: httpx.Response, user_id: str) -> dict[str, str]:
    """Pick a person on the login page; the code and the rest come back in the redirect URI's fragment."""
    pending = re.search(r'name="pending" value="([^"]+)"', login_page.text)
    assert pending, login_page.text[:500]
    answer = browser.post(f"/{TENANT_ID}/oauth2/v2.0/authorize", data={"pending": pending.group(1), "user": user_id})
    assert answer.status_code == 302, answer.text
    return fragment(answer)


def fragment(answer: httpx.Response) -> dict[str, str]:
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.fragment).items()}


def redeem(
    browser: httpx.Client, code: str, verifier: str, origin: str | None = ORIGIN, **extra: str
) -> httpx.Response:
    body = {
        "client_id": PORTAL_APP,
        "scope": SCOPES,
        "code": code,
        "redirect_uri": REDIRECT,
        "grant_type": "authorization_code",
        "code_verifier": verifier,
        "client_info": "1",
        **extra,
    }
    headers = {"Origin": origin} if origin else {}
    return browser.post(f"/{TENANT_ID}/oauth2/v2.0/token", data=body, headers=headers)


def signed_in(browser: httpx.Client, user_id: str = OSCAR) -> dict[str, Any]:
    verifier, challenge = pkce()
    page = authorize(browser, challenge, prompt="select_account")
    answer = redeem(browser, choose(browser, page, user_id)["code"], verifier)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def aad_code(answer: httpx.Response) -> int:
    body = answer.json()
    return int(body["error_codes"][0])


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_a_person_chosen_on_the_login_page_gets_api_tokens_with_their_roles(
    sim_process: SimProcess, browser: httpx.Client
) -> None:
    verifier, challenge = pkce()
    page = authorize(browser, challenge)
    assert page.status_code == 200 and "Pick an account" in page.text
    assert "Oscar Officer" in page.text and "Compliance.Officer" in page.text and "Compliance.Auditor" in page.text

    answer = choose(browser, page, OSCAR)
    assert answer["state"] == "12345" and answer["session_state"]
    info = json.loads(base64.urlsafe_b64decode(answer["client_info"] + "=="))
    assert info == {"uid": OSCAR, "utid": TENANT_ID}

    redeemed = redeem(browser, answer["code"], verifier)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.headers["access-control-allow-origin"] == ORIGIN
    tokens = redeemed.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3599
    assert set(tokens["scope"].split()) == set(SCOPES.split())
    assert tokens["refresh_token"] and 0 < tokens["refresh_token_expires_in"] <= 24 * 3600

    # The compliance API's validator (as the Function App runs it) accepts the access token: a person, delegated.
    validator = TokenValidator(
        openid_config_url=f"{sim_process.base}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        audiences=["api://verbatim"],
    )
    principal = validator.validate(tokens["access_token"])
    assert principal.subject == OSCAR and principal.roles == frozenset({"Compliance.Officer"})
    assert not principal.is_application
    access = claims_of(tokens["access_token"])
    assert access["azp"] == PORTAL_APP and access["azpacr"] == "0" and access["scp"] == "user_impersonation"
    assert access["iss"] == f"{sim_process.https}/{TENANT_ID}/v2.0"  # an https issuer, as MSAL.js requires

    identity = claims_of(tokens["id_token"])
    assert identity["aud"] == PORTAL_APP and identity["nonce"] == "abcde"
    assert identity["preferred_username"] == "oscar.officer@contoso.onmicrosoft.com"
    assert identity["sid"] == answer["session_state"]


def test_roles_come_from_the_api_app_role_assignments_of_each_person(browser: httpx.Client) -> None:
    assert claims_of(signed_in(browser, AUDE)["access_token"])["roles"] == ["Compliance.Auditor"]
    assert claims_of(signed_in(browser, CORA)["access_token"])["roles"] == ["Compliance.Officer"]  # through a group
    tom = claims_of(signed_in(browser, "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101")["access_token"])
    assert "roles" not in tom  # a trader holds no role on the compliance API


def test_a_code_is_single_use_bound_to_its_verifier_and_redeemed_only_cross_origin(browser: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = choose(browser, authorize(browser, challenge, prompt="login"), OSCAR)["code"]

    wrong = redeem(browser, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant" and aad_code(wrong) == 501481

    verifier, challenge = pkce()
    code = choose(browser, authorize(browser, challenge, prompt="login"), OSCAR)["code"]
    no_origin = redeem(browser, code, verifier, origin=None)
    assert no_origin.status_code == 400 and aad_code(no_origin) == 9002327

    verifier, challenge = pkce()
    code = choose(browser, authorize(browser, challenge, prompt="login"), OSCAR)["code"]
    with_secret = redeem(browser, code, verifier, client_secret="something")
    assert with_secret.status_code == 401 and aad_code(with_secret) == 700025
    assert redeem(browser, code, verifier).status_code == 200
    again = redeem(browser, code, verifier)
    assert again.status_code == 400 and aad_code(again) == 54005


def test_a_request_without_pkce_or_with_an_unknown_redirect_uri_is_refused(browser: httpx.Client) -> None:
    no_pkce = authorize(browser, "")
    assert no_pkce.status_code == 302
    answer = fragment(no_pkce)
    assert answer["error"] == "invalid_request" and answer["error_description"].startswith("AADSTS9002325")
    assert answer["state"] == "12345"

    # An unregistered redirect URI never receives anything: Entra shows the error itself.
    elsewhere = authorize(browser, pkce()[1], redirect_uri="https://evil.example/api/portal/redirect.html")
    assert elsewhere.status_code == 400 and "AADSTS50011" in elsewhere.text and "location" not in elsewhere.headers
    unknown_app = authorize(browser, pkce()[1], client_id="00000000-0000-0000-0000-000000000000")
    assert unknown_app.status_code == 400 and "AADSTS700016" in unknown_app.text
    other_scope = fragment(authorize(browser, pkce()[1], scope="api://other/read openid"))
    assert other_scope["error_description"].startswith("AADSTS65001")


def test_prompt_none_signs_in_from_the_session_and_needs_one(sim_process: SimProcess, browser: httpx.Client) -> None:
    verifier, challenge = pkce()
    silent = fragment(authorize(browser, challenge, prompt="none"))
    assert silent["error"] == "login_required" and silent["error_description"].startswith("AADSTS50058")

    signed_in(browser, OSCAR)  # keeps the session cookie
    verifier, challenge = pkce()
    again = fragment(authorize(browser, challenge, prompt="none"))
    tokens = redeem(browser, again["code"], verifier).json()
    assert claims_of(tokens["access_token"])["oid"] == OSCAR

    out = browser.get(f"/{TENANT_ID}/oauth2/v2.0/logout", params={"post_logout_redirect_uri": ORIGIN + "/api/portal/"})
    assert out.status_code == 302 and out.headers["location"] == ORIGIN + "/api/portal/"
    after = fragment(authorize(browser, pkce()[1], prompt="none"))
    assert after["error"] == "login_required"
    nowhere = browser.get(
        f"/{TENANT_ID}/oauth2/v2.0/logout", params={"post_logout_redirect_uri": "https://evil.example/"}
    )
    assert nowhere.status_code == 200 and "signed out" in nowhere.text


def test_a_refresh_token_renews_silently_and_expires_with_the_first_sign_in(
    sim_process: SimProcess, browser: httpx.Client
) -> None:
    tokens = signed_in(browser)
    body = {"client_id": PORTAL_APP, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    token_url = f"/{TENANT_ID}/oauth2/v2.0/token"
    renewed = browser.post(token_url, data={**body, "scope": SCOPES}, headers={"Origin": ORIGIN})
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert claims_of(fresh["access_token"])["roles"] == ["Compliance.Officer"]
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["refresh_token_expires_in"] <= tokens["refresh_token_expires_in"]  # the first one's expiry, kept
    assert browser.post(token_url, data=body).json()["error_codes"] == [9002327]  # cross-origin only

    httpx.patch(f"{sim_process.base}/sim/config", json={"spaRefreshTokenHours": 0.0001}).raise_for_status()
    try:
        short = signed_in(browser)
        import time

        time.sleep(0.5)  # past the 0.36 s lifetime
        expired = browser.post(
            token_url, data={**body, "refresh_token": short["refresh_token"]}, headers={"Origin": ORIGIN}
        )
        assert expired.status_code == 400 and aad_code(expired) == 700084
    finally:
        httpx.patch(f"{sim_process.base}/sim/config", json={"spaRefreshTokenHours": 24}).raise_for_status()


def test_authority_metadata_is_readable_cross_origin_and_names_the_flow(sim_process: SimProcess) -> None:
    config = httpx.get(
        f"{sim_process.https}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        verify=str(sim_process.ca_file),
        headers={"Origin": ORIGIN},
    )
    assert config.headers["access-control-allow-origin"] == "*"
    body = config.json()
    assert body["issuer"].startswith(sim_process.https)
    assert {"authorization_code", "refresh_token"} <= set(body["grant_types_supported"])
    assert (
        body["end_session_endpoint"].endswith("/oauth2/v2.0/logout")
        and "S256" in body["code_challenge_methods_supported"]
    )
