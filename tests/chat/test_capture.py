"""Ingestion and sealing on in-memory fakes: every version stored once, chats without a policy user skipped,
hosted contents stored by hash, chat-days sealed after their grace with a ledger entry, late versions in a
second part, and verification that finds a changed line."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tests.chat.world import CHAT, START, TARA, TENANT, TOM, UNA, World, message
from verbatim.chat.directory import HostedBytes
from verbatim.chat.sealing import bundle_prefix
from verbatim.chat.verify import verify_chat
from verbatim.contracts.chat import ChatBundleManifest
from verbatim.evidence.ledger_entries import subject_entries


def test_each_version_is_stored_once_and_edits_and_deletions_are_versions() -> None:
    world = World()
    posted = message("Buy 500 at par", START)
    edited = message("Buy 600 at par", START + timedelta(seconds=5), created=START, edited=START + timedelta(seconds=5))
    deleted = message(
        "",
        START + timedelta(seconds=9),
        created=START,
        edited=START + timedelta(seconds=5),
        deleted=START + timedelta(seconds=9),
    )
    assert [world.capture(m) for m in (posted, edited, posted, deleted, edited)] == [
        "stored",
        "stored",
        "duplicate",
        "stored",
        "duplicate",
    ]
    versions = world.repo.versions(CHAT)
    assert [v["state"] for v in versions] == ["posted", "edited", "deleted"]
    assert [v["text"] for v in versions] == ["Buy 500 at par", "Buy 600 at par", ""]
    chat = world.repo.get_chat(CHAT)
    assert chat is not None and chat["policyUsers"] == [TOM] and chat["messages"] == 1 and chat["versions"] == 3
    assert world.capture(message("from export", START + timedelta(minutes=1)), source="export") == "stored"


def test_a_chat_without_a_policy_user_is_not_captured() -> None:
    world = World()
    other = "19:4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104_5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105@unq.gbl.spaces"
    world.directory.add(other, [UNA, "5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105"], tenant_id=TENANT)
    world.recorded.users = {TOM}
    assert world.capture(message("lunch?", START, chat=other, sender=UNA)) == "not-recorded"
    assert world.repo.versions(other) == []


def test_hosted_contents_are_fetched_once_and_stored_by_their_hash() -> None:
    world = World()
    body = message("", START)
    hosted_id = "aWQ9eF8wLXd1cy1kOS1lNTRm"
    body["body"] = {
        "contentType": "html",
        "content": f'<img src="https://graph.microsoft.com/v1.0/chats/{CHAT}/messages/{body["id"]}/hostedContents/{hosted_id}/$value">',
    }
    picture = b"\x89PNG fake image bytes"
    world.directory.hosted[(CHAT, body["id"], hosted_id)] = HostedBytes(picture, "image/png")
    assert world.capture(body) == "stored"
    [version] = world.repo.versions(CHAT)
    [hosted] = version["hostedContents"]
    assert hosted["sha256"] == hashlib.sha256(picture).hexdigest()
    assert world.blobs.read(hosted["blob"]) == picture


def test_a_day_is_sealed_after_its_grace_and_late_versions_go_to_a_second_part() -> None:
    world = World()
    world.capture(message("one", START))
    world.capture(message("two", START + timedelta(hours=1)))
    world.now = START + timedelta(hours=16)  # 01:00 the next day: inside the grace
    assert world.sealer.seal_due() == []
    world.now = START + timedelta(hours=18)
    [first] = world.sealer.seal_due()
    assert (first.day, first.part, first.versions) == ("2030-01-01", 1, 2)
    manifest = ChatBundleManifest.model_validate_json(
        world.blobs.read(bundle_prefix(CHAT, "2030-01-01", 1) + "manifest.json")
    )
    assert [v.state for v in manifest.versions] == ["posted", "posted"] and manifest.policy_users == [TOM]
    assert world.sealer.seal_due() == []  # nothing left
    world.capture(message("late", START + timedelta(hours=2)), source="export")
    [late] = world.sealer.seal_due()
    assert (late.day, late.part, late.versions) == ("2030-01-01", 2, 1)
    entries = list(subject_entries(world.ledger, f"chat:{CHAT}"))
    assert [e.kind for e in entries] == ["chat.sealed", "chat.sealed"]
    assert all(v["sealedIn"] for v in world.repo.versions(CHAT))
    until = next(iter(world.worm.until.values()))
    assert until == START.replace(hour=0) + timedelta(days=2555)


def test_sealing_again_after_a_crash_finishes_the_same_bundle() -> None:
    world = World()
    world.capture(message("one", START))
    world.now = START + timedelta(days=2)
    first = world.sealer.seal(CHAT, "2030-01-01")
    assert first is not None
    # a crash after the bundle was recorded but before the versions were marked
    for version in world.repo.versions(CHAT):
        version["sealedIn"] = None
        world.repo.replace_version(version)
    again = world.sealer.seal(CHAT, "2030-01-01")
    assert again is not None and (again.bundle_id, again.ledger_seq) == (first.bundle_id, first.ledger_seq)


def test_holds_on_a_member_hold_the_bundle() -> None:
    world = World()
    world.holds.custodians["hold-1"] = [TARA]
    world.capture(message("one", START))
    world.now = START + timedelta(days=2)
    world.sealer.seal_due()
    assert world.worm.held and all(world.worm.held.values())


def test_verification_holds_then_finds_a_changed_line() -> None:
    world = World()
    world.capture(message("Buy 500 at par", START))
    world.capture(message("Sell 200", START + timedelta(minutes=1)))
    world.now = START + timedelta(days=2)
    world.sealer.seal_due()
    result = verify_chat(CHAT, world.blobs, world.ledger)
    assert result.ok and result.versions == 2, result.findings
    name = bundle_prefix(CHAT, "2030-01-01", 1) + "messages.ndjson"
    # rewrite the sealed version itself (what WORM prevents in Azure; Azurite keeps no versions)
    blob = world.blobs._blobs[name]
    version, data = blob.versions[0]
    blob.versions[0] = (version, data.replace(b"Sell 200", b"Sell 900"))
    result = verify_chat(CHAT, world.blobs, world.ledger)
    assert not result.ok and result.findings[0].code == "chat.messages_altered"
    assert "lines 1" in result.findings[0].message
    assert not verify_chat("19:unknown@thread.v2", world.blobs, world.ledger).ok


def test_exports_read_each_sealed_bundle_with_its_ledger_entry() -> None:
    from verbatim.chat.exports import ChatEvidenceReader

    world = World()
    world.capture(message("one", START))
    world.capture(message("two", START + timedelta(days=1)))
    world.now = START + timedelta(days=3)
    world.sealer.seal_due()
    reader = ChatEvidenceReader(world.repo, world.blobs, world.ledger)
    bundles = list(reader.bundles(chat_id=CHAT))
    assert [b.manifest.day for b in bundles] == ["2030-01-01", "2030-01-02"]
    first = bundles[0]
    assert first.sealed_entry is not None and first.sealed_entry.details["bundle_id"] == first.bundle_id
    assert first.proof is None  # no signed checkpoint covers it yet
    world.ledger.checkpoint()
    proven = next(reader.bundles(chat_id=CHAT))
    assert proven.proof is not None and proven.sealed_entry is not None
    assert proven.proof.index == proven.sealed_entry.index
    assert hashlib.sha256(first.messages_bytes).hexdigest() == first.manifest.messages.sha256
    assert [b.manifest.day for b in reader.bundles(participant=TARA, start_day="2030-01-02")] == ["2030-01-02"]
