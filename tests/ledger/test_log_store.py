"""The `LogStore` port's contract, held by the in-memory fake and by the Cosmos adapter on the emulator alike:
create-only batches, If-Match state and progress, lookups by idempotency key and by subject (paged)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos.documents import SSLConfiguration
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from tests.conftest import Cosmos
from verbatim.ledger.log.cosmos import CosmosLogStore
from verbatim.ledger.log.edge import RightEdge
from verbatim.ledger.log.store import Batch, BatchEntry, InMemoryLogStore, LogStore, Progress
from verbatim.ledger.merkle import leaf_hash

AT = "2026-12-01T10:00:00.000000Z"


@pytest.fixture(params=["memory", "cosmos"])
def store(request: pytest.FixtureRequest) -> Iterator[LogStore]:
    if request.param == "memory":
        yield InMemoryLogStore()
        return
    cosmos_service: Cosmos = request.getfixturevalue("cosmos_service")
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = str(cosmos_service.ca_cert)
    client = CosmosClient(cosmos_service.endpoint, credential=cosmos_service.key, ssl_config=ssl)
    name = f"logstore{abs(hash(request.node.nodeid)) % 10**8}"
    database = client.create_database_if_not_exists(name)
    yield CosmosLogStore(database.create_container_if_not_exists("ledger_log", PartitionKey("/pk")))
    client.delete_database(name)


def entry(n: int, subject: str = "recording:r", key: str | None = None) -> BatchEntry:
    return BatchEntry(f'{{"n":{n}}}'.encode(), subject, "accessed", key)


def test_a_batch_is_created_once_per_first_index(store: LogStore) -> None:
    batch = Batch(0, (entry(0), entry(1)), "round-a", AT)
    assert store.create_batch(batch)
    assert not store.create_batch(Batch(0, (entry(9),), "round-b", AT))
    assert store.read_batch(0) == batch
    assert store.read_batch(2) is None


def test_state_and_progress_move_only_from_what_was_read(store: LogStore) -> None:
    empty = store.read_state()
    assert empty.size == 0 and empty.etag is None
    one = RightEdge().extend([leaf_hash(b"a")])
    assert store.advance_state(empty, one)
    assert not store.advance_state(empty, one)  # someone (we) moved it since
    current = store.read_state()
    assert current.edge == one
    assert store.advance_state(current, one.extend([leaf_hash(b"b")]))
    assert not store.advance_state(current, one)
    progress = store.read_progress()
    assert progress.etag is None and not progress.initialized
    written = Progress(integrated=256, upper_tiles=((leaf_hash(b"t"),),), checkpoint=b"note\n", checkpoint_size=300)
    assert store.write_progress(progress, written)
    assert not store.write_progress(progress, written)
    stored = store.read_progress()
    assert (stored.integrated, stored.upper_tiles, stored.checkpoint, stored.checkpoint_size) == (
        256,
        ((leaf_hash(b"t"),),),
        b"note\n",
        300,
    )


def test_keys_and_subjects_are_found_across_batches_in_index_order(store: LogStore) -> None:
    store.create_batch(Batch(0, (entry(0, key="k1"), entry(1, "recording:other"), entry(2)), "r1", AT))
    store.advance_state(store.read_state(), RightEdge().extend([leaf_hash(b"x")] * 3))
    store.create_batch(Batch(3, (entry(3, key="k2"), entry(4), entry(5, key="k1")), "r2", AT))
    store.advance_state(store.read_state(), store.read_state().edge.extend([leaf_hash(b"x")] * 3))
    found = store.find_keys(["k1", "k2", "k3"])
    assert {k: v.index for k, v in found.items()} == {"k1": 0, "k2": 3}
    assert found["k2"].data == b'{"n":3}'
    page = store.entries_for_subject("recording:r", after=-1, limit=3)
    assert [e.index for e in page] == [0, 2, 3]
    assert [e.index for e in store.entries_for_subject("recording:r", after=3, limit=3)] == [4, 5]
    assert [b.first for b in store.batches_covering(2, 4)] == [0, 3]


def test_the_emulator_answers_404_for_a_missing_item_as_cosmos_does(cosmos_service: Cosmos) -> None:
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = str(cosmos_service.ca_cert)
    client = CosmosClient(cosmos_service.endpoint, credential=cosmos_service.key, ssl_config=ssl)
    database = client.create_database_if_not_exists("missing404")
    try:
        container = database.create_container_if_not_exists("c", PartitionKey("/pk"))
        with pytest.raises(CosmosResourceNotFoundError):
            container.read_item("nothing", partition_key="p")
    finally:
        client.delete_database("missing404")
