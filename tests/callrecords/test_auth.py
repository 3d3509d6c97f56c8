"""Bearer-token validation of our API with real RS256 tokens and a real OpenID provider on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import azure.functions as func
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.auth import authorize
from tests.callrecords.oidc import AUDIENCE, TENANT, OpenIdProvider, openid_provider
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, RECORDER_ADMIN, TokenValidator
from verbatim.platform.errors import DependencyUnavailable, Forbidden, Unauthenticated
from verbatim.platform.settings import reload_settings


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture
def validator(provider: OpenIdProvider) -> TokenValidator:
    return TokenValidator(openid_config_url=provider.config_url, audiences=[AUDIENCE], leeway=30)


def test_a_valid_user_token_yields_its_principal(provider: OpenIdProvider, validator: TokenValidator) -> None:
    principal = validator.validate(provider.mint(roles=["Compliance.Officer", "Compliance.Auditor"]))

    assert principal.subject == "officer-oid"
    assert principal.name == "Olivia Officer"
    assert principal.tenant == TENANT
    assert principal.roles == {COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR}
    assert not principal.is_application


def test_an_app_only_token_is_an_application_principal(provider: OpenIdProvider, validator: TokenValidator) -> None:
    token = provider.mint(oid="sp-oid", sub="sp-oid", scp=None, name=None, idtyp="app", roles=["Recorder.Admin"])
    principal = validator.validate(token)

    assert principal.is_application and principal.subject == "sp-oid"
    assert principal.require(RECORDER_ADMIN) is principal


def test_expired_tokens_are_refused_beyond_the_leeway(provider: OpenIdProvider, validator: TokenValidator) -> None:
    now = int(time.time())
    validator.validate(provider.mint(iat=now - 3600, nbf=now - 3600, exp=now - 10))  # inside the 30 s leeway
    with pytest.raises(Unauthenticated, match="expired"):
        validator.validate(provider.mint(iat=now - 3600, nbf=now - 3600, exp=now - 120))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "api://someone-else"}, "audience"),
        ({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
        ({"exp": None}, "exp"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
)
def test_tokens_with_wrong_claims_are_refused(
    provider: OpenIdProvider, validator: TokenValidator, overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        validator.validate(provider.mint(**overrides))


def test_a_token_signed_by_another_key_is_refused(provider: OpenIdProvider, validator: TokenValidator) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthenticated, match="invalid token"):
        validator.validate(provider.mint(key=forger))  # claims the provider's kid
    with pytest.raises(Unauthenticated, match="invalid token"):
        validator.validate(provider.mint(key=forger, kid="unknown-kid"))


def test_garbage_and_unsigned_tokens_are_refused(provider: OpenIdProvider, validator: TokenValidator) -> None:
    import jwt

    with pytest.raises(Unauthenticated):
        validator.validate("not-a-jwt")
    unsigned = jwt.encode({"iss": provider.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None, "none")
    with pytest.raises(Unauthenticated):
        validator.validate(unsigned)


def test_an_unreachable_openid_configuration_is_a_dependency_failure() -> None:
    from devstack.processes import free_port

    validator = TokenValidator(
        openid_config_url=f"http://127.0.0.1:{free_port()}/x/.well-known/openid-configuration", audiences=[AUDIENCE]
    )
    with pytest.raises(DependencyUnavailable):
        validator.validate("a.b.c")


def request_with(authorization: str | None) -> func.HttpRequest:
    headers = {"authorization": authorization} if authorization else {}
    return func.HttpRequest(method="GET", url="http://localhost/api/v1/calls", headers=headers, body=b"")


def test_authorize_requires_a_bearer_token_and_one_of_the_roles(
    provider: OpenIdProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_OPENID_CONFIG_URL", provider.config_url)
    monkeypatch.setenv("AUTH_AUDIENCE", f"{AUDIENCE},api://other")
    reload_settings()
    try:
        officer = provider.mint(roles=["Compliance.Officer"])
        assert authorize(request_with(f"Bearer {officer}"), COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR).subject
        with pytest.raises(Forbidden):
            authorize(request_with(f"Bearer {officer}"), RECORDER_ADMIN)
        with pytest.raises(Unauthenticated):
            authorize(request_with(None), COMPLIANCE_OFFICER)
        with pytest.raises(Unauthenticated):
            authorize(request_with(f"Basic {officer}"), COMPLIANCE_OFFICER)
        with pytest.raises(Forbidden):
            authorize(request_with(f"Bearer {provider.mint(roles=None)}"), COMPLIANCE_AUDITOR)
    finally:
        monkeypatch.delenv("AUTH_OPENID_CONFIG_URL")
        reload_settings()
