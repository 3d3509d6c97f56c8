"""The Cosmos call-record store on the emulator: highest version wins exactly once under duplicates,
out-of-order and concurrent writers; oversized raw payloads go to blob storage; queries by time and
participant."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from tests.callrecords.fake_graph import call_record
from verbatim.callrecords.normalise import normalise
from verbatim.callrecords.store import BlobRawArchive, CallQuery, CosmosCallRecordStore
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings


def make_store(settings: Settings) -> CosmosCallRecordStore:
    database = clients.cosmos_database(settings)
    archive = BlobRawArchive(
        clients.blob_service(settings.recordings_storage_connection).get_container_client(layout.RAW_CALLRECORDS_BLOBS)
    )
    return CosmosCallRecordStore(database.get_container_client("calls"), archive)


def test_concurrent_out_of_order_duplicate_versions_leave_the_highest_stored_once(stack_env: Settings) -> None:
    store = make_store(stack_env)
    deliveries = [
        (record_id, version) for record_id in ("r1", "r2", "r3") for version in (1, 2, 3, 4) for _ in range(3)
    ]
    random.Random(7).shuffle(deliveries)

    def deliver(item: tuple[str, int]) -> str:
        raw = call_record(item[0], item[1])
        return store.save_if_newer(normalise(raw), raw).outcome

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, deliveries))

    assert outcomes.count("created") == 3
    for record_id in ("r1", "r2", "r3"):
        stored = store.get(record_id)
        assert stored is not None and stored.version == 4
        assert store.get_raw(record_id)["version"] == 4  # type: ignore[index]
    documents = list(
        clients.cosmos_database(stack_env)
        .get_container_client("calls")
        .query_items("SELECT c.id FROM c", enable_cross_partition_query=True)
    )
    assert sorted(d["id"] for d in documents) == ["r1", "r2", "r3"]


def test_handed_off_version_survives_replacement_and_only_moves_forward(stack_env: Settings) -> None:
    store = make_store(stack_env)
    raw1, raw2 = call_record("h", 1), call_record("h", 2)
    store.save_if_newer(normalise(raw1), raw1)
    store.mark_handed_off("h", 1)

    result = store.save_if_newer(normalise(raw2), raw2)
    assert (result.outcome, result.previous_version, result.handed_off_version, result.needs_handoff) == (
        "replaced",
        1,
        1,
        True,
    )
    store.mark_handed_off("h", 2)
    store.mark_handed_off("h", 1)
    state = store.state("h")
    assert state is not None and (state.version, state.handed_off_version) == (2, 2)


def test_a_raw_payload_too_big_for_a_cosmos_item_is_kept_in_blob_storage(stack_env: Settings) -> None:
    store = make_store(stack_env)
    raw = call_record("big", 5, sessions=2)
    raw["sessions"][0]["padding"] = "x" * 1_600_000  # a meeting with hundreds of sessions gets there

    store.save_if_newer(normalise(raw), raw)

    document = next(
        iter(
            clients.cosmos_database(stack_env)
            .get_container_client("calls")
            .query_items("SELECT * FROM c WHERE c.id = 'big'", enable_cross_partition_query=True)
        )
    )
    assert document["raw"] is None and document["rawBlob"] == "big/v5.json"
    assert store.get_raw("big") == raw


def test_queries_by_start_time_and_participant_page_newest_first(stack_env: Settings) -> None:
    store = make_store(stack_env)
    for n in range(7):
        raw = call_record(f"q{n}", 1, users=("alice", f"bob{n % 2}"))
        raw["startDateTime"] = f"2024-05-0{n + 1}T09:00:00Z"
        store.save_if_newer(normalise(raw), raw)

    page, token = store.query(CallQuery(start_from="2024-05-02T00:00:00Z", start_to="2024-05-07T00:00:00Z", limit=3))
    assert [r.id for r in page] == ["q5", "q4", "q3"] and token
    rest, token2 = store.query(
        CallQuery(start_from="2024-05-02T00:00:00Z", start_to="2024-05-07T00:00:00Z", limit=3, continuation=token)
    )
    assert [r.id for r in rest] == ["q2", "q1"] and token2 is None
    bobs, _ = store.query(CallQuery(participant="bob1", limit=50))
    assert [r.id for r in bobs] == ["q5", "q3", "q1"]
    assert [r.id for r in store.query(CallQuery(participant="user:bob0", limit=2))[0]] == ["q6", "q4"]
    assert store.versions(["q1", "q2", "nope"]) == {"q1": 1, "q2": 1}
