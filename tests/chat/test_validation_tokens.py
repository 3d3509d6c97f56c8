"""Validation tokens: Microsoft's documented claims pass; every way a token can be wrong (expiry, not yet
valid, audience, tenant, issuer, publisher app, algorithm, key, signature) is refused, and a collection is
refused when any token fails or an item's tenant has none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.chat.crypto import TokenSigner
from verbatim.chat.validation_tokens import (
    GRAPH_PUBLISHER_APP_ID,
    ValidationTokenRejected,
    validate_collection,
    validate_token,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "chats"
# Source: microsoft-graph-docs-contrib concepts/change-notifications-with-resource-data.md, "Example JWT token"
DOCUMENTED = {
    k: v for k, v in json.loads((FIXTURES / "validation-token-claims.json").read_text()).items() if k != "_source"
}
APP = DOCUMENTED["aud"]
TENANT = DOCUMENTED["tid"]
DURING = DOCUMENTED["iat"] + 60
SIGNER = TokenSigner()


def check(
    token: str, *, now: float = DURING, apps: tuple[str, ...] = (APP,), tenants: tuple[str, ...] = (TENANT,)
) -> Any:
    return validate_token(token, app_ids=apps, tenant_ids=tenants, keys=SIGNER.lookup, now=now, leeway=0)


def reason(token: str, **kwargs: Any) -> str:
    with pytest.raises(ValidationTokenRejected) as rejected:
        check(token, **kwargs)
    return rejected.value.reason


def test_the_documented_token_claims_are_accepted_for_the_app_and_tenant_they_name() -> None:
    grant = check(SIGNER.sign(DOCUMENTED))
    assert (grant.app_id, grant.tenant_id) == (APP, TENANT)
    assert DOCUMENTED["appid"] == GRAPH_PUBLISHER_APP_ID


def test_expired_and_not_yet_valid_tokens_are_refused() -> None:
    token = SIGNER.sign(DOCUMENTED)
    assert reason(token, now=DOCUMENTED["exp"] + 1) == "expired"
    assert reason(token, now=DOCUMENTED["nbf"] - 1) == "not yet valid"
    assert reason(SIGNER.sign({**DOCUMENTED, "exp": None})) == "no expiry"


def test_a_token_for_another_app_or_tenant_is_refused() -> None:
    token = SIGNER.sign(DOCUMENTED)
    assert reason(token, apps=("11111111-1111-1111-1111-111111111111",)) == "audience is not this app"
    assert reason(token, tenants=("22222222-2222-2222-2222-222222222222",)) == "tenant is not ours"


def test_a_token_not_issued_by_the_identity_platform_for_the_tenant_is_refused() -> None:
    for issuer in (
        "https://login.microsoftonline.com/84bd8158-6d4d-4958-8b9f-9d6445542f95/v2.0",
        "https://sts.windows.net/other/",
    ):
        assert (
            reason(SIGNER.sign({**DOCUMENTED, "iss": issuer})) == "issuer is not the identity platform for the tenant"
        )


def test_a_token_from_an_app_other_than_the_graph_publisher_is_refused() -> None:
    forged = SIGNER.sign({**DOCUMENTED, "appid": "33333333-3333-3333-3333-333333333333"})
    assert reason(forged) == "not issued to the Graph change-notification publisher"


def test_unsigned_hmac_and_foreign_key_tokens_are_refused() -> None:
    assert reason(jwt.encode(DOCUMENTED, None, algorithm="none")) == "unexpected signing algorithm"
    assert (
        reason(jwt.encode(DOCUMENTED, "secret-key-material-32-bytes-long!", algorithm="HS256"))
        == "unexpected signing algorithm"
    )
    stranger = TokenSigner(kid=SIGNER.kid)  # same kid, different key
    assert reason(stranger.sign(DOCUMENTED)) == "bad signature"
    unknown = TokenSigner(kid="not-in-the-jwks")
    assert reason(unknown.sign(DOCUMENTED)) == "signing key not in the identity platform's key set"
    assert reason("not.a.jwt") == "malformed token"


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=4000))
def test_any_altered_character_of_a_valid_token_makes_it_fail(position: int) -> None:
    token = SIGNER.sign(DOCUMENTED)
    index = position % len(token)
    replacement = "A" if token[index] != "A" else "B"
    altered = token[:index] + replacement + token[index + 1 :]
    if altered.count(".") != 2:
        return
    try:
        grant = check(altered)
    except ValidationTokenRejected:
        return
    # base64url has spare bits in a segment's last character: an edit there may decode to the same bytes
    assert jwt.api_jws.base64url_decode(altered.split(".")[2]) == jwt.api_jws.base64url_decode(token.split(".")[2])
    assert grant.app_id == APP


def test_a_collection_needs_every_token_valid_and_a_token_for_each_items_tenant() -> None:
    good = SIGNER.sign(DOCUMENTED)
    kwargs = {"app_ids": [APP], "tenant_ids": [TENANT], "keys": SIGNER.lookup, "now": DURING, "leeway": 0}
    assert len(validate_collection([good], [TENANT, TENANT], **kwargs)) == 1  # type: ignore[arg-type]
    for tokens, tenants in (([], [TENANT]), (None, [TENANT]), ([good, "x.y.z"], [TENANT]), ([good], [TENANT, "other"])):
        with pytest.raises(ValidationTokenRejected):
            validate_collection(tokens, tenants, **kwargs)  # type: ignore[arg-type]
