"""The answer's budget is 5 s (Graph `call: answer`, policy-based recording): an answer must not wait for Entra.
The Graph token is fetched at start-up; before it nears its expiry (the credentials' 5-minute refresh margin) the
recorder fetches the next one in the background, so the first invitation after that is answered without a token
request of its own."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from devstack.testkit.captures import speech
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from recorder_vm import service
from recorder_vm.calls_api import GraphCallsApi
from tests.conftest import Azurite
from tests.recorder.inprocess import on_platform, recorder_settings, running_recorder, url_of
from verbatim.graph.tokens import AccessToken


def test_a_token_near_its_expiry_is_renewed_in_the_background_not_by_the_next_answer(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "GRAPH_PREPARE_SECONDS", 0.5)
    settings = recorder_settings(azurite_service, platform, tmp_path / "state")
    tenant = settings.graph_tenant_id
    assert tenant is not None

    async def scenario() -> None:
        async with running_recorder(settings) as runtime:
            calls = runtime.calls
            assert isinstance(calls, GraphCallsApi)
            credentials = calls._credentials
            token = credentials._tokens[tenant]  # fetched at start-up
            fetched = platform.token_requests
            # The token enters its refresh margin (4 minutes left): the next check fetches a new one by itself.
            credentials._tokens[tenant] = AccessToken(token.value, time.time() + 240)
            # (The platform counts the request when it arrives, before the recorder holds its reply: wait for the
            # token itself, then count.)
            await asyncio.to_thread(
                wait_until, lambda: credentials.cached(tenant) not in (None, token.value), timeout=10
            )
            assert platform.token_requests == fetched + 1
            record = await on_platform(platform, platform.drive(url_of(settings), CallScript(audio=speech(1.0))))
            assert record.answer is not None
            assert platform.token_requests == fetched + 1  # the answer did not ask for one

    asyncio.run(scenario())


def test_each_pass_fetches_every_tenants_token_and_warms_the_shared_graph_connections_once(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tenant's requests go through one pool of Graph connections (Graph is one host): a pass of the background
    keeper tops it up once, not once per tenant (each top-up takes and gives back every idle connection)."""
    monkeypatch.setattr(service, "GRAPH_PREPARE_SECONDS", 0.05)
    tenants = ["tenant-b", "tenant-c"]
    settings = recorder_settings(azurite_service, platform, tmp_path / "state", RECORDER_TENANT_IDS=",".join(tenants))
    first = min(settings.tenant_ids)  # the keeper's passes go over the tenants in order
    assert len(settings.tenant_ids) == 3

    async def scenario() -> list[str]:
        async with running_recorder(settings) as runtime:
            calls = runtime.calls
            assert isinstance(calls, GraphCallsApi)
            steps: list[str] = []
            prepare, warm = calls.prepare, calls.connections.warm

            async def prepare_logged(tenant_id: str) -> None:
                steps.append(f"token {tenant_id}")
                await prepare(tenant_id)

            async def warm_logged() -> int:
                steps.append("warm")
                return await warm()

            monkeypatch.setattr(calls, "prepare", prepare_logged)
            monkeypatch.setattr(calls.connections, "warm", warm_logged)
            await asyncio.to_thread(wait_until, lambda: steps.count(f"token {first}") >= 3, timeout=10)
            return list(steps)

    steps = asyncio.run(scenario())
    starts = [index for index, step in enumerate(steps) if step == f"token {first}"]
    for start, end in itertools.pairwise(starts[:3]):  # two whole passes
        assert steps[start:end] == [f"token {tenant}" for tenant in sorted(settings.tenant_ids)] + ["warm"]
    assert platform.token_requests >= 3  # every tenant's token was fetched (the start-up fetched only the first)
