"""Local development sign-in for the portal: `POST /api/v1/dev/token` asks the Teams/Graph simulator's
`/sim/tokens` for a user token with the chosen app roles and hands it to the browser.

It exists only when VERBATIM_ENVIRONMENT is `local` and POLICY_SIMULATOR_URL (the simulator the devstack
runs) is set; anywhere else it answers 404. The token is a real signed token of the simulator's Entra-like
issuer, validated by the API like any other.

Only requests addressed to a loopback name are served (403 otherwise): a page in the developer's browser can
point its own name at 127.0.0.1 (DNS rebinding) and call the local host from its own origin, but its Host header
still carries that name (issue 13, finding 12).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from pydantic import Field

from verbatim.contracts.callrecords import CamelContract
from verbatim.platform.auth import APP_ROLES
from verbatim.platform.errors import DependencyUnavailable, Forbidden, InvalidInput, NotFound
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


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def dev_login_enabled(settings: Settings) -> bool:
    return settings.environment == "local" and bool(settings.policy_simulator_url)


def check_dev_login(settings: Settings, host: str | None) -> None:
    """404 where dev sign-in does not exist; 403 for a request addressed to a name that is not loopback."""
    if not dev_login_enabled(settings):
        raise NotFound("dev sign-in exists only in the local devstack")
    try:
        name = urlsplit(f"//{host}").hostname if host else None
    except ValueError:
        name = None
    if name is None or name.lower() not in LOOPBACK_NAMES:
        raise Forbidden(f"dev sign-in answers only requests to a loopback name, not Host {str(host)[:100]!r}")


def dev_token(
    settings: Settings, request: DevLoginRequest, host: str | None, http: httpx.Client | None = None
) -> DevLoginToken:
    check_dev_login(settings, host)
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
