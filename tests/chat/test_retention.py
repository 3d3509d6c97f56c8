"""Chat evidence under retention, holds and data-subject requests, on fakes: nothing deleted before its date or
while held (with a certificate when deleted), holds set and lifted on the bundles of custodians, and a person's
chats found and answered bundle by bundle."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.chat.world import CHAT, START, TARA, TOM, UNA, World, message
from verbatim.chat.retention import ChatEvidence, HoldScope
from verbatim.chat.sealing import bundle_prefix
from verbatim.contracts.retention import LegalHold, Officer
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.retention.holds import InMemoryHoldStore
from verbatim.wiring.chat import StoredHolds


class Holds:
    def __init__(self) -> None:
        self.scopes: list[HoldScope] = []

    def active(self) -> list[HoldScope]:
        return list(self.scopes)


def sealed_world() -> tuple[World, ChatEvidence, Holds]:
    world = World()
    world.capture(message("Buy 500 at par", START))
    world.capture(message("Sell 200", START + timedelta(minutes=1)))
    world.now = START + timedelta(days=2)
    world.sealer.seal_due()
    holds = Holds()
    evidence = ChatEvidence(
        repository=world.repo,
        blobs=world.blobs,
        worm=world.worm,
        ledger=world.ledger,
        holds=holds,
        clock=lambda: world.now,
    )
    return world, evidence, holds


def test_the_sweep_deletes_only_after_the_retention_date_and_leaves_a_certificate() -> None:
    world, evidence, _ = sealed_world()
    assert evidence.sweep() == []
    world.now = START + timedelta(days=2556)
    [deleted] = evidence.sweep()
    assert not world.blobs.exists(bundle_prefix(CHAT, "2030-01-01", 1) + "messages.ndjson")
    assert world.repo.versions(CHAT) == []
    entries = list(subject_entries(world.ledger, f"chat:{CHAT}"))
    certificate = [e for e in entries if e.kind == "chat.deleted"][-1]
    assert certificate.details["bundle_id"] == deleted and certificate.details["reason"] == "retention_expired"
    assert "Buy" not in str(certificate.details)
    assert evidence.sweep() == []  # already gone


def test_a_held_bundle_survives_its_retention_date_and_is_released_with_the_hold() -> None:
    world, evidence, holds = sealed_world()
    holds.scopes.append(HoldScope("hold-1", frozenset({TARA}), None, None))
    assert evidence.sync_holds() == (1, 0)
    assert world.worm.held and all(world.worm.held.values())
    world.now = START + timedelta(days=3000)
    assert evidence.sweep() == []
    with pytest.raises(ValueError, match="legal hold"):
        evidence.delete(world.repo.all_bundles()[0], reason="manual", actor="x")
    holds.scopes.clear()
    assert evidence.sync_holds() == (0, 1)
    assert not any(world.worm.held.values())
    assert len(evidence.sweep()) == 1


def test_a_hold_outside_the_bundles_day_does_not_cover_it() -> None:
    _, evidence, holds = sealed_world()
    holds.scopes.append(HoldScope("hold-2", frozenset({TOM}), START + timedelta(days=5), None))
    assert evidence.sync_holds() == (0, 0)


def test_a_person_is_found_and_erasure_is_refused_while_retained_then_done() -> None:
    world, evidence, holds = sealed_world()
    assert [b["chatId"] for b in evidence.subject_bundles([TARA])] == [CHAT]
    assert evidence.subject_bundles([UNA]) == []
    [answer] = evidence.erase_subject([TARA], "req-1", "officer")
    assert answer.decision == "refused" and "retained until" in answer.basis
    holds.scopes.append(HoldScope("hold-3", frozenset({TOM}), None, None))
    world.now = START + timedelta(days=2556)
    [answer] = evidence.erase_subject([TARA], "req-2", "officer")
    assert answer.decision == "refused" and "hold-3" in answer.basis
    holds.scopes.clear()
    [answer] = evidence.erase_subject([TARA], "req-3", "officer")
    assert answer.decision == "erased"
    [answer] = evidence.erase_subject([TARA], "req-4", "officer")
    assert answer.decision == "already_erased"


def test_unsealed_chat_of_a_person_is_answered_once_sealed() -> None:
    world, evidence, _ = sealed_world()
    world.capture(message("today", world.now))
    answers = evidence.erase_subject([TOM], "req-5", "officer")
    assert [a.decision for a in answers] == ["refused", "refused"]
    assert "not yet sealed" in answers[-1].basis


def test_a_hold_that_only_lists_recordings_holds_no_chat_and_a_hold_of_people_still_does() -> None:
    """With no custodians a hold's scope would cover every chat: the stored holds give chat retention only the
    holds that select people."""
    store = InMemoryHoldStore()
    common = {"matter_id": "M", "description": "d", "created_by": Officer(subject="o"), "created_at": START}
    store.create(LegalHold.model_validate({**common, "id": "by-id", "recording_ids": ["rec-1"]}))
    store.create(LegalHold.model_validate({**common, "id": "by-person", "custodians": [TARA]}))

    assert [scope.hold_id for scope in StoredHolds(store).active()] == ["by-person"]
