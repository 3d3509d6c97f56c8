"""A module-scoped recorded world in the session's emulators, settings pointing the API at it and at a real
OpenID provider, and HTTP requests for the triggers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

from tests.api.world import World, build_world
from tests.callrecords.oidc import AUDIENCE, OpenIdProvider, openid_provider
from tests.conftest import Azurite, Cosmos
from verbatim.platform.settings import Settings, reload_settings


def world_environment(azurite: Azurite, cosmos: Cosmos, key_file: Path, database: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "RECORDINGS_STORAGE": azurite.connection_string,
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_CA_CERT": str(cosmos.ca_cert),
        "COSMOS_DATABASE": database,
        # The ledger's log writes fixed names (tiles): each world its own containers, as its own database.
        "LEDGER_CONTAINER": f"ledger-{database}".lower(),
        "LEDGER_ANCHOR_CONTAINER": f"anchors-{database}".lower(),
        "LEDGER_SIGNING_KEY_FILE": str(key_file),
        "LEDGER_CHECKPOINT_INTERVAL": "1000",
        "MEDIA_CHUNK_BYTES": str(8 * 1024),
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture(scope="module")
def world(
    azurite_service: Azurite, cosmos_service: Cosmos, provider: OpenIdProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from devstack.provision import provision_cosmos, provision_storage

    root = tmp_path_factory.mktemp("api-world")
    env = world_environment(azurite_service, cosmos_service, root / "ledger.pem", f"api{uuid.uuid4().hex[:8]}")
    env |= {"AUTH_OPENID_CONFIG_URL": provider.config_url, "AUTH_AUDIENCE": AUDIENCE}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        yield build_world(settings)
    reload_settings()


@pytest.fixture
def settings(world: World) -> Settings:
    return world.settings


def request(
    route: str,
    *,
    token: str | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> func.HttpRequest:
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    return func.HttpRequest(
        method=method,
        url=f"http://localhost/api/{route}",
        headers=all_headers,
        params=params or {},
        route_params=route_params or {},
        body=b"",
    )
