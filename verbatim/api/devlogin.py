"""Local development sign-in for the portal: `POST /api/v1/dev/token` asks the Teams/Graph simulator's
`/sim/tokens` for a user token with the chosen app roles and hands it to the browser.

It exists only when VERBATIM_ENVIRONMENT is `local` and POLICY_SIMULATOR_URL (the simulator the devstack
runs) is set; anywhere else it answers 404. The token is a real signed token of the simulator's Entra-like
issuer, validated by the API like any other.
"""

from __future__ import annotations

import httpx
from pydantic import Field

from verbatim.contracts.callrecords import CamelContract
from verbatim.platform.auth import APP_ROLES
from verbatim.platform.errors import DependencyUnavailable, InvalidInput, NotFound
from verbatim.platform.settings import Settings


class DevLoginRequest(CamelContract):
    roles: list[str] = Field(default_factory=lambda: ["Compliance.Officer"], max_length=3)
    name: str = Field(default="Dev Officer", min_length=1, max_length=100)
    subject: str = Field(default="dev-officer", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class DevLoginToken(CamelContract):
    access_token: str
    expires_in: int
    roles: list[str]
    subject: str
    name: str


def dev_login_enabled(settings: Settings) -> bool:
    return settings.environment == "local" and bool(settings.policy_simulator_url)


def dev_token(settings: Settings, request: DevLoginRequest, http: httpx.Client | None = None) -> DevLoginToken:
    if not dev_login_enabled(settings):
        raise NotFound("dev sign-in exists only in the local devstack")
    unknown = sorted(set(request.roles) - set(APP_ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles: {', '.join(unknown)}")
    body = {"sub": request.subject, "oid": request.subject, "name": request.name, "roles": request.roles}
    url = f"{str(settings.policy_simulator_url).rstrip('/')}/sim/tokens"
    try:
        client = http or httpx.Client(timeout=10.0)
        response = client.post(url, json=body)
        response.raise_for_status()
        token = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise DependencyUnavailable(f"the simulator did not issue a token: {error}") from error
    return DevLoginToken(
        access_token=str(token["access_token"]),
        expires_in=int(token.get("expires_in", 3600)),
        roles=request.roles,
        subject=request.subject,
        name=request.name,
    )
