"""Identity: an Entra-like issuer (OpenID configuration, JWKS, client-credentials token endpoint that MSAL
works against, dev logins for the compliance API) and the Teams platform issuer that signs the callbacks
Teams sends to bots. Graph routes call :meth:`Identity.authorize` with the application permissions they need.

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
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel, Field

from .odata import GraphError, base_url, read_model
from .tenant import TenantStore

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
PLATFORM_ISSUER = "https://api.botframework.com"
APP_TOKEN_SECONDS = 3599
PLATFORM_TOKEN_SECONDS = 3600


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


class PlatformTokenRequest(BaseModel):
    """Body of ``POST /sim/platform-tokens``: mint a Teams-platform JWT (for bot-side rejection tests)."""

    aud: str = Field(min_length=1, max_length=256)
    tid: str | None = Field(default=None, max_length=64)
    iss: str = Field(default=PLATFORM_ISSUER, max_length=256)
    expires_in_seconds: int = Field(default=PLATFORM_TOKEN_SECONDS, alias="expiresInSeconds", ge=-86400, le=86400)
    not_before_offset_seconds: int = Field(default=0, alias="notBeforeOffsetSeconds", ge=-86400, le=86400)


class Identity:
    """Both issuers and the checks every Graph route makes."""

    def __init__(self, tenant: TenantStore, public_base: str, key_dir: Path | None) -> None:
        self.tenant = tenant
        self.public_base = public_base.rstrip("/")
        self.entra_key = SigningKey("entra", key_dir)
        self.platform_key = SigningKey("platform", key_dir)

    # -- issuers --------------------------------------------------------------------------------------
    @property
    def entra_issuer(self) -> str:
        return f"{self.public_base}/{self.tenant.model.tenant.id}/v2.0"

    def _tenant_segment_ok(self, segment: str) -> bool:
        info = self.tenant.model.tenant
        return segment.lower() in {info.id.lower(), info.domain.lower()}

    def openid_configuration(self, request_base: str) -> dict[str, Any]:
        tid = self.tenant.model.tenant.id
        return {
            "issuer": self.entra_issuer,
            "token_endpoint": f"{request_base}/{tid}/oauth2/v2.0/token",
            "authorization_endpoint": f"{request_base}/{tid}/oauth2/v2.0/authorize",
            "jwks_uri": f"{self.public_base}/{tid}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
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
        now = int(time.time())
        tid = self.tenant.model.tenant.id
        claims = {
            "aud": body.aud or self.tenant.model.api_audience,
            "iss": self.entra_issuer,
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
            web.get("/platform/v1/.well-known/OpenIdConfiguration", self._platform_openid),
            web.get("/platform/v1/keys", self._platform_jwks),
            web.post("/sim/tokens", self._sim_user_token),
            web.post("/sim/platform-tokens", self._sim_platform_token),
        ]

    async def _openid(self, request: web.Request) -> web.Response:
        if not self._tenant_segment_ok(request.match_info["tenant"]):
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
        return web.json_response(self.openid_configuration(base_url(request)))

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
        if fields.get("grant_type") != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The simulator's token endpoint supports grant_type=client_credentials only.",
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
