"""One CosmosClient shared by the threads of a process (the Functions host runs HTTP routes and triggers on a thread
pool; the composition root builds one client per process), against the real Cosmos emulator.

azure-cosmos keeps the headers of "the last response" on the client (`client_connection.last_response_headers`):
its retry utility writes two throttle headers into whatever dict that attribute holds when a request returns,
and a query page takes its continuation token from it. Microsoft says those headers are not thread safe
(azure-sdk-for-python PR #35791, "[Cosmos] item operation response includes response headers", merged 2024-05:
"we use a last_response_headers dictionary (map) that gets cached in the client instance ... it is not thread
safe"; that PR added per-response headers but left the shared attribute, and azure-cosmos 4.17.1, the newest
release, still writes and reads it). Two failures follow when threads share a client, both through the verdicts
API's own store (`CosmosVerdictStore.query`, the path of `GET /api/v1/verdicts`):

- a 500: `RuntimeError: OrderedDict mutated during iteration`, raised in `__QueryFeed`
  (`response_headers.update(post_response_headers)`) while another thread's retry utility adds its throttle
  headers to that same dict (found by the chaos run, issue 23);
- worse, silently wrong pages: a page's continuation token is read from the shared attribute after another
  thread's request replaced it, so a caller paging through its query resumes from another query's position
  and misses items (found while writing this test: 40 wrong listings in 20 s of 8 threads).

A race needs the threads interleaved at the wrong bytecode: the test shortens the interpreter's thread switch
interval to 1 µs so they are, and runs until the first failure or the bound (15 s). Before the fix (verbatim/platform/
clients.py `cosmos_client` without the per-thread headers) it failed within 1-4 s in every run tried.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Cosmos
from verbatim.contracts.reconciliation import Verdict
from verbatim.platform import clients
from verbatim.platform.settings import Settings
from verbatim.reconciliation.store import CosmosVerdictStore, VerdictQuery

THREADS = 8
VERDICTS_PER_CALL = 6
PAGE = 2
BOUND_SECONDS = 15.0  # failures came within 1-4 s before the fix


@pytest.fixture
def settings(cosmos_service: Cosmos) -> Settings:
    return Settings.model_validate(
        {
            "COSMOS_ENDPOINT": cosmos_service.endpoint,
            "COSMOS_KEY": cosmos_service.key,
            "COSMOS_CA_CERT": str(cosmos_service.ca_cert),
            "COSMOS_DATABASE": f"shared{time.monotonic_ns() % 10**9}",
        }
    )


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switched every microsecond, so a race shows in seconds rather than in hours of production."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def verdict(call_id: str, n: int) -> Verdict:
    return Verdict(
        id=f"{call_id}:u-{n}",
        call_id=call_id,
        call_record_version=1,
        user_id=f"u-{n}",
        day="2025-03-03",
        call_start=f"2025-03-03T09:00:{n:02d}.000000Z",
        verdict="recorded",
        coverage=1.0,
        reason="recorded",
        evaluated_at="2025-03-03T10:00:00.000000Z",
    )


def test_threads_sharing_one_client_page_through_verdicts_without_errors_or_each_others_pages(
    settings: Settings, fast_switching: None
) -> None:
    from devstack.provision import provision_cosmos

    provision_cosmos(settings)
    client = clients.cosmos_client(settings)  # the one client of the process, as the composition root builds it
    store = CosmosVerdictStore(client.get_database_client(settings.cosmos_database).get_container_client("verdicts"))
    expected = {f"call-{t}": {f"call-{t}:u-{n}" for n in range(VERDICTS_PER_CALL)} for t in range(THREADS)}
    for call_id in expected:
        for n in range(VERDICTS_PER_CALL):
            store.save(verdict(call_id, n))

    failures: list[str] = []
    listings = [0]
    deadline = time.monotonic() + BOUND_SECONDS

    def page_through(call_id: str) -> None:
        """What the portal does with `GET /api/v1/verdicts?callId=…&limit=2`: a page, then the next by its token."""
        while time.monotonic() < deadline and not failures:
            seen: list[str] = []
            token: str | None = None
            try:
                for _ in range(VERDICTS_PER_CALL):  # enough pages for every verdict; more would mean a loop
                    page, token = store.query(VerdictQuery(call_id=call_id, limit=PAGE, continuation=token))
                    seen += [v.id for v in page]
                    if token is None:
                        break
            except Exception as error:  # any exception here is the failure looked for
                failures.append(f"{call_id}: {type(error).__name__}: {error}")
                return
            if sorted(seen) != sorted(expected[call_id]):
                failures.append(f"{call_id}: paged through {sorted(seen)}")
                return
            listings[0] += 1

    threads = [threading.Thread(target=page_through, args=(call_id,)) for call_id in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures[:3]
    assert listings[0] >= THREADS  # every thread listed its call's verdicts, more than once in the bound
