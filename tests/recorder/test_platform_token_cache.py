"""The recorder remembers platform tokens it accepted (recorder_vm.platform_auth): the same token on the next
notification is not verified again, yet an expired token, a token whose key left the platform's key set, a
token of another tenant and a forged token are refused every time. Unit tests of one module: the platform's
OpenID configuration and key set come from an httpx mock transport."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from devstack.testkit.teams_platform import BOT_APP_ID, PLATFORM_ISSUER, TENANT, FakePlatform, SigningKey
from recorder_vm.platform_auth import PlatformTokenValidator
from verbatim.platform.errors import Forbidden, Unauthenticated

CONFIG_URL = "https://platform.test/openid"


class Platform:
    """Signs tokens and serves its key set, which a test may roll over."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.published = [self.key]

    def token(self, key: SigningKey | None = None, **claims: Any) -> str:
        signer = FakePlatform.__new__(FakePlatform)
        signer.key = key or self.key
        return FakePlatform.token(signer, **claims)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/openid":
            return httpx.Response(200, json={"issuer": PLATFORM_ISSUER, "jwks_uri": "https://platform.test/keys"})
        return httpx.Response(200, json={"keys": [key.jwk() for key in self.published]})


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 1000.0
        self.wall = time.time()


def validator(platform: Platform, clocks: Clocks, **options: Any) -> PlatformTokenValidator:
    return PlatformTokenValidator(
        openid_config_url=CONFIG_URL,
        audience=BOT_APP_ID,
        issuers=[PLATFORM_ISSUER],
        tenants=[TENANT],
        http=httpx.AsyncClient(transport=httpx.MockTransport(platform.handler)),
        leeway_seconds=60,
        clock=lambda: clocks.monotonic,
        wall_clock=lambda: clocks.wall,
        **options,
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_token_already_accepted_is_not_verified_again_and_names_the_same_caller() -> None:
    platform, clocks = Platform(), Clocks()
    checker = validator(platform, clocks)
    token = platform.token()
    first = asyncio.run(checker.validate(bearer(token)))
    again = [asyncio.run(checker.validate(bearer(token))) for _ in range(5)]
    assert checker.verified == 1
    assert all(caller == first for caller in again) and first.tenant_id == TENANT
    asyncio.run(checker.validate(bearer(platform.token(jti="another"))))  # another token: verified on its own
    assert checker.verified == 2


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    platform, clocks = Platform(), Clocks()
    checker = validator(platform, clocks)
    now = int(clocks.wall)
    token = platform.token(iat=now - 5, nbf=now - 5, exp=now + 120)
    asyncio.run(checker.validate(bearer(token)))
    clocks.wall = now + 120 + 59  # within the leeway: still accepted, from memory
    asyncio.run(checker.validate(bearer(token)))
    assert checker.verified == 1
    clocks.wall = now + 120 + 61
    with pytest.raises(Unauthenticated, match="expired"):
        asyncio.run(checker.validate(bearer(token)))
    assert checker.verified == 1  # refused from memory, by the token's own exp


def test_a_remembered_token_is_refused_once_its_key_left_the_platforms_key_set() -> None:
    platform, clocks = Platform(), Clocks()
    checker = validator(platform, clocks, refresh_seconds=3600)
    token = platform.token()
    asyncio.run(checker.validate(bearer(token)))
    platform.published = [SigningKey.generate()]  # rollover: the old key is withdrawn
    clocks.monotonic += 3601  # the key set is due for its refresh
    with pytest.raises(Unauthenticated, match="unknown key"):
        asyncio.run(checker.validate(bearer(token)))


def test_refused_tokens_are_never_remembered() -> None:
    platform, clocks = Platform(), Clocks()
    checker = validator(platform, clocks)
    forged = platform.token(key=SigningKey(platform.key.kid, SigningKey.generate().private))
    foreign = platform.token(tid="00000000-0000-4000-8000-00000000beef")
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="bad signature"):
            asyncio.run(checker.validate(bearer(forged)))
        with pytest.raises(Forbidden):
            asyncio.run(checker.validate(bearer(foreign)))
    assert checker.verified == 4
