"""The answer's budget is 5 s (Graph `call: answer`, policy-based recording): an answer must not wait for Entra.
The Graph token is fetched at start-up; before it nears its expiry (the credentials' 5-minute refresh margin) the
recorder fetches the next one in the background, so the first invitation after that is answered without a token
request of its own."""

from __future__ import annotations

import asyncio
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
            await asyncio.to_thread(wait_until, lambda: platform.token_requests == fetched + 1, timeout=10)
            assert credentials.cached(tenant) not in (None, token.value)
            record = await on_platform(platform, platform.drive(url_of(settings), CallScript(audio=speech(1.0))))
            assert record.answer is not None
            assert platform.token_requests == fetched + 1  # the answer did not ask for one

    asyncio.run(scenario())
