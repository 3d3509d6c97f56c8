"""Data-subject requests through the triggers against the emulators: a person is found in every recording and
call record they took part in — as the recorded user or as a participant, by UPN, object id or phone number,
across calls — and an erasure request is answered item by item: erased where no retention or hold applies,
refused with the legal basis otherwise, every answer in the ledger (with the request id, not the person)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from functions import data_subjects as triggers
from tests.callrecords.oidc import OpenIdProvider
from tests.retention.test_api import call, payload
from tests.retention.world import CLIENT_PHONE, SALES, T0, TRADER, RetentionWorld, phone_participant, user_participant
from verbatim.callrecords.store import CosmosCallRecordStore
from verbatim.contracts.callrecords import CallRecord, Party
from verbatim.contracts.retention import HoldRequest, Officer
from verbatim.platform import clients
from verbatim.wiring import use_container

COMPLIANCE = ("u-compliance", "compliance@contoso.com")


@pytest.fixture(autouse=True)
def _world_runtime(world: RetentionWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_container(world.container)
    yield
    use_container(None)


def call_record(record_id: str, *parties: Party) -> CallRecord:
    return CallRecord(
        id=record_id,
        version=1,
        type="peerToPeer",
        modalities=["audio"],
        start_date_time="2025-03-03T09:00:00.000000Z",
        end_date_time="2025-03-03T09:05:00.000000Z",
        participants=list(parties),
        participant_keys=sorted(p.key for p in parties),
    )


def sales_party(with_upn: bool = True) -> Party:
    return Party(kind="user", id=SALES[0], user_principal_name=SALES[1] if with_upn else None, display_name="Sam Sales")


def test_a_data_subject_is_found_across_calls_and_erasure_honours_retention_and_holds(
    world: RetentionWorld, provider: OpenIdProvider
) -> None:
    officer = provider.mint(oid="officer-a", roles=["Compliance.Officer"])
    auditor = provider.mint(oid="auditor-1", roles=["Compliance.Auditor"])
    world.assign_class(SALES[0], "cftc-oral")
    world.assign_class(TRADER[0], "default", group_id="g-rates-desk")  # the group's class is longer: it wins
    own = world.seal(user=SALES)  # the subject's own recording: 30 days
    with_trader = world.seal(
        user=TRADER, others=[user_participant("p2", SALES[0], SALES[1]), phone_participant("p3", CLIENT_PHONE)]
    )
    held = world.seal(user=COMPLIANCE, others=[user_participant("p2", SALES[0])])  # id only, no UPN
    unrelated = world.seal(user=TRADER, others=[phone_participant("p2", CLIENT_PHONE)])
    assert with_trader.seal is not None and with_trader.seal.retention_class == "mifid2-extended"
    world.runtime.holds.create(
        HoldRequest(matter_id="M-5", description="conduct review", custodians=[COMPLIANCE[1]]),
        Officer(subject="officer-b"),
    )
    calls = CosmosCallRecordStore(clients.cosmos_database(world.settings).get_container_client("calls"))
    assert own.facts.call_chain_id and with_trader.facts.call_chain_id
    for record in (
        call_record(own.facts.call_chain_id, sales_party()),
        call_record(with_trader.facts.call_chain_id, Party(kind="user", id=TRADER[0]), sales_party(with_upn=False)),
        call_record("call-not-recorded", sales_party(), Party(kind="phone", id=CLIENT_PHONE)),
        call_record("call-unrelated", Party(kind="user", id=TRADER[0])),
    ):
        calls.save_if_newer(record, {"id": record.id})

    search = triggers.search_data_subject
    body: dict[str, Any] = {"subject": {"upn": "Sam.Nobody@contoso.com"}, "requestId": "DSAR-0"}
    assert call(search, "x", token=auditor, method="POST", body=body).status_code == 403
    assert call(search, "x", token=officer, method="POST", body={"subject": {}, "requestId": "x"}).status_code == 400

    found = payload(
        call(
            search,
            "x",
            token=officer,
            method="POST",
            body={"subject": {"upn": "Sales@Contoso.com"}, "requestId": "DSAR-1"},
        )
    )
    roles = {r["recordingId"]: r["role"] for r in found["recordings"]}
    assert roles == {own.id: "observed_user", with_trader.id: "participant", held.id: "participant"}
    assert {c["callRecordId"] for c in found["callRecords"]} == {
        own.facts.call_chain_id,
        with_trader.facts.call_chain_id,
        "call-not-recorded",
    }
    assert {"upn:sales@contoso.com", "id:u-sales"} <= set(found["identifiers"])
    by_phone = payload(
        call(
            search,
            "x",
            token=officer,
            method="POST",
            body={"subject": {"phoneNumber": "+44 20 7123 4567"}, "requestId": "DSAR-2"},
        )
    )
    assert {r["recordingId"] for r in by_phone["recordings"]} == {with_trader.id, unrelated.id}
    assert {c["callRecordId"] for c in by_phone["callRecords"]} == {"call-not-recorded"}

    world.clock.set(T0 + timedelta(days=31))
    erase = triggers.erase_data_subject
    answers = payload(
        call(erase, "x", token=officer, method="POST", body={"subject": {"upn": SALES[1]}, "requestId": "DSAR-1"})
    )["answers"]
    by_item = {a["itemId"]: a for a in answers}
    assert by_item[own.id]["decision"] == "erased"
    assert by_item[with_trader.id]["decision"] == "refused"
    assert "MiFID II Art 16(7): seven years on request" in by_item[with_trader.id]["basis"]
    assert "GDPR Art 17(3)(b)" in by_item[with_trader.id]["basis"]
    assert by_item[with_trader.id]["retainedUntil"].startswith("2032-03-03")
    assert by_item[held.id]["decision"] == "refused" and "matter M-5" in by_item[held.id]["basis"]
    assert "GDPR Art 17(3)(e)" in by_item[held.id]["basis"]
    assert by_item[own.facts.call_chain_id]["decision"] == "erased"
    assert by_item["call-not-recorded"]["decision"] == "erased"
    assert by_item[with_trader.facts.call_chain_id]["decision"] == "refused"
    assert with_trader.id in by_item[with_trader.facts.call_chain_id]["basis"]

    assert world.record(own.id).status == "deleted" and world.blobs_of(own.id) == []
    assert world.record(with_trader.id).status == world.record(held.id).status == "sealed"
    erased_call = calls.get("call-not-recorded")
    assert erased_call is not None and erased_call.participants == [] and erased_call.participant_keys == []
    assert calls.get_raw("call-not-recorded") is None

    ledger = world.runtime.ledger
    answered = [
        e
        for a in answers
        for e in ledger.entries_for_subject(f"{'recording' if a['itemType'] == 'recording' else 'call'}:{a['itemId']}")
        if e.kind == "subject.erasure_answered"
    ]
    assert sorted(e.seq for e in answered) == sorted(a["ledgerSeq"] for a in answers)
    assert all(e.details["request_id"] == "DSAR-1" and e.actor == "officer-a" for e in answered)
    assert SALES[1] not in json.dumps([e.details for e in answered])
    certificate = next(e for e in ledger.entries_for_subject(f"recording:{own.id}") if e.kind == "deleted")
    assert certificate.details["reason"] == "erasure_request" and certificate.details["request_id"] == "DSAR-1"

    # Asked again, the erased items are gone from the search; what is kept is still found.
    again = payload(
        call(search, "x", token=officer, method="POST", body={"subject": {"userId": SALES[0]}, "requestId": "DSAR-1"})
    )
    assert {r["recordingId"] for r in again["recordings"]} == {with_trader.id, held.id}
    assert {c["callRecordId"] for c in again["callRecords"]} == {with_trader.facts.call_chain_id}
