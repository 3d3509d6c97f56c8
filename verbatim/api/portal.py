"""What the compliance portal needs before anyone signs in: its sign-in configuration (`config.json`) and the
Content-Security-Policy its files are served with.

The portal signs people in with MSAL.js (the authorization code flow with PKCE; `portal/js/auth.js`) against the
Entra authority of `PORTAL_AUTHORITY` — Entra ID in Azure, the Teams/Graph simulator's Entra-like issuer on the
local stack — for the API scope `PORTAL_API_SCOPE`. The policy lets the page talk to that authority (metadata and
token requests, `connect-src`) and frame it (MSAL's silent renewal, `frame-src`); nothing else leaves the origin.
The token box (pasting an access token) is offered only on the local stack.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from verbatim.contracts.callrecords import CamelContract
from verbatim.platform.settings import Settings

DEFAULT_SCOPE = "user_impersonation"


class SignInConfig(CamelContract):
    client_id: str
    authority: str
    known_authorities: list[str]
    scopes: list[str]


class PortalConfig(CamelContract):
    sign_in: SignInConfig | None = None
    token_paste: bool = False
    environment: str = Field(default="local")


def api_scope(settings: Settings) -> str | None:
    if settings.portal_api_scope:
        return settings.portal_api_scope
    uri = next((a for a in settings.auth_audiences if a.startswith("api://")), None)
    return f"{uri}/{DEFAULT_SCOPE}" if uri else None


def portal_config(settings: Settings) -> PortalConfig:
    scope = api_scope(settings)
    authority = (settings.portal_authority or "").rstrip("/")
    sign_in = None
    if settings.portal_client_id and authority.startswith("https://") and scope:
        sign_in = SignInConfig(
            client_id=settings.portal_client_id,
            authority=authority,
            known_authorities=[urlsplit(authority).netloc],
            scopes=[scope],
        )
    local = settings.environment == "local"
    return PortalConfig(sign_in=sign_in, token_paste=local, environment=settings.environment)


def content_security_policy(settings: Settings, path: str) -> str:
    """The policy of one portal file: scripts and styles of this origin only; the authority for sign-in."""
    authority = settings.portal_authority or ""
    origin = ""
    if authority.startswith("https://"):
        parts = urlsplit(authority)
        origin = f" {parts.scheme}://{parts.netloc}"
    # MSAL's redirect bridge page is framed by the portal itself during silent renewal; nothing else is framed.
    ancestors = "'self'" if path == "redirect.html" else "'none'"
    frames = origin or " 'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self' blob:; connect-src 'self'{origin}; frame-src{frames}; object-src 'none'; "
        f"base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
