"""Retention tests: a world per test (own Cosmos database in the session's emulator, shared Azurite), with the
test retention classes configured and a simulated clock; bearer tokens from a real OpenID provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.callrecords.oidc import AUDIENCE, OpenIdProvider, openid_provider
from tests.retention.world import CLASSES, T0, RetentionWorld, SimClock, build_world
from verbatim.platform.settings import Settings, reload_settings


@pytest.fixture(scope="session")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture
def retention_env(
    stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: OpenIdProvider
) -> Settings:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_INTERVAL", "1000")
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    monkeypatch.setenv("RETENTION_CLASSES", json.dumps(CLASSES))
    monkeypatch.setenv("RETENTION_GROUP_CLASSES", json.dumps({"g-rates-desk": "mifid2-extended"}))
    monkeypatch.setenv("RETENTION_SWEEP_LEASE_SECONDS", "300")
    monkeypatch.setenv("RETENTION_SWEEP_BATCH_SIZE", "3")
    monkeypatch.setenv("AUTH_OPENID_CONFIG_URL", provider.config_url)
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    return reload_settings()


@pytest.fixture
def world(retention_env: Settings) -> RetentionWorld:
    return build_world(retention_env, SimClock(T0 + timedelta(hours=1)))
