"""Data-subject requests reach captured chat, through the triggers against the emulators (the retention tests'
world: Cosmos, Azurite with its WORM requests captured, the ledger): the person's sealed chat-days are listed with
their retention class and date and their legal holds, and a chat not sealed yet is listed as such; erasure answers
each bundle — refused while retained or held, with the legal basis; erased once the retention date has passed,
leaving a `chat.deleted` certificate without the text — and refuses what is not sealed yet."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from functions import data_subjects as triggers
from tests.callrecords.oidc import OpenIdProvider
from tests.chat.world import Recorded, message
from tests.retention.test_api import call, payload
from tests.retention.world import SALES, T0, RetentionWorld
from verbatim.chat.directory import InMemoryChatDirectory
from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.sealing import bundle_prefix
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.contracts.retention import HoldRequest, Officer
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.wiring import use_container

pytestmark = pytest.mark.integration

TENANT = "tenant-1"
COLLEAGUE = "u-colleague"
COMPLIANCE = "u-compliance"


@pytest.fixture(autouse=True)
def _world_runtime(world: RetentionWorld) -> Iterator[None]:
    use_container(world.container)
    yield
    use_container(None)


def _chat_id() -> str:
    return f"19:{uuid.uuid4().hex}@thread.v2"


def test_a_persons_chats_are_found_and_erased_only_when_no_retention_or_hold_applies(
    world: RetentionWorld, provider: OpenIdProvider
) -> None:
    officer = provider.mint(oid="officer-a", roles=["Compliance.Officer"])
    world.assign_class(SALES[0], "cftc-oral")
    world.runtime.holds.create(
        HoldRequest(matter_id="M-7", description="desk review", custodians=[COMPLIANCE]), Officer(subject="officer-b")
    )
    plain, held, late = _chat_id(), _chat_id(), _chat_id()
    directory = InMemoryChatDirectory()
    directory.add(plain, [SALES[0], COLLEAGUE], chat_type="oneOnOne", tenant_id=TENANT)
    directory.add(held, [SALES[0], COMPLIANCE], chat_type="oneOnOne", tenant_id=TENANT)
    directory.add(late, [SALES[0], COLLEAGUE], chat_type="group", tenant_id=TENANT)
    chats = world.container.chat
    ingestor = ChatIngestor(
        repository=chats.repository,
        directory=directory,
        policy=Recorded({SALES[0]}),  # the policy gate is not under test here
        blobs=chats.blobs,
        tenant_ids=[TENANT],
        clock=world.clock,
    )

    def capture(chat: str, text: str, minutes: float) -> None:
        body = message(text, T0 + timedelta(minutes=minutes), chat=chat, sender=SALES[0])
        raw = json.dumps(body)
        captured = ChatMessageCaptured(tenant_id=TENANT, source="notification", received_at="now", raw=raw)
        assert ingestor.ingest(captured).action == "stored"

    capture(plain, "Quote at 101.5 for Sam", 5)
    capture(held, "Between us: 101.5", 6)
    world.clock.set(T0 + timedelta(days=1, hours=4))  # 2025-03-03 is over and its grace has passed
    sealed = {o.chat_id: o for o in chats.sealer.seal_due() if o.chat_id in (plain, held)}
    assert set(sealed) == {plain, held}
    capture(late, "Sam, call me back", 60 * 24 + 4 * 60 + 1)  # on 2025-03-04, not sealed yet

    search = triggers.search_data_subject
    found = payload(
        call(search, "x", token=officer, method="POST", body={"subject": {"userId": SALES[0]}, "requestId": "DSAR-9"})
    )
    listed = {c["chatId"]: c for c in found["chats"]}
    assert set(listed) == {plain, held, late}
    assert listed[plain]["retentionClass"] == "cftc-oral" and listed[plain]["retentionUntil"]
    assert listed[held]["legalHolds"] and listed[plain]["legalHolds"] == []
    assert listed[late]["sealed"] is False

    erase = triggers.erase_data_subject

    def answers() -> dict[str, dict[str, Any]]:
        body = {"subject": {"userId": SALES[0]}, "requestId": "DSAR-9"}
        result = payload(call(erase, "x", token=officer, method="POST", body=body))
        return {a["itemId"]: a for a in result["answers"]}

    first = answers()
    plain_bundle, held_bundle = listed[plain]["bundleId"], listed[held]["bundleId"]
    assert first[plain_bundle]["decision"] == "refused" and "cftc-oral" in first[plain_bundle]["basis"]
    assert first[held_bundle]["decision"] == "refused" and "legal hold" in first[held_bundle]["basis"]
    [late_answer] = [a for item, a in first.items() if item.startswith(f"{late}/")]
    assert late_answer["decision"] == "refused" and "not yet sealed" in late_answer["basis"]
    messages_blob = bundle_prefix(plain, "2025-03-03", 1) + "messages.ndjson"
    assert chats.blobs.exists(messages_blob)

    world.clock.set(T0 + timedelta(days=400))  # past the class's retention date; the hold still stands
    second = answers()
    assert second[plain_bundle]["decision"] == "erased"
    assert second[held_bundle]["decision"] == "refused"
    assert not chats.blobs.exists(messages_blob)
    [certificate] = [e for e in subject_entries(world.container.ledger, f"chat:{plain}") if e.kind == "chat.deleted"]
    assert certificate.details["reason"] == "erasure_request" and "101.5" not in json.dumps(certificate.details)
