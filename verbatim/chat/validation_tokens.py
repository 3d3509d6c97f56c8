"""Validating the ``validationTokens`` of a change-notification collection that carries resource data, as
Microsoft documents it ("Validating the authenticity of notifications",
learn.microsoft.com/graph/change-notifications-with-resource-data): every token must be unexpired, signed
(RS256) by a key of the Microsoft identity platform's JWKS, issued by ``https://sts.windows.net/{tenant}/``
for one of our tenants, for our app (``aud``), by the Graph change-notification publisher (``appid``
``0bf30f3b-4a52-48df-9a82-234910c4a086``); "If any tokens fail, consider the change notification
suspicious". Graph sends one token per distinct (app, tenant) pair of the items, so each item's tenant must be
covered by a valid token.

Pure: the signing keys come in through a lookup (the JWKS adapter lives with the wiring) and the time is a
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_PUBLISHER_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
MAX_TOKEN_CHARS = 16 * 1024
MAX_TOKENS = 100
DEFAULT_LEEWAY_SECONDS = 300

KeyLookup = Callable[[str], rsa.RSAPublicKey | None]


class ValidationTokenRejected(Exception):
    """A validation token (or the set of them) failed a check; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenGrant:
    """What a valid token vouches for: items of this tenant, for this app of ours."""

    app_id: str
    tenant_id: str


def issuer_for(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def validate_token(
    token: str,
    *,
    app_ids: Iterable[str],
    tenant_ids: Iterable[str],
    keys: KeyLookup,
    now: float,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
) -> TokenGrant:
    """Check one token; the grant it carries, or :class:`ValidationTokenRejected`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise ValidationTokenRejected("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise ValidationTokenRejected("malformed token") from error
    if header.get("alg") != "RS256":
        raise ValidationTokenRejected("unexpected signing algorithm")
    kid = header.get("kid")
    key = keys(kid) if isinstance(kid, str) else None
    if key is None:
        raise ValidationTokenRejected("signing key not in the identity platform's key set")
    audiences = [a.lower() for a in app_ids]
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={
                "verify_signature": True,
                "verify_aud": False,
                "verify_iss": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as error:
        raise ValidationTokenRejected("bad signature") from error
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise ValidationTokenRejected("no expiry")
    if now > exp + leeway:
        raise ValidationTokenRejected("expired")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now + leeway < nbf:
        raise ValidationTokenRejected("not yet valid")
    aud = claims.get("aud")
    if not isinstance(aud, str) or aud.lower() not in audiences:
        raise ValidationTokenRejected("audience is not this app")
    tid = claims.get("tid")
    tenants = {t.lower() for t in tenant_ids}
    if not isinstance(tid, str) or tid.lower() not in tenants:
        raise ValidationTokenRejected("tenant is not ours")
    if claims.get("iss") != issuer_for(tid):
        raise ValidationTokenRejected("issuer is not the identity platform for the tenant")
    if claims.get("appid") != GRAPH_PUBLISHER_APP_ID:
        raise ValidationTokenRejected("not issued to the Graph change-notification publisher")
    return TokenGrant(aud.lower(), tid.lower())


def validate_collection(
    tokens: Sequence[str] | None,
    item_tenants: Iterable[str],
    *,
    app_ids: Iterable[str],
    tenant_ids: Iterable[str],
    keys: KeyLookup,
    now: float,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
) -> list[TokenGrant]:
    """All tokens valid and every item's tenant vouched for by one of them, or :class:`ValidationTokenRejected`."""
    if not tokens:
        raise ValidationTokenRejected("no validation tokens")
    if len(tokens) > MAX_TOKENS:
        raise ValidationTokenRejected("too many validation tokens")
    apps, tenants = list(app_ids), list(tenant_ids)
    grants = [
        validate_token(token, app_ids=apps, tenant_ids=tenants, keys=keys, now=now, leeway=leeway) for token in tokens
    ]
    vouched = {grant.tenant_id for grant in grants}
    for tenant in item_tenants:
        if tenant.lower() not in vouched:
            raise ValidationTokenRejected("an item's tenant has no validation token")
    return grants
