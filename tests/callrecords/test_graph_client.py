"""The Graph client's contract: tokens cached and refreshed, Retry-After and back-off, paging, typed errors.

Graph itself is a transport-level fake here (every status and header is under the test's control); the
integration tests run the same client against the Teams/Graph simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.callrecords.fake_authority import AUTHORITY, FakeAuthority
from verbatim.graph import (
    AsyncGraphClient,
    GraphClient,
    GraphCredentials,
    GraphError,
    GraphNotFound,
    GraphServerError,
    GraphThrottled,
    GraphUnavailable,
    RetryPolicy,
    parse_retry_after,
)

BASE = "https://graph.test"
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def credentials(
    authority: FakeAuthority,
    clock: Clock | None = None,
    secret: str = "s3cret",  # noqa: S107 - the fake authority's test secret
) -> GraphCredentials:
    return GraphCredentials(
        client_id="app",
        client_secret=secret,
        authority_host=AUTHORITY,
        transport=authority.transport(),
        clock=clock or Clock(),
    )


def client(handler: Handler, creds: GraphCredentials, sleeps: list[float], **retry: float) -> GraphClient:
    return GraphClient(
        base_url=BASE,
        tenant_id="t1",
        credentials=creds,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleeps.append,
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
    )


def graph_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "innerError": {"request-id": "rid-1"}}}
    return httpx.Response(status, json=body, headers=headers)


def test_token_is_fetched_once_reused_and_refreshed_before_expiry() -> None:
    authority, clock = FakeAuthority(expires_in=3600), Clock()
    creds = credentials(authority, clock)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"id": "x"})

    graph = client(handler, creds, [])
    graph.get_json("/me")
    graph.get_json("/me")
    clock.now += 3600 - 299  # inside the 5-minute refresh margin
    graph.get_json("/me")

    assert seen[0] == seen[1] == "Bearer tok-t1-1"
    assert seen[2] == "Bearer tok-t1-2"
    assert creds.acquisitions == 2


def test_bad_client_secret_is_a_graph_unavailable_naming_the_reason() -> None:
    creds = credentials(FakeAuthority(), secret="wrong")
    with pytest.raises(GraphUnavailable, match="bad secret"):
        creds.token("t1")


def test_429_is_retried_after_the_servers_retry_after() -> None:
    answers = [graph_error(429, "TooManyRequests", {"Retry-After": "7"}), httpx.Response(200, json={"ok": True})]
    sleeps: list[float] = []
    graph = client(lambda request: answers.pop(0), credentials(FakeAuthority()), sleeps)

    assert graph.get_json("/communications/callRecords/abc") == {"ok": True}
    assert sleeps == [7.0]
    assert graph.retries == 1


def test_503_and_504_without_retry_after_back_off_exponentially() -> None:
    answers = [httpx.Response(503), httpx.Response(504), httpx.Response(503), httpx.Response(200, json={})]
    sleeps: list[float] = []
    graph = client(lambda request: answers.pop(0), credentials(FakeAuthority()), sleeps, base_delay=1.0)

    graph.get_json("/x")

    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0


def test_a_retry_after_longer_than_the_policy_allows_surfaces_as_graph_throttled() -> None:
    sleeps: list[float] = []
    graph = client(
        lambda request: graph_error(429, "TooManyRequests", {"Retry-After": "120"}),
        credentials(FakeAuthority()),
        sleeps,
        max_retry_after=60,
    )

    with pytest.raises(GraphThrottled) as caught:
        graph.get_json("/x")

    assert sleeps == []
    assert caught.value.retry_after == 120.0
    assert caught.value.retryable and caught.value.status == 429 and caught.value.request_id == "rid-1"


def test_running_out_of_attempts_raises_the_last_error() -> None:
    sleeps: list[float] = []
    graph = client(lambda request: httpx.Response(503), credentials(FakeAuthority()), sleeps, max_attempts=3)

    with pytest.raises(GraphServerError) as caught:
        graph.get_json("/x")

    assert caught.value.status == 503
    assert len(sleeps) == 2


def test_404_is_graph_not_found_with_code_and_request_id_and_is_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return graph_error(404, "NotFound")

    graph = client(handler, credentials(FakeAuthority()), [])
    with pytest.raises(GraphNotFound) as caught:
        graph.get_json("/communications/callRecords/missing?$expand=sessions")

    assert (caught.value.status, caught.value.code, caught.value.request_id) == (404, "NotFound", "rid-1")
    assert not caught.value.retryable
    assert len(calls) == 1


def test_401_drops_the_cached_token_and_retries_once_with_a_fresh_one() -> None:
    authority = FakeAuthority()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return graph_error(401, "InvalidAuthenticationToken") if len(seen) == 1 else httpx.Response(200, json={})

    graph = client(handler, credentials(authority), [])
    graph.get_json("/x")

    assert seen == ["Bearer tok-t1-1", "Bearer tok-t1-2"]


def test_transport_errors_retry_gets_but_not_posts_that_may_have_arrived() -> None:
    attempts = {"GET": 0, "POST": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        attempts[request.method] += 1
        if request.method == "GET" and attempts["GET"] == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if request.method == "POST":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={})

    graph = client(handler, credentials(FakeAuthority()), [])
    graph.get_json("/x")
    with pytest.raises(GraphUnavailable):
        graph.post_json("/subscriptions", {})

    assert attempts == {"GET": 2, "POST": 1}


def pages_handler(request: httpx.Request) -> httpx.Response:
    skip = int(request.url.params.get("$skip", "0"))
    body: dict[str, object] = {"value": [{"n": n} for n in range(skip, min(skip + 2, 5))]}
    if skip + 2 < 5:
        body["@odata.nextLink"] = f"{BASE}/v1.0/things?$skip={skip + 2}"
    return httpx.Response(200, json=body)


def test_iter_items_follows_odata_next_links_across_pages() -> None:
    graph = client(pages_handler, credentials(FakeAuthority()), [])
    assert [item["n"] for item in graph.iter_items("/things")] == [0, 1, 2, 3, 4]
    assert graph.requests == 3


def test_a_next_link_outside_the_graph_base_url_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [], "@odata.nextLink": "https://evil.test/v1.0/things?$skip=2"})

    graph = client(handler, credentials(FakeAuthority()), [])
    with pytest.raises(GraphError, match="outside"):
        list(graph.iter_items("/things"))


def test_async_client_pages_and_retries_like_the_sync_one() -> None:
    answers: list[httpx.Response] = [graph_error(429, "TooManyRequests", {"Retry-After": "0"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else pages_handler(request)

    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> list[int]:
        async with AsyncGraphClient(
            base_url=BASE,
            tenant_id="t1",
            credentials=credentials(FakeAuthority()),
            http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            sleep=fake_sleep,
        ) as graph:
            return [item["n"] async for item in graph.iter_items("/things")]

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]
    assert sleeps == [0.0]


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
