"""Searching recordings by UPN, against the emulators, through the reconciliation queue trigger and the
compliance API's triggers. The recorder knows people by object id only (Teams' incoming-call notification
carries no UPN), so its recordings have none: the observed user's UPN comes from the policy snapshots as soon
as the recording is indexed, every participant's from the call record when reconciliation evaluates the call,
and neither is lost when the entry is written again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, UPNS, call, party, recording, snapshot
from functions import compliance_api, reconciliation
from tests.api.conftest import request, world_environment
from tests.callrecords.helpers import cosmos_items, handler
from tests.callrecords.oidc import AUDIENCE, OpenIdProvider
from tests.conftest import Azurite, Cosmos
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.lifecycle.announce import indexed_message
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.platform.times import utcnow
from verbatim.wiring import container_for

search = handler(compliance_api.search_recordings)
detail = handler(compliance_api.get_recording)
reconcile = handler(reconciliation.reconcile)

OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-upn", "name": "Olivia Officer"}


@pytest.fixture(scope="module")
def settings(
    azurite_service: Azurite, cosmos_service: Cosmos, provider: OpenIdProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    from devstack.provision import provision_cosmos, provision_storage

    root = tmp_path_factory.mktemp("upn-search")
    env = world_environment(azurite_service, cosmos_service, root / "ledger.pem", f"upn{uuid.uuid4().hex[:8]}")
    env |= {"AUTH_OPENID_CONFIG_URL": provider.config_url, "AUTH_AUDIENCE": AUDIENCE}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        container_for(settings).reconciliation.reconciler.snapshots.add(snapshot(TRADER))
        yield settings
    reload_settings()


def as_the_recorder_reports(record: RecordingRecord) -> RecordingRecord:
    """The record without UPNs, as the recorder's events leave it."""
    facts = record.facts
    assert facts.observed_user is not None
    return record.model_copy(
        update={
            "facts": facts.model_copy(
                update={
                    "observed_user": facts.observed_user.model_copy(update={"upn": None}),
                    "participants": [
                        p.model_copy(update={"identity": p.identity.model_copy(update={"upn": None})})
                        for p in facts.participants
                    ],
                }
            )
        }
    )


def sealed_without_upns(settings: Settings, recording_id: str, call_id: str, start: Any) -> RecordingRecord:
    record = as_the_recorder_reports(recording(recording_id, call_id, TRADER, start=start, seconds=60))
    container = container_for(settings).cosmos("recordings")
    CosmosRecordingStore(container).update(recording_id, lambda _: record)
    return record


def queue(body: str) -> func.QueueMessage:
    return func.QueueMessage(body=body.encode())


def indexed(record: RecordingRecord) -> func.QueueMessage:
    return queue(indexed_message(record, utcnow()).model_dump_json(by_alias=True))


def stored(call_id: str) -> func.QueueMessage:
    message = CallRecordStored(call_record_id=call_id, version=1, type="peerToPeer", stored_at="2025-03-03T10:00:00Z")
    return queue(message.model_dump_json(by_alias=True))


def found(provider: OpenIdProvider, **params: str) -> list[str]:
    response = search(request("v1/recordings", token=provider.mint(**OFFICER), params=params))
    assert response.status_code == 200, response.get_body()
    return [item["id"] for item in json.loads(response.get_body())["items"]]


def entry(settings: Settings, recording_id: str) -> dict[str, Any]:
    (document,) = [d for d in cosmos_items(settings, "recording_index") if d["id"] == recording_id]
    return {k: v for k, v in document.items() if not k.startswith("_")}


def test_a_recording_without_upns_is_found_by_the_observed_users_upn_once_indexed_and_by_every_upn_once_reconciled(
    settings: Settings, provider: OpenIdProvider
) -> None:
    record = sealed_without_upns(settings, "r-upn", "c-upn", T0)
    assert record.facts.observed_user is not None and record.facts.observed_user.upn is None

    # Sealed, no call record yet (it comes up to 150 minutes later): the policy snapshot names the observed user.
    reconcile(indexed(record))
    assert found(provider, observedUser=UPNS[TRADER].upper()) == ["r-upn"]
    assert found(provider, participant=UPNS[TRADER]) == ["r-upn"]
    assert found(provider, participant=UPNS[CLIENT]) == []  # only the call record knows the client's UPN

    # The call record arrives: reconciliation gives the entry every participant's UPN.
    runtime = container_for(settings).reconciliation
    runtime.reconciler.calls.save_if_newer(call("c-upn", [party(TRADER), party(CLIENT)]), {"id": "c-upn"})
    reconcile(stored("c-upn"))

    assert found(provider, participant=UPNS[CLIENT]) == ["r-upn"]
    assert found(provider, participant="Client@Fabrikam.com", observedUser=UPNS[TRADER]) == ["r-upn"]
    assert found(provider, observedUser=TRADER) == ["r-upn"]  # by object id, as before
    document = entry(settings, "r-upn")
    assert {f"upn:{UPNS[TRADER]}", f"upn:{UPNS[CLIENT]}", f"user:{TRADER}", f"user:{CLIENT}"} <= set(
        document["participantKeys"]
    )
    assert (document["observedUserUpn"], document["verdict"]) == (UPNS[TRADER], "recorded")

    # The recording page shows them too.
    response = detail(request("v1/recordings/x", token=provider.mint(**OFFICER), route_params={"id": "r-upn"}))
    shown = json.loads(response.get_body())["recording"]
    assert shown["observedUser"]["userPrincipalName"] == UPNS[TRADER]
    assert {p["id"]: p["userPrincipalName"] for p in shown["participants"]} == {
        TRADER: UPNS[TRADER],
        CLIENT: UPNS[CLIENT],
    }


def test_writing_the_entry_again_keeps_the_upns_and_changes_nothing(
    settings: Settings, provider: OpenIdProvider
) -> None:
    start = T0 + timedelta(hours=2)
    record = sealed_without_upns(settings, "r-again", "c-again", start)
    runtime = container_for(settings).reconciliation
    runtime.reconciler.calls.save_if_newer(
        call("c-again", [party(TRADER), party(CLIENT)], start=start), {"id": "c-again"}
    )
    reconcile(stored("c-again"))
    first = entry(settings, "r-again")

    # Redelivered messages, in any order, and a write that knows no UPN at all (as the lifecycle's would be).
    reconcile(indexed(record))
    reconcile(stored("c-again"))
    runtime.index.put(record, None)
    reconcile(indexed(record))

    assert entry(settings, "r-again") == first
    assert found(provider, participant=UPNS[CLIENT], **{"from": "2025-03-03T10:00:00Z"}) == ["r-again"]
