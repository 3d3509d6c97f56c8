"""The recorder's connections to Graph are opened before a storm needs them (recorder_vm.graph_connections): an
answer (5-s budget) never waits for a TLS handshake while the warm pool has a free connection. Against the test-side
Teams platform's Graph over real TLS; the platform counts the TLS handshakes it serves, so "no new connection" is
seen from the server's side, not only from the recorder's own counter."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from devstack.processes import free_port
from devstack.testkit.teams_platform import BOT_APP_ID, TENANT, FakePlatform
from recorder_vm.calls_api import SIGNALLING_CONNECTIONS, CallsApiError, GraphCallsApi
from recorder_vm.graph_connections import KEEPALIVE_IDLE_SECONDS, GraphConnections, keepalive
from verbatim.graph import GraphCredentials

SIZE = SIGNALLING_CONNECTIONS


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePlatform]:
    """A platform of this module's own: its handshake and connection counts are this module's alone."""
    fake = FakePlatform(tmp_path_factory.mktemp("graph-platform"))
    fake.start()
    yield fake
    fake.stop()


@asynccontextmanager
async def calls_api(platform: FakePlatform) -> AsyncIterator[GraphCallsApi]:
    credentials = GraphCredentials(
        client_id=BOT_APP_ID,
        client_secret="test-secret-not-real",
        authority_host=platform.base_url,
        verify=str(platform.tls.ca_cert),
    )
    api = GraphCallsApi(base_url=platform.base_url, credentials=credentials, verify=str(platform.tls.ca_cert))
    try:
        yield api
    finally:
        await api.aclose()


async def answer_all(platform: FakePlatform, api: GraphCallsApi, count: int) -> list[str]:
    """`count` answers sent to Graph at once, as in a storm; returns the call ids."""
    calls = [str(uuid.uuid4()) for _ in range(count)]
    await asyncio.gather(
        *(api.answer(TENANT, call_id, {"callbackUri": f"https://rec.example/{call_id}"}) for call_id in calls)
    )
    assert all(platform.calls[call_id].answer is not None for call_id in calls)
    return calls


def test_warm_opens_the_pool_and_a_storm_after_it_opens_no_connection(graph: FakePlatform) -> None:
    async def scenario() -> None:
        async with calls_api(graph) as api:
            await api.prepare(TENANT)  # what the recorder does at start-up
            await api.warm()
            assert api.connections_opened == SIZE
            handshakes = graph.tls_handshakes
            await answer_all(graph, api, 2 * SIZE)  # twice as many answers at once as there are connections
            assert graph.tls_handshakes == handshakes  # the server saw no new TLS connection
            assert api.connections_opened == SIZE
            assert await api.connections.warm() == 0  # nothing to top up: the storm closed none

    asyncio.run(scenario())


def test_connections_the_server_closed_are_replaced_by_the_next_pass(graph: FakePlatform) -> None:
    async def scenario() -> None:
        async with calls_api(graph) as api:
            await api.prepare(TENANT)
            await api.warm()
            assert graph.close_connections() >= SIZE  # Graph's idle timeout, or its front end restarted
            await answer_all(graph, api, 1)  # an answer right after it still reaches Graph
            await asyncio.sleep(0.2)  # the client has read every close by now (loopback)
            opened = api.connections_opened
            assert await api.connections.warm() >= SIZE - 1  # the answer's own connection may still be open
            assert api.connections_opened - opened >= SIZE - 1
            handshakes = graph.tls_handshakes
            await answer_all(graph, api, SIZE)
            assert graph.tls_handshakes == handshakes

    asyncio.run(scenario())


def test_a_connection_past_its_lifetime_is_replaced(graph: FakePlatform) -> None:
    async def scenario() -> None:
        async with calls_api(graph) as api:
            await api.prepare(TENANT)
            await api.warm()
            api.connections.lifetime_seconds = 0.2
            await asyncio.sleep(0.3)
            assert await api.connections.warm() == SIZE  # every one closed for age and opened again
            handshakes = graph.tls_handshakes
            await answer_all(graph, api, SIZE)
            assert graph.tls_handshakes == handshakes

    asyncio.run(scenario())


def test_graph_busy_is_retried_as_before_over_warm_connections(graph: FakePlatform) -> None:
    async def scenario() -> None:
        async with calls_api(graph) as api:
            await api.prepare(TENANT)
            await api.warm()
            graph.fail_answers = 2  # 503 with Retry-After: 0, twice; the signalling policy allows 3 attempts
            try:
                await answer_all(graph, api, 1)
                assert graph.fail_answers == 0
                graph.fail_answers = 3
                with pytest.raises(CallsApiError, match="503"):
                    await answer_all(graph, api, 1)
            finally:
                graph.fail_answers = 0

    asyncio.run(scenario())


def test_a_pool_that_cannot_reach_graph_is_logged_not_raised() -> None:
    async def scenario() -> None:
        connections = GraphConnections(
            f"https://127.0.0.1:{free_port()}", size=4, ssl_context=True, keepalive_seconds=60.0, connect_seconds=1.0
        )
        try:
            assert await connections.warm() == 4  # four attempts, each refused, none raised
        finally:
            await connections.aclose()

    asyncio.run(scenario())


def test_every_graph_socket_sends_tcp_keepalive_probes() -> None:
    with socket.socket() as sock:
        keepalive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE_SECONDS
