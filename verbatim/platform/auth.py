"""Who is calling our HTTP API: Entra ID bearer tokens validated against the tenant's signing keys.

`TokenValidator.validate(token)` checks the signature (RS256, keys from the OpenID configuration's
`jwks_uri`, cached by PyJWT's JWKS client), issuer, audience, expiry and not-before (with a small
leeway), and returns a `Principal`. The app roles a principal can hold are the constants below;
`Principal.require(...)` turns a missing role into `Forbidden` (403), every token problem is
`Unauthenticated` (401), and an unreachable key endpoint is `DependencyUnavailable` (503).
"""

from __future__ import annotations

import ssl
import threading
import time
from functools import lru_cache
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict

from verbatim.platform.errors import DependencyUnavailable, Forbidden, Unauthenticated
from verbatim.platform.settings import Settings

# App roles (defined on our API's app registration, assigned to users and groups in Entra ID).
COMPLIANCE_OFFICER = "Compliance.Officer"  # search, replay, export, place and release legal holds
COMPLIANCE_AUDITOR = "Compliance.Auditor"  # read-only: metadata, audit trail, reports
RECORDER_ADMIN = "Recorder.Admin"  # operate the system: subscriptions, back-fills, recorder fleet
APP_ROLES: tuple[str, ...] = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR, RECORDER_ADMIN)

ALGORITHMS = ["RS256"]


class Principal(BaseModel):
    """An authenticated caller: a user (delegated token) or an application (app-only token)."""

    model_config = ConfigDict(frozen=True)

    subject: str  # Entra object id (`oid`), stable across applications; `sub` when absent
    name: str | None = None
    roles: frozenset[str] = frozenset()
    tenant: str | None = None
    is_application: bool = False
    # A user's delegated token (`scp`): a person signed in, not an application acting as itself.
    delegated: bool = False

    def has_any(self, *roles: str) -> bool:
        return not roles or bool(self.roles.intersection(roles))

    def require(self, *roles: str) -> Principal:
        """This principal, if it holds at least one of `roles`; otherwise `Forbidden`."""
        if not self.has_any(*roles):
            raise Forbidden(f"requires one of the roles {', '.join(roles)}", required_roles=list(roles))
        return self

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        roles = claims.get("roles")
        subject = claims.get("oid") or claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the token names no subject (oid/sub)")
        name = next(
            (
                claims[key]
                for key in ("name", "preferred_username", "upn", "app_displayname")
                if isinstance(claims.get(key), str)
            ),
            None,
        )
        is_app = claims.get("idtyp") == "app" or ("scp" not in claims and claims.get("oid") == claims.get("sub"))
        delegated = isinstance(claims.get("scp"), str) and bool(claims["scp"].strip()) and not is_app
        return cls(
            subject=subject,
            name=name,
            roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
            tenant=claims.get("tid") if isinstance(claims.get("tid"), str) else None,
            is_application=is_app,
            delegated=delegated,
        )


class TokenValidator:
    """Validates bearer tokens issued by one Entra tenant (or a multi-tenant `{tenantid}` issuer) for
    our API's audience(s). Thread-safe; build once per process."""

    def __init__(
        self,
        *,
        openid_config_url: str,
        audiences: list[str],
        leeway: float = 60.0,
        ca_cert: str | None = None,
        config_ttl: float = 24 * 3600.0,
        http: httpx.Client | None = None,
        tenants: list[str] | None = None,
        tenants_always: bool = False,
    ) -> None:
        if not audiences:
            raise ValueError("at least one audience (AUTH_AUDIENCE) is required")
        self._config_url = openid_config_url
        self._audiences = audiences
        # `tenants` bound a multi-tenant issuer; with `tenants_always`, a single-tenant one too (its issuer
        # already names one tenant).
        self._tenants = frozenset(tenant.lower() for tenant in tenants or [])
        self._tenants_always = tenants_always
        self._leeway = leeway
        self._ssl = ssl.create_default_context(cafile=ca_cert) if ca_cert else None
        self._http = http or httpx.Client(timeout=10.0, verify=self._ssl or True)
        self._config_ttl = config_ttl
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self._loaded_at = 0.0

    def _metadata(self) -> tuple[str, jwt.PyJWKClient]:
        with self._lock:
            if self._jwks is None or self._issuer is None or time.monotonic() - self._loaded_at > self._config_ttl:
                try:
                    response = self._http.get(self._config_url)
                    response.raise_for_status()
                    config = response.json()
                except (httpx.HTTPError, ValueError) as error:
                    raise DependencyUnavailable(f"OpenID configuration unavailable: {error}") from error
                issuer, jwks_uri = config.get("issuer"), config.get("jwks_uri")
                if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                    raise DependencyUnavailable("OpenID configuration lacks issuer or jwks_uri")
                self._issuer = issuer
                self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600, ssl_context=self._ssl)
                self._loaded_at = time.monotonic()
            return self._issuer, self._jwks

    def validate(self, token: str) -> Principal:
        """The principal of a valid token; `Unauthenticated` with the reason otherwise."""
        issuer, jwks = self._metadata()
        try:
            signing_key = jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise DependencyUnavailable(f"signing keys unavailable: {error}") from error
        except (jwt.PyJWKClientError, jwt.DecodeError) as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        templated = "{tenantid}" in issuer
        if templated and not self._tenants:
            raise Unauthenticated("a multi-tenant issuer needs the tenants it may sign for (AUTH_TENANT_IDS)")
        try:
            if templated:
                # Multi-tenant metadata: the issuer names the token's own tenant, which must be one of ours.
                unverified = jwt.decode(token, options={"verify_signature": False})
                issuer = issuer.replace("{tenantid}", str(unverified.get("tid", "")))
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self._audiences,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthenticated("the token is not for this API (audience)") from error
        except jwt.InvalidIssuerError as error:
            raise Unauthenticated("the token is from an untrusted issuer") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        tenant = claims.get("tid")
        checked = templated or (self._tenants_always and self._tenants)
        if checked and (not isinstance(tenant, str) or tenant.lower() not in self._tenants):
            raise Unauthenticated("the token is from a tenant this API does not serve")
        _require_access_token(claims)
        return Principal.from_claims(claims)


def _require_access_token(claims: dict[str, Any]) -> None:
    """An ID token is not an access token, even when its audience is ours: Entra's access tokens name the client
    they were issued to (`azp`, v1 `appid`) and carry delegated scopes (`scp`) or app roles (`roles`); ID tokens
    carry neither client claim (access-token and ID-token claims references, Microsoft identity platform)."""
    client = claims.get("azp") or claims.get("appid")
    grants = claims.get("scp") or claims.get("roles")
    if not isinstance(client, str) or not client or not grants or "nonce" in claims:
        raise Unauthenticated("the token is not an access token (an ID token cannot call this API)")


@lru_cache(maxsize=4)
def _validator(
    config_url: str,
    audiences: tuple[str, ...],
    leeway: float,
    ca_cert: str | None,
    tenants: tuple[str, ...],
    tenants_always: bool,
) -> TokenValidator:
    return TokenValidator(
        openid_config_url=config_url,
        audiences=list(audiences),
        leeway=leeway,
        ca_cert=ca_cert,
        tenants=list(tenants),
        tenants_always=tenants_always,
    )


def token_validator(settings: Settings) -> TokenValidator:
    """The process's validator for the settings' AUTH_OPENID_CONFIG_URL and AUTH_AUDIENCE (cached)."""
    if not settings.auth_openid_config_url or not settings.auth_audiences:
        raise DependencyUnavailable("API authentication is not configured (AUTH_OPENID_CONFIG_URL, AUTH_AUDIENCE)")
    return _validator(
        settings.auth_openid_config_url,
        tuple(settings.auth_audiences),
        float(settings.auth_leeway_seconds),
        settings.auth_ca_cert,
        tuple(settings.auth_tenant_ids),
        bool(settings.auth_tenant_ids_raw),
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `Unauthenticated` when there is none."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()
