"""Finding 12 of issue 13 (the Function App's side): the dev token route mints real signed tokens with any app role,
so it answers only on the local stack, and there only to requests addressed to a loopback name. A page in the
developer's browser can point its own name at 127.0.0.1 (DNS rebinding) and call the local host from its own
origin, but the Host header still carries that name. Against the local Functions host.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.emulators import REPO_ROOT
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from tests.security.conftest import Stack


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7071", "127.0.0.1.evil.example", "localhost.evil"])
def test_the_dev_token_route_refuses_a_rebound_host_name(stack: Stack, host: str) -> None:
    response = httpx.post(
        f"{stack.api}/v1/dev/token", json={"roles": ["Compliance.Auditor"]}, headers={"Host": host}, timeout=60
    )
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "accessToken" not in response.text


@pytest.mark.parametrize("host", [None, "localhost", "127.0.0.1:7071", "[::1]:7071"])
def test_the_dev_token_route_answers_requests_to_a_loopback_name(stack: Stack, host: str | None) -> None:
    headers = {"Host": host} if host else {}
    response = httpx.post(
        f"{stack.api}/v1/dev/token", json={"roles": ["Compliance.Auditor"]}, headers=headers, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["accessToken"].count(".") == 2


@pytest.fixture(scope="module")
def deployed_host(
    azurite_service: Azurite, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHost]:
    """The same app as it runs in Azure: not the local environment, so no dev token route."""
    launcher = HostLauncher(azurite_service, tmp_path_factory.mktemp("deployed-host"))
    try:
        yield launcher.start(REPO_ROOT, env={**stack.env, "VERBATIM_ENVIRONMENT": "azure"})
    finally:
        launcher.stop_all()


def test_outside_the_local_stack_there_is_no_dev_token(deployed_host: RunningHost) -> None:
    response = httpx.post(f"{deployed_host.base_url}/api/v1/dev/token", json={}, timeout=60)
    assert response.status_code == 404, response.text
