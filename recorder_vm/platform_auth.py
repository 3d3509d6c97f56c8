"""Validation of the JWT the Teams calling platform puts on every signalling request.

The token is signed by the Skype/Teams platform (not Entra): keys come from the `jwks_uri` of its OpenID
configuration, the audience is the bot's app id and the issuer one of `https://api.botframework.com` /
`https://graph.microsoft.com`. Keys are cached, refreshed on a timer and, at most every 30 s, when a token
names a key we do not know (key rollover). Rejections log the reason's category, never the token.

The platform signs the calling notifications of every tenant with the same keys, so a valid token proves only
that Teams sent it: its tenant (`tid`) must also be one the recorder is configured for, or the request is
refused (403) before anything is answered.

The platform sends the same token on many notifications (every call's incoming, establishing, established,
roster... until the token nears its expiry), so a token that passed every check is remembered by its exact text
until its `exp` (with the leeway): the same bytes get the same answer without verifying the signature again, which
under an invitation storm was a tenth of the recorder's CPU. Only accepted tokens are remembered, a remembered one
is still refused once expired or once its signing key is no longer in the platform's key set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from verbatim.platform.errors import DependencyUnavailable, Forbidden, Unauthenticated

log = logging.getLogger(__name__)

TENANT_CLAIMS = ("tid", "http://schemas.microsoft.com/identity/claims/tenantid")
ALGORITHMS = ("RS256",)
UNKNOWN_KEY_REFRESH_SECONDS = 30.0
REMEMBERED_TOKENS = 256  # accepted tokens remembered (the platform uses few at a time)


@dataclass(frozen=True)
class PlatformCaller:
    """Who called us, from a valid platform token."""

    tenant_id: str
    issuer: str
    app_id: str


@dataclass(frozen=True)
class _Accepted:
    caller: PlatformCaller
    kid: str
    expires: float  # the token's `exp` (seconds since the epoch)


class PlatformTokenValidator:
    def __init__(
        self,
        *,
        openid_config_url: str,
        audience: str,
        issuers: Sequence[str],
        tenants: Collection[str],
        http: httpx.AsyncClient,
        refresh_seconds: float = 7200.0,
        leeway_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config_url = openid_config_url
        self._audience = audience
        self._issuers = list(issuers)
        self._tenants = frozenset(tenant.lower() for tenant in tenants)
        self._http = http
        self._refresh_seconds = refresh_seconds
        self._leeway = leeway_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._accepted: OrderedDict[str, _Accepted] = OrderedDict()
        self.verified = 0  # tokens whose signature and claims were checked (not answered from memory)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._retry_after = 0.0
        self._lock = asyncio.Lock()
        self.key_fetches = 0

    async def validate(self, authorization: str | None) -> PlatformCaller:
        """The caller of a request with this `Authorization` header; `Unauthenticated` otherwise."""
        token = _bearer(authorization)
        accepted = self._accepted.get(token)
        if accepted is not None:
            if self._wall_clock() > accepted.expires + self._leeway:
                del self._accepted[token]
                raise _reject("expired token")
            if accepted.kid in self._keys and not self._needs_fetch(accepted.kid):
                self._accepted.move_to_end(token)
                return accepted.caller
            del self._accepted[token]  # its key is gone, or the keys are due for a refresh: check it afresh
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _reject("malformed token") from error
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALGORITHMS:
            raise _reject("token header without a key id or with an unexpected algorithm")
        key = await self._key(kid)
        self.verified += 1
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                issuer=self._issuers,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise _reject("expired token") from error
        except jwt.InvalidAudienceError as error:
            raise _reject("wrong audience") from error
        except jwt.InvalidIssuerError as error:
            raise _reject("wrong issuer") from error
        except jwt.InvalidSignatureError as error:
            raise _reject("bad signature") from error
        except jwt.PyJWTError as error:
            raise _reject(f"invalid token ({type(error).__name__})") from error
        tenant = next((claims[name] for name in TENANT_CLAIMS if isinstance(claims.get(name), str)), None)
        if not tenant:
            raise _reject("token without a tenant")
        if tenant.lower() not in self._tenants:
            log.warning("calling token of a tenant this recorder does not serve", extra={"tenant_id": tenant[:64]})
            raise Forbidden("the call belongs to a tenant this recorder does not serve")
        caller = PlatformCaller(tenant_id=tenant, issuer=str(claims["iss"]), app_id=self._audience)
        self._accepted[token] = _Accepted(caller, kid, float(claims["exp"]))
        while len(self._accepted) > REMEMBERED_TOKENS:
            self._accepted.popitem(last=False)
        return caller

    async def refresh(self) -> None:
        """Fetch the OpenID configuration and its key set now (start-up, timers)."""
        async with self._lock:
            await self._fetch()

    def _needs_fetch(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        now = self._clock()
        if now < self._retry_after:
            return False
        age = now - self._fetched_at
        return age > self._refresh_seconds or (kid not in self._keys and age > UNKNOWN_KEY_REFRESH_SECONDS)

    async def _key(self, kid: str) -> jwt.PyJWK:
        if self._needs_fetch(kid):
            async with self._lock:
                if self._needs_fetch(kid):
                    try:
                        await self._fetch()
                    except DependencyUnavailable:
                        if not self._keys:
                            raise
                        # Keep using the keys we have; try again a little later.
                        self._retry_after = self._clock() + UNKNOWN_KEY_REFRESH_SECONDS
                        log.warning("platform signing keys could not be refreshed; using the cached ones")
        key = self._keys.get(kid)
        if key is None:
            raise _reject("token signed with an unknown key")
        return key

    async def _fetch(self) -> None:
        try:
            config = (await self._http.get(self._config_url)).raise_for_status().json()
            jwks_uri = config["jwks_uri"]
            jwks = (await self._http.get(jwks_uri)).raise_for_status().json()
            keys: dict[str, jwt.PyJWK] = {}
            for entry in jwks.get("keys", []):
                if not isinstance(entry, dict) or "kid" not in entry:
                    continue
                try:
                    keys[str(entry["kid"])] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    log.warning("skipping an unusable platform signing key", extra={"kid": entry.get("kid")})
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            raise DependencyUnavailable(f"platform OpenID configuration unavailable: {type(error).__name__}") from error
        self._keys = keys
        self._fetched_at = self._clock()
        self.key_fetches += 1
        log.info("platform signing keys loaded", extra={"keys": len(keys)})


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise _reject("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _reject("Authorization is not a bearer token")
    return token.strip()


def _reject(reason: str) -> Unauthenticated:
    log.warning("platform request rejected", extra={"reason": reason})
    return Unauthenticated(reason)
