"""Identity: an Entra-like issuer (OpenID configuration, JWKS, a token endpoint that MSAL works against for client
credentials and — with `signin.py` — the authorization code flow with PKCE of single-page apps, dev logins for
the compliance API) and the Teams platform issuer that signs the callbacks Teams sends to bots. Graph routes call
:meth:`Identity.authorize` with the application permissions they need.

The issuer is the HTTPS listener's URL when the simulator has one: MSAL.js accepts only an https authority and
checks that the discovered issuer has the authority's scheme and host (as Entra's `https://login.microsoftonline.com/
{tenant}/v2.0` has). The keys stay at the HTTP base, where every validator already reaches them.

Token lifetimes use the wall clock, not the simulated one: the components that validate these tokens
(PyJWT in the recorder and the Function App) compare them with the wall clock.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel, Field

from .config import SimConfig
from .odata import GraphError, base_url, read_model
from .signin import (
    SESSION_COOKIE,
    AuthorizeRequest,
    Grant,
    SignIn,
    SignInError,
    client_info,
    error_page,
    login_page,
    redirect_matches,
)
from .tenant import AppRegistration, TenantStore, User

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
PLATFORM_ISSUER = "https://api.botframework.com"
APP_TOKEN_SECONDS = 3599
PLATFORM_TOKEN_SECONDS = 3600
# The client a dev sign-in's token is issued to (`azp`): the portal, a public client.
DEV_PORTAL_CLIENT_ID = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"


class SigningKey:
    """An RSA key with a stable ``kid``; persisted in the state directory when one is given."""

    def __init__(self, name: str, directory: Path | None) -> None:
        path = directory / f"{name}.pem" if directory else None
        if path is not None and path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA key")
            self.private_key = loaded
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(
                    self.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
                path.chmod(0o600)
        public_der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = f"{name}-{uuid.uuid5(uuid.NAMESPACE_OID, public_der.hex()).hex[:16]}"

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return jwk

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


@dataclass(frozen=True)
class Principal:
    """Who called a Graph route: an application (client credentials) or a user."""

    app_id: str | None
    roles: frozenset[str]
    tenant_id: str
    claims: dict[str, Any]


class UserTokenRequest(BaseModel):
    """Body of ``POST /sim/tokens``: a dev login for the compliance API."""

    sub: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(default_factory=list, max_length=50)
    oid: str | None = Field(default=None, max_length=64)
    preferred_username: str | None = Field(default=None, alias="preferredUsername", max_length=256)
    aud: str | None = Field(default=None, max_length=256)
    expires_in_seconds: int = Field(default=3600, alias="expiresInSeconds", ge=1, le=86400)
    # An ID token instead of an access token (what a sign-in returns to the client; never an API credential).
    kind: Literal["access", "id"] = Field(default="access", alias="tokenType")
    tid: str | None = Field(default=None, max_length=64)  # another tenant's token, signed with the same key


class PlatformTokenRequest(BaseModel):
    """Body of ``POST /sim/platform-tokens``: mint a Teams-platform JWT (for bot-side rejection tests)."""

    aud: str = Field(min_length=1, max_length=256)
    tid: str | None = Field(default=None, max_length=64)
    iss: str = Field(default=PLATFORM_ISSUER, max_length=256)
    expires_in_seconds: int = Field(default=PLATFORM_TOKEN_SECONDS, alias="expiresInSeconds", ge=-86400, le=86400)
    not_before_offset_seconds: int = Field(default=0, alias="notBeforeOffsetSeconds", ge=-86400, le=86400)


class Identity:
    """Both issuers and the checks every Graph route makes."""

    def __init__(
        self,
        tenant: TenantStore,
        public_base: str,
        key_dir: Path | None,
        issuer_base: str | None = None,
        config: SimConfig | None = None,
    ) -> None:
        self.tenant = tenant
        self.public_base = public_base.rstrip("/")
        self.issuer_base = (issuer_base or public_base).rstrip("/")
        self.config = config or SimConfig()
        self.entra_key = SigningKey("entra", key_dir)
        self.platform_key = SigningKey("platform", key_dir)
        self.signin = SignIn(tenant, self.config)

    # -- issuers --------------------------------------------------------------------------------------
    @property
    def entra_issuer(self) -> str:
        return f"{self.issuer_base}/{self.tenant.model.tenant.id}/v2.0"

    def _tenant_segment_ok(self, segment: str) -> bool:
        info = self.tenant.model.tenant
        return segment.lower() in {info.id.lower(), info.domain.lower()}

    def openid_configuration(self, request_base: str) -> dict[str, Any]:
        tid = self.tenant.model.tenant.id
        return {
            "issuer": self.entra_issuer,
            "token_endpoint": f"{request_base}/{tid}/oauth2/v2.0/token",
            "authorization_endpoint": f"{request_base}/{tid}/oauth2/v2.0/authorize",
            "end_session_endpoint": f"{request_base}/{tid}/oauth2/v2.0/logout",
            "jwks_uri": f"{self.public_base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "nbf",
                "nonce",
                "name",
                "oid",
                "preferred_username",
                "tid",
                "sid",
                "roles",
                "scp",
                "azp",
                "azpacr",
                "ver",
                "login_hint",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "verbatim-simulator",
        }

    def platform_openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": PLATFORM_ISSUER,
            "jwks_uri": f"{self.public_base}/platform/v1/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    # -- minting --------------------------------------------------------------------------------------
    def app_token(self, app_id: str, audience: str, roles: list[str]) -> str:
        now = int(time.time())
        tid = self.tenant.model.tenant.id
        app = self.tenant.app_registration(app_id)
        claims = {
            "aud": audience,
            "iss": self.entra_issuer,
            "iat": now,
            "nbf": now,
            "exp": now + APP_TOKEN_SECONDS,
            "appid": app_id,
            "azp": app_id,
            "app_displayname": app.display_name if app else app_id,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{app_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{app_id}")),
            "roles": sorted(roles),
            "tid": tid,
            "ver": "2.0",
            "uti": uuid.uuid4().hex[:22],
        }
        return self.entra_key.sign(claims)

    def user_token(self, body: UserTokenRequest) -> str:
        """A delegated access token as Entra issues it to the portal for our API (v2: `azp` names the client,
        `scp` the delegated scope), or with `tokenType: id` the ID token of the same sign-in (no `azp`, no `scp`,
        a `nonce`; Microsoft identity platform, ID-token and access-token claims references)."""
        now = int(time.time())
        tid = body.tid or self.tenant.model.tenant.id
        if body.kind == "id":
            return self.entra_key.sign(
                {
                    "aud": body.aud or self.tenant.model.api_audience,
                    "iss": f"{self.issuer_base}/{tid}/v2.0",
                    "iat": now,
                    "nbf": now,
                    "exp": now + body.expires_in_seconds,
                    "sub": body.sub,
                    "oid": body.oid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{body.sub}")),
                    "name": body.name,
                    "preferred_username": body.preferred_username or body.sub,
                    "roles": body.roles,
                    "nonce": uuid.uuid4().hex,
                    "tid": tid,
                    "ver": "2.0",
                }
            )
        claims = {
            "aud": body.aud or self.tenant.model.api_audience,
            "iss": f"{self.issuer_base}/{tid}/v2.0",
            "azp": DEV_PORTAL_CLIENT_ID,
            "azpacr": "0",
            "iat": now,
            "nbf": now,
            "exp": now + body.expires_in_seconds,
            "sub": body.sub,
            "oid": body.oid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{body.sub}")),
            "name": body.name,
            "preferred_username": body.preferred_username or body.sub,
            "roles": body.roles,
            "scp": "user_impersonation",
            "idtyp": "user",
            "tid": tid,
            "ver": "2.0",
        }
        return self.entra_key.sign(claims)

    def signed_in_tokens(self, app: AppRegistration, grant: Grant, request_fields: dict[str, str]) -> dict[str, Any]:
        """The token response of the code and refresh grants: an access token for the scopes' resource (the API:
        `roles` from its app role assignments, `scp` the delegated scopes), an ID token for the client when
        `openid` was asked, a refresh token with `offline_access`, and `client_info` when asked."""
        user = self.tenant.user(grant.user_id)
        if user is None or not user.account_enabled:
            raise SignInError("invalid_grant", 50057, "The user account is disabled or no longer exists.")
        tid = self.tenant.model.tenant.id
        now = int(time.time())
        lifetime = self.config.user_access_token_seconds
        resource = [s for s in grant.scopes if s not in ("openid", "profile", "email", "offline_access")]
        if resource:
            audience = resource[0].rsplit("/", 1)[0]
            scp = " ".join(sorted(s.rsplit("/", 1)[1] for s in resource))
            roles = self.tenant.api_roles_of(user) if audience == self.tenant.model.api_audience else []
        else:  # only OpenID Connect scopes: Entra issues a Microsoft Graph token for User.Read
            audience, scp, roles = GRAPH_AUDIENCES[0], "User.Read", []
        subject = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{audience}:{user.id}"))  # pairwise per resource
        access: dict[str, Any] = {
            "aud": audience,
            "iss": self.entra_issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "azp": app.app_id,
            "azpacr": "0",  # a public client: no credential
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.user_principal_name,
            "scp": scp,
            "sid": grant.session_id,
            "sub": subject,
            "tid": tid,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        if roles:
            access["roles"] = roles
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.entra_key.sign(access),
        }
        if "openid" in grant.scopes:
            id_claims: dict[str, Any] = {
                "aud": app.app_id,
                "iss": self.entra_issuer,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "name": user.display_name,
                "oid": user.id,
                "preferred_username": user.user_principal_name,
                "sid": grant.session_id,
                "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{app.app_id}:{user.id}")),
                "tid": tid,
                "uti": uuid.uuid4().hex[:22],
                "ver": "2.0",
                "login_hint": user.user_principal_name,
            }
            if grant.nonce:
                id_claims["nonce"] = grant.nonce
            answer["id_token"] = self.entra_key.sign(id_claims)
        if "offline_access" in grant.scopes:
            answer["refresh_token"] = self.signin.keep_refresh_token(grant)
            answer["refresh_token_expires_in"] = max(0, int(grant.expires_at - time.time()))
        if request_fields.get("client_info") == "1":
            answer["client_info"] = client_info(user, tid)
        return answer

    def platform_token(self, bot_app_id: str, tenant_id: str | None = None) -> str:
        now = int(time.time())
        return self.platform_key.sign(
            {
                "iss": PLATFORM_ISSUER,
                "aud": bot_app_id,
                "tid": tenant_id or self.tenant.model.tenant.id,
                "iat": now,
                "nbf": now,
                "exp": now + PLATFORM_TOKEN_SECONDS,
            }
        )

    def custom_platform_token(self, body: PlatformTokenRequest) -> str:
        now = int(time.time())
        return self.platform_key.sign(
            {
                "iss": body.iss,
                "aud": body.aud,
                "tid": body.tid or self.tenant.model.tenant.id,
                "iat": now,
                "nbf": now + body.not_before_offset_seconds,
                "exp": now + body.expires_in_seconds,
            }
        )

    # -- checking -------------------------------------------------------------------------------------
    def authorize(self, request: web.Request, *any_of: str) -> Principal:
        """401 without a valid Graph token, 403 when it lacks every one of ``any_of``."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
                headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                self.entra_key.private_key.public_key(),
                algorithms=["RS256"],
                audience=list(GRAPH_AUDIENCES),
                issuer=self.entra_issuer,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            ) from error
        except jwt.InvalidAudienceError as error:
            raise GraphError(401, "InvalidAuthenticationToken", "Invalid audience.") from error
        except jwt.PyJWTError as error:
            raise GraphError(401, "InvalidAuthenticationToken", f"Access token validation failure: {error}") from error
        roles = frozenset(claims.get("roles") or [])
        if any_of and not roles.intersection(any_of):
            raise GraphError(
                403,
                "Forbidden",
                "Missing role permissions on the request. API requires one of "
                f"'{', '.join(any_of)}'. Roles on the request '{', '.join(sorted(roles))}'.",
            )
        return Principal(
            app_id=claims.get("appid") or claims.get("azp"),
            roles=roles,
            tenant_id=str(claims.get("tid", "")),
            claims=claims,
        )

    # -- routes ---------------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid),
            web.get("/{tenant}/.well-known/openid-configuration", self._openid),
            web.get("/{tenant}/discovery/v2.0/keys", self._jwks),
            web.get("/common/discovery/keys", self._jwks),
            web.post("/{tenant}/oauth2/v2.0/token", self._token),
            web.options("/{tenant}/oauth2/v2.0/token", self._token_preflight),
            web.get("/{tenant}/oauth2/v2.0/authorize", self._authorize),
            web.post("/{tenant}/oauth2/v2.0/authorize", self._authorize_chosen),
            web.get("/{tenant}/oauth2/v2.0/logout", self._logout),
            web.get("/platform/v1/.well-known/OpenIdConfiguration", self._platform_openid),
            web.get("/platform/v1/keys", self._platform_jwks),
            web.post("/sim/tokens", self._sim_user_token),
            web.post("/sim/platform-tokens", self._sim_platform_token),
        ]

    async def _openid(self, request: web.Request) -> web.Response:
        if request.match_info["tenant"].lower() in ("common", "organizations"):
            # Entra's multi-tenant metadata: the issuer is a template naming each token's own tenant.
            config = self.openid_configuration(base_url(request))
            config["issuer"] = f"{self.issuer_base}/{{tenantid}}/v2.0"
            return web.json_response(config)
        if not self._tenant_segment_ok(request.match_info["tenant"]):
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
        # Read cross-origin by MSAL.js in the portal (authority metadata discovery).
        return web.json_response(
            self.openid_configuration(base_url(request)), headers={"Access-Control-Allow-Origin": "*"}
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.entra_key.jwk()]})

    async def _platform_openid(self, request: web.Request) -> web.Response:
        return web.json_response(self.platform_openid_configuration())

    async def _platform_jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.platform_key.jwk()]})

    async def _token(self, request: web.Request) -> web.Response:
        if not self._tenant_segment_ok(request.match_info["tenant"]):
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return _aad_error(400, "invalid_request", 900144, "The request body must be form-urlencoded.")
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return _aad_error(401, "invalid_client", 7000215, "Malformed basic credentials.")
        if fields.get("grant_type") in ("authorization_code", "refresh_token"):
            return self._user_grant(request, fields, client_id, secret)
        if fields.get("grant_type") != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The simulator's token endpoint supports client_credentials, authorization_code and refresh_token.",
            )
        if not client_id:
            return _aad_error(400, "invalid_request", 900144, "The request body must contain 'client_id'.")
        app = self.tenant.app_registration(client_id)
        if app is None:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if "client_assertion" in fields:
            return _aad_error(
                400,
                "invalid_request",
                900023,
                "The simulator accepts client secrets only (client_assertion is not supported).",
            )
        if app.client_secret is None:
            return _aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not secret or not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        scopes = fields.get("scope", "").split()
        resource_scopes = [s for s in scopes if s.endswith("/.default")]
        if len(resource_scopes) != 1:
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                "Client credentials need exactly one '<resource>/.default' scope.",
            )
        resource = resource_scopes[0].removesuffix("/.default")
        if resource in GRAPH_AUDIENCES:
            audience, roles = GRAPH_AUDIENCES[0], list(app.roles)
        elif resource == self.tenant.model.api_audience:
            audience, roles = resource, list(app.api_roles)
        else:
            return _aad_error(
                400, "invalid_resource", 500011, f"The resource principal named {resource} was not found."
            )
        token = self.app_token(app.app_id, audience, roles)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": APP_TOKEN_SECONDS,
                "ext_expires_in": APP_TOKEN_SECONDS,
                "access_token": token,
            }
        )

    # -- the authorization code flow of single-page apps (signin.py) ------------------------------------
    def _user_grant(
        self, request: web.Request, fields: dict[str, str], client_id: str | None, secret: str | None
    ) -> web.Response:
        origin = request.headers.get("Origin")
        cors = {"Access-Control-Allow-Origin": origin} if origin else {}
        try:
            if not client_id:
                raise SignInError(
                    "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
                )
            app = self.tenant.app_registration(client_id)
            if app is None:
                raise SignInError(
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory.",
                )
            if secret or "client_assertion" in fields:
                raise SignInError(
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                    status=401,
                )
            if fields["grant_type"] == "authorization_code":
                grant = self.signin.redeem_code(app, fields, origin)
            else:
                grant = self.signin.redeem_refresh_token(app, fields, origin)
            answer = self.signed_in_tokens(app, grant, fields)
        except SignInError as error:
            response = _aad_error(error.status, error.error, error.code, error.description)
            response.headers.update(cors)
            return response
        return web.json_response(answer, headers={**cors, "Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _token_preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin", "*")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "content-type"),
                "Access-Control-Max-Age": "3600",
            },
        )

    def _checked(self, request: web.Request, query: dict[str, str]) -> tuple[AppRegistration, AuthorizeRequest]:
        """The checked request; else `_Answer` with a redirect to the redirect URI carrying the error, or with the
        error page when the client or its redirect URI cannot be trusted."""
        if not self._tenant_segment_ok(request.match_info["tenant"]):
            error = SignInError("invalid_tenant", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
            raise _Answer(error_page(error))
        try:
            app, redirect_uri = self.signin.check_client(query)
        except SignInError as error:
            raise _Answer(error_page(error)) from error
        try:
            return app, self.signin.check_request(app, redirect_uri, query)
        except SignInError as error:
            mode = query.get("response_mode") if query.get("response_mode") in ("query", "fragment") else "query"
            shell = AuthorizeRequest(
                app.app_id, redirect_uri, (), mode or "query", query.get("state"), None, "", "S256", False, None, None
            )
            raise _Answer(_redirect(self._error_url(shell, error))) from error

    def _error_url(self, request: AuthorizeRequest, error: SignInError) -> str:
        trace = uuid.uuid4()
        description = f"AADSTS{error.code}: {error.description} Trace ID: {trace}"
        return self.signin.response_url(request, {"error": error.error, "error_description": description})

    async def _authorize(self, request: web.Request) -> web.Response:
        try:
            app, checked = self._checked(request, dict(request.query))
        except _Answer as answer:
            return answer.response
        user = self.signin.session_user(request.cookies.get(SESSION_COOKIE))
        if checked.prompt == "none":
            if user is None:
                error = SignInError(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in. The cookies used to represent the "
                    "user's session were not sent in the request to Azure AD.",
                )
                return _redirect(self._error_url(checked, error))
            return self._issue(checked, user, request.cookies[SESSION_COOKIE])
        if user is not None and checked.prompt is None:  # the sole signed-in user, without a page
            return self._issue(checked, user, request.cookies[SESSION_COOKIE])
        pending = self.signin.begin(checked)
        return login_page(self.tenant, app, pending, request.path, checked.login_hint)

    async def _authorize_chosen(self, request: web.Request) -> web.Response:
        form = await request.post()
        checked = self.signin.take_pending(str(form.get("pending", "")))
        if checked is None:
            return error_page(SignInError("invalid_request", 50089, "Authentication failed due to flow token expired."))
        user = self.tenant.user(str(form.get("user", "")))
        if user is None or not user.account_enabled:
            return error_page(
                SignInError("invalid_request", 50034, "The user account does not exist in the directory.")
            )
        return self._issue(checked, user, self.signin.start_session(user), new_session=True)

    def _issue(self, checked: AuthorizeRequest, user: User, session_id: str, new_session: bool = False) -> web.Response:
        params = {"code": self.signin.issue_code(checked, user, session_id)}
        if checked.client_info:
            params["client_info"] = client_info(user, self.tenant.model.tenant.id)
        params["session_state"] = session_id
        answer = _redirect(self.signin.response_url(checked, params))
        if new_session:
            answer.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Lax", path="/")
        return answer

    async def _logout(self, request: web.Request) -> web.Response:
        self.signin.end_session(request.cookies.get(SESSION_COOKIE))
        target = request.query.get("post_logout_redirect_uri", "")
        allowed = any(
            redirect_matches(uri, target) for app in self.tenant.model.applications for uri in app.spa_redirect_uris
        )
        state = request.query.get("state")  # echoed, as Entra does: MSAL's redirect bridge needs it
        back = f"{target}{'&' if '?' in target else '?'}{urlencode({'state': state})}" if state else target
        answer = _redirect(back) if target and allowed else login_signed_out()
        answer.del_cookie(SESSION_COOKIE, path="/")
        return answer

    async def _sim_user_token(self, request: web.Request) -> web.Response:
        body = await read_model(request, UserTokenRequest, max_bytes=64 * 1024)
        return web.json_response(
            {
                "access_token": self.user_token(body),
                "token_type": "Bearer",
                "expires_in": body.expires_in_seconds,
                "issuer": self.entra_issuer,
            }
        )

    async def _sim_platform_token(self, request: web.Request) -> web.Response:
        body = await read_model(request, PlatformTokenRequest, max_bytes=64 * 1024)
        return web.json_response({"token": self.custom_platform_token(body), "issuer": body.iss})


def _aad_error(status: int, error: str, code: int, description: str) -> web.Response:
    trace = str(uuid.uuid4())
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        },
        status=status,
    )


class _Answer(Exception):
    """The authorize endpoint's answer before the person is chosen: an error page or an error redirect."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _redirect(url: str) -> web.Response:
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})


def login_signed_out() -> web.Response:
    from .signin import page

    return page(
        "Signed out", "<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>"
    )
