"""Sign-in as Entra ID does it for a single-page app: the authorization code flow with PKCE.

`GET /{tenant}/oauth2/v2.0/authorize` checks the request and shows a login page listing the tenant's people with
the API roles they hold (a demo person is chosen instead of entering a password); choosing one issues a code to
the registered redirect URI (`response_mode` query or fragment, with `state`, `client_info` and `session_state`)
and keeps a session cookie, so `prompt=none` (MSAL's silent iframe) signs in again without a page. The token
endpoint (`identity.py`) hands `grant_type=authorization_code` and `refresh_token` to `SignIn.redeem_code` and
`SignIn.redeem_refresh_token`. `GET /{tenant}/oauth2/v2.0/logout` ends the session.

Microsoft's rules followed here (MicrosoftDocs/entra-docs, docs/identity-platform/):
- v2-oauth2-auth-code-flow.md: the parameters of both legs; `code_challenge` is required for single-page apps
  and `S256` or `plain` (plain when the method is omitted); codes expire after about 10 minutes; a `spa`
  redirect URI must be redeemed cross-origin (an `Origin` header) and without client credentials; refresh
  tokens of a single-page app expire 24 hours after sign-in and refreshed ones carry that expiry over; the
  errors of both endpoints (`invalid_request`, `invalid_grant`, `unauthorized_client`, `login_required`, ...).
- reference-error-codes.md: AADSTS50011 (reply address), 50058 (no session for prompt=none), 501481 (verifier
  does not match the challenge), 501491 (challenge size), 54005 (code already redeemed), 70008 (expired grant),
  700084 (a single-page app's refresh token expired), 700016 (unknown application), 700025 (a public client
  presenting credentials), 900144 (missing parameter), 70011 (invalid scope), 65001 (no consent).
- reply-url.md: loopback redirect URIs (`http://127.0.0.1`, `http://localhost`) match on any port.
- id-token-claims-reference.md, access-token-claims-reference.md: the claims of both tokens (v2.0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from .config import SimConfig
from .tenant import AppRegistration, TenantStore, User

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
SESSION_COOKIE = "sim_entra_session"
CODE_CHALLENGE_METHODS = ("S256", "plain")
PENDING_SECONDS = 600  # how long the login page may stay open
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
SPA_CROSS_ORIGIN_ONLY = (
    "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests."
)


class SignInError(Exception):
    """An OAuth error: `error`, the AADSTS code and its description."""

    def __init__(self, error: str, code: int, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status


@dataclass(frozen=True)
class AuthorizeRequest:
    """A checked `/authorize` request, waiting for the person to be chosen."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    response_mode: str
    state: str | None
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    client_info: bool
    prompt: str | None
    login_hint: str | None


@dataclass
class Grant:
    """An authorization code or a refresh token: who signed in, to which client, for which scopes."""

    client_id: str
    user_id: str
    session_id: str
    scopes: tuple[str, ...]
    expires_at: float
    redirect_uri: str = ""
    code_challenge: str = ""
    code_challenge_method: str = "S256"
    nonce: str | None = None
    redeemed: bool = False
    spa: bool = True
    issued_at: float = field(default_factory=time.time)


def client_info(user: User, tenant_id: str) -> str:
    """Entra's `client_info`: base64url JSON of the user's object id (`uid`) and home tenant (`utid`)."""
    raw = f'{{"uid":"{user.id}","utid":"{tenant_id}"}}'.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def redirect_matches(registered: str, requested: str) -> bool:
    """Exact match, except that a loopback redirect URI matches on any port (reply-url.md)."""
    if registered == requested:
        return True
    want, have = urlsplit(registered), urlsplit(requested)
    if want.hostname not in LOOPBACK_HOSTS or have.hostname != want.hostname:
        return False
    return (want.scheme, want.path, want.query) == (have.scheme, have.path, have.query)


def challenge_of(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class SignIn:
    """The authorization endpoint, the login page, codes, refresh tokens and sessions of the simulated Entra."""

    def __init__(self, tenant: TenantStore, config: SimConfig) -> None:
        self.tenant = tenant
        self.config = config
        self.pending: dict[str, tuple[AuthorizeRequest, float]] = {}
        self.codes: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.sessions: dict[str, str] = {}  # session id -> user id

    # -- the authorize leg -------------------------------------------------------------------------------
    def check_client(self, query: dict[str, str]) -> tuple[AppRegistration, str]:
        """The app and redirect URI, or an error shown on the page (never redirected to an unchecked URI)."""
        client_id = query.get("client_id", "")
        if not client_id:
            raise SignInError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        app = self.tenant.app_registration(client_id)
        if app is None:
            raise SignInError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant.model.tenant.display_name}'.",
            )
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri:
            raise SignInError("invalid_request", 900971, "No reply address provided.")
        if not any(redirect_matches(uri, redirect_uri) for uri in app.spa_redirect_uris):
            raise SignInError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'.",
            )
        return app, redirect_uri

    def check_request(self, app: AppRegistration, redirect_uri: str, query: dict[str, str]) -> AuthorizeRequest:
        """The rest of the request; errors from here on are sent to the redirect URI."""
        response_types = set(query.get("response_type", "").split())
        if response_types != {"code"}:
            raise SignInError(
                "unsupported_response_type",
                70005,
                "The simulator's authorization endpoint issues authorization codes only (response_type=code).",
            )
        mode = query.get("response_mode") or "query"
        if mode not in ("query", "fragment"):
            raise SignInError(
                "invalid_request",
                70007,
                f"The response_mode '{mode}' is not supported by the simulator (query, fragment).",
            )
        scopes = tuple(query.get("scope", "").split())
        if not scopes:
            raise SignInError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
            )
        self.resource_scopes(app, scopes)  # consent and a single resource
        challenge = query.get("code_challenge", "")
        method = query.get("code_challenge_method") or "plain"
        if not challenge:
            raise SignInError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            )
        if method not in CODE_CHALLENGE_METHODS:
            raise SignInError("invalid_request", 501491, f"Invalid code_challenge_method '{method}'.")
        if not 43 <= len(challenge) <= 128:
            raise SignInError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        prompt = query.get("prompt") or None
        if prompt not in (None, "login", "none", "consent", "select_account"):
            raise SignInError("invalid_request", 90023, f"Invalid value for the parameter 'prompt': '{prompt}'.")
        return AuthorizeRequest(
            client_id=app.app_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            response_mode=mode,
            state=query.get("state"),
            nonce=query.get("nonce"),
            code_challenge=challenge,
            code_challenge_method=method,
            client_info=query.get("client_info") == "1",
            prompt=prompt,
            login_hint=query.get("login_hint") or None,
        )

    def resource_scopes(self, app: AppRegistration, scopes: tuple[str, ...]) -> tuple[str, ...]:
        """The scopes of one resource the app was granted, besides the OpenID Connect scopes."""
        resource = [s for s in scopes if s not in OIDC_SCOPES]
        resources = {s.rsplit("/", 1)[0] for s in resource}
        if len(resources) > 1:
            raise SignInError(
                "invalid_scope",
                700022,
                "The provided value for the input parameter scope is not valid because it contains more than one "
                "resource.",
            )
        missing = [s for s in resource if s not in app.delegated_permissions]
        if missing:
            raise SignInError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{app.app_id}' named "
                f"'{app.display_name}' for {', '.join(missing)}. Send an interactive authorization request for "
                "this user and resource.",
            )
        return tuple(resource)

    def begin(self, request: AuthorizeRequest) -> str:
        key = secrets.token_urlsafe(24)
        now = time.time()
        self.pending = {k: v for k, v in self.pending.items() if v[1] > now}
        self.pending[key] = (request, now + PENDING_SECONDS)
        return key

    def take_pending(self, key: str) -> AuthorizeRequest | None:
        found = self.pending.pop(key, None)
        if found is None or found[1] < time.time():
            return None
        return found[0]

    def session_user(self, session_id: str | None) -> User | None:
        user_id = self.sessions.get(session_id or "")
        return self.tenant.user(user_id) if user_id else None

    def start_session(self, user: User) -> str:
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = user.id
        return session_id

    def end_session(self, session_id: str | None) -> None:
        self.sessions.pop(session_id or "", None)

    def issue_code(self, request: AuthorizeRequest, user: User, session_id: str) -> str:
        code = secrets.token_urlsafe(48)
        self.codes[code] = Grant(
            client_id=request.client_id,
            user_id=user.id,
            session_id=session_id,
            scopes=request.scopes,
            expires_at=time.time() + self.config.authorization_code_minutes * 60,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            nonce=request.nonce,
        )
        return code

    def response_url(self, request: AuthorizeRequest, params: dict[str, str]) -> str:
        if request.state is not None:
            params["state"] = request.state
        separator = "#" if request.response_mode == "fragment" else ("&" if "?" in request.redirect_uri else "?")
        return f"{request.redirect_uri}{separator}{urlencode(params)}"

    # -- the token leg -----------------------------------------------------------------------------------
    def redeem_code(self, app: AppRegistration, fields: dict[str, str], origin: str | None) -> Grant:
        code = fields.get("code", "")
        for name in ("code", "redirect_uri"):
            if not fields.get(name):
                raise SignInError(
                    "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
                )
        grant = self.codes.get(code)
        if grant is None:
            raise SignInError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.redeemed:
            raise SignInError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                "existing refresh token.",
            )
        if grant.expires_at < time.time():
            raise SignInError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                "interactive authorization request for this user and resource.",
            )
        if grant.client_id.lower() != app.app_id.lower():
            raise SignInError("invalid_grant", 70000, "The provided authorization code was issued to another client.")
        if fields["redirect_uri"] != grant.redirect_uri:
            raise SignInError(
                "invalid_grant",
                50011,
                f"The redirect URI '{fields['redirect_uri']}' does not match the redirect URI used to request the "
                "authorization code.",
            )
        if origin is None:
            raise SignInError("invalid_request", 9002327, SPA_CROSS_ORIGIN_ONLY)
        verifier = fields.get("code_verifier", "")
        expected = challenge_of(verifier, grant.code_challenge_method) if verifier else ""
        if not verifier or not hmac.compare_digest(expected, grant.code_challenge):
            raise SignInError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        grant.redeemed = True  # single use, also when the scope check below fails
        scopes = tuple(fields.get("scope", "").split()) or grant.scopes
        self._within(app, scopes, grant.scopes)
        return Grant(
            client_id=grant.client_id,
            user_id=grant.user_id,
            session_id=grant.session_id,
            scopes=scopes,
            expires_at=time.time() + self.config.spa_refresh_token_hours * 3600,
            nonce=grant.nonce,
        )

    def redeem_refresh_token(self, app: AppRegistration, fields: dict[str, str], origin: str | None) -> Grant:
        token = fields.get("refresh_token", "")
        if not token:
            raise SignInError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'."
            )
        grant = self.refresh_tokens.get(token)
        if grant is None or grant.client_id.lower() != app.app_id.lower():
            raise SignInError("invalid_grant", 70000, "Authentication failed. The refresh token isn't valid.")
        if grant.spa and origin is None:
            raise SignInError("invalid_request", 9002327, SPA_CROSS_ORIGIN_ONLY)
        if grant.expires_at < time.time():
            issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.issued_at))
            raise SignInError(
                "invalid_grant",
                700084,
                "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited "
                f"lifetime of {self.config.spa_refresh_token_hours:g}:00:00, which can't be extended. It is now "
                f"expired and a new sign in request must be sent by the SPA to the sign in page. The token was "
                f"issued on {issued}.",
            )
        scopes = tuple(fields.get("scope", "").split()) or grant.scopes
        self._within(app, scopes, grant.scopes)
        # The new refresh token carries the first one's expiry over; the old one is not revoked.
        return Grant(
            client_id=grant.client_id,
            user_id=grant.user_id,
            session_id=grant.session_id,
            scopes=scopes,
            expires_at=grant.expires_at,
            issued_at=grant.issued_at,
        )

    def _within(self, app: AppRegistration, scopes: tuple[str, ...], granted: tuple[str, ...]) -> None:
        resource = self.resource_scopes(app, scopes)
        consented = set(self.resource_scopes(app, granted))
        if consented and not set(resource) <= consented:
            raise SignInError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{app.app_id}' for "
                f"{', '.join(sorted(set(resource) - consented))}.",
            )

    def keep_refresh_token(self, grant: Grant) -> str:
        token = secrets.token_urlsafe(64)
        self.refresh_tokens[token] = grant
        return token


# -- the login page ---------------------------------------------------------------------------------------

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f3f2f1; color: #1b1b1b; }
main { max-width: 30rem; margin: 3rem auto; background: #fff; padding: 2rem 2.5rem; box-shadow: 0 2px 6px #0003; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
p { color: #3b3b3b; }
ul { list-style: none; padding: 0; }
button { width: 100%; text-align: left; font: inherit; padding: .6rem .8rem; margin: .3rem 0; border: 1px solid #8a8886;
  background: #fff; color: #1b1b1b; cursor: pointer; border-radius: 2px; }
button:hover, button:focus { border-color: #0067b8; outline: 2px solid #0067b8; }
.upn { display: block; color: #3b3b3b; font-size: .9rem; }
.roles { display: block; color: #0b5a2a; font-size: .85rem; }
.error { color: #a4262c; }
"""


def page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=PAGE_HEADERS)


def login_page(tenant: TenantStore, app: AppRegistration, pending: str, action: str, hint: str | None) -> web.Response:
    people = []
    for user in tenant.model.users:
        if not user.account_enabled:
            continue
        roles = tenant.api_roles_of(user)
        label = ", ".join(roles) if roles else "no role on the compliance API"
        people.append(
            f'<li><button type="submit" name="user" value="{html.escape(user.id)}"'
            f"{' autofocus' if hint and hint.lower() == user.user_principal_name.lower() else ''}>"
            f"<strong>{html.escape(user.display_name)}</strong>"
            f'<span class="upn">{html.escape(user.user_principal_name)}</span>'
            f'<span class="roles">{html.escape(label)}</span></button></li>'
        )
    body = (
        "<h1>Pick an account</h1>"
        f"<p>Sign in to <strong>{html.escape(app.display_name)}</strong> as a person of "
        f"{html.escape(tenant.model.tenant.display_name)}. This is the Teams/Graph simulator's stand-in for the "
        "Microsoft Entra sign-in page: choosing a demo person replaces entering a password.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="pending" value="{html.escape(pending)}">'
        f'<ul aria-label="Demo people">{"".join(people)}</ul></form>'
    )
    return page("Sign in to your account", body)


def error_page(error: SignInError) -> web.Response:
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p class="error" role="alert">AADSTS{error.code}: {html.escape(error.description)}</p>'
        f"<p>error: {html.escape(error.error)}</p>"
    )
    return page("Sign in error", body, status=400)


def now_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iat": now, "nbf": now}
