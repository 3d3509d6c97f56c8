"""The chat adapters against the Cosmos emulator and Azurite: the repository's queries (versions, unsealed days,
chats by member and time, term and substring search), the policy-user reading of the snapshot store, and a
chat-day sealed into Azurite that `verify_chat` checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.chat.world import CHAT, START, TARA, TENANT, TOM, message
from verbatim.chat.directory import InMemoryChatDirectory
from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.sealing import ChatSealer
from verbatim.chat.store import CosmosChatRepository
from verbatim.chat.verify import verify_chat
from verbatim.cli import main
from verbatim.contracts.policy import EffectivePolicy
from verbatim.ledger.canonical import canonical_json
from verbatim.platform import clients, layout
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore, observe
from verbatim.wiring import container_for
from verbatim.wiring.chat import SnapshotPolicyUsers, SnapshotRecordedUsers

pytestmark = pytest.mark.integration


def test_policy_users_come_from_the_snapshot_store(stack_env: Settings) -> None:
    container = clients.cosmos_database(stack_env).get_container_client(layout.POLICY_SNAPSHOTS)
    store = CosmosPolicySnapshotStore(container)
    observe(
        store,
        EffectivePolicy(userId=TOM, policyName="StrictRecording", source="group", records=True, strict=True),
        datetime(2020, 1, 1, tzinfo=UTC),
        previous_observation=None,
    )
    observe(
        store, EffectivePolicy(userId=TARA, records=False), datetime(2020, 1, 1, tzinfo=UTC), previous_observation=None
    )
    users = SnapshotPolicyUsers(store)
    assert users.must_record(TOM, datetime(2030, 1, 1, tzinfo=UTC)) is True
    assert users.must_record(TARA, datetime(2030, 1, 1, tzinfo=UTC)) is False
    assert users.must_record("5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105", datetime(2030, 1, 1, tzinfo=UTC)) is None
    assert SnapshotRecordedUsers(container).recorded(TENANT, datetime(2030, 1, 1, tzinfo=UTC)) == [TOM]


class Recorded:
    def must_record(self, user_id: str, at: datetime) -> bool | None:
        return user_id == TOM


class Retention:
    def term_for_chat(self, policy_users: object, day_start: datetime, sealed_at: datetime) -> object:
        from verbatim.contracts.evidence import RetentionTerm

        return RetentionTerm(retention_class="standard", until=day_start + timedelta(days=30))


class NoHolds:
    def holds_for_chat(self, members: object, start: datetime, end: datetime) -> list[str]:
        return []


def test_the_repository_seals_into_azurite_and_verifies(
    stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from verbatim.evidence.worm import Worm

    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger-signing.pem"))
    services = container_for(reload_settings())

    database = clients.cosmos_database(stack_env)
    repo = CosmosChatRepository(database.get_container_client(layout.CHATS))
    service = clients.blob_service(stack_env.recordings_storage_connection)
    container = service.get_container_client(stack_env.recordings_container)
    blobs = AzureBlobStore(container)
    directory = InMemoryChatDirectory()
    directory.add(CHAT, [TOM, TARA], chat_type="oneOnOne", tenant_id=TENANT)
    now = [START]
    ingestor = ChatIngestor(
        repository=repo, directory=directory, policy=Recorded(), blobs=blobs, tenant_ids=[TENANT], clock=lambda: now[0]
    )
    from verbatim.contracts.chat import ChatMessageCaptured

    def capture(body: dict[str, object], source: str = "notification") -> str:
        return ingestor.ingest(
            ChatMessageCaptured(tenant_id=TENANT, source=source, received_at="x", raw=json.dumps(body))  # type: ignore[arg-type]
        ).action

    assert capture(message("Buy 500 at PAR", START)) == "stored"
    assert capture(message("Sell 200 lots", START + timedelta(minutes=1), sender=TARA)) == "stored"
    assert capture(message("Sell 200 lots", START + timedelta(minutes=1), sender=TARA)) == "duplicate"
    page, _ = repo.chats_of(TOM, "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z", None, 10)
    assert [d["chatId"] for d in page] == [CHAT]
    assert repo.chats_of("someone-else", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z", None, 10)[0] == []
    hits, _ = repo.search(
        start="2030-01-01T00:00:00Z",
        end="2030-01-02T00:00:00Z",
        terms=["par"],
        substring=None,
        user_id=None,
        continuation=None,
        limit=10,
    )
    assert [h["text"] for h in hits] == ["Buy 500 at PAR"]
    hits, _ = repo.search(
        start="2030-01-01T00:00:00Z",
        end="2030-01-02T00:00:00Z",
        terms=None,
        substring="200 lo",
        user_id=TOM,
        continuation=None,
        limit=10,
    )
    assert [h["text"] for h in hits] == ["Sell 200 lots"]
    assert repo.unsealed("2030-01-02") == [(CHAT, "2030-01-01")]
    ledger = services.ledger  # the v2 log on the emulators (Cosmos ledger_log, the test's own Azurite containers)
    now[0] = START + timedelta(days=2)
    sealer = ChatSealer(
        repository=repo,
        blobs=blobs,
        worm=Worm(container, emulator=True),
        ledger=ledger,
        retention=Retention(),  # type: ignore[arg-type]
        holds=NoHolds(),
        clock=lambda: now[0],
    )
    [outcome] = sealer.seal_due()
    assert outcome.versions == 2 and outcome.enforcement == "emulator-not-enforced"
    assert repo.unsealed("2030-01-05") == []
    ledger.checkpoint()
    result = verify_chat(CHAT, blobs, ledger, services.ledger_anchors)
    assert result.ok and result.versions == 2, result.findings
    assert any("is in the tree signed at size" in note for note in result.notes), result.notes
    # The same through the command line an auditor runs: `verbatim verify <chat id>`.
    assert main(["verify", CHAT, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["chat_id"], printed["verified"], printed["bundles"], printed["versions"]) == (CHAT, True, 1, 2)

    # Edit the chat.sealed entry where the log keeps it (Cosmos ledger_log): the signed tree no longer has it.
    log = database.get_container_client(layout.LEDGER_LOG)
    index = outcome.ledger_seq
    doc = next(
        d for d in log.query_items("SELECT * FROM c WHERE c.type = 'batch'", enable_cross_partition_query=True)
        if d["first"] <= index < d["upto"]
    )  # fmt: skip
    row = doc["entries"][index - doc["first"]]
    entry = json.loads(base64.b64decode(row["d"]))
    entry["details"]["messages"]["sha256"] = "0" * 64
    row["d"] = base64.b64encode(canonical_json(entry)).decode()
    log.replace_item(doc["id"], doc)
    edited = verify_chat(CHAT, blobs, ledger, services.ledger_anchors)
    assert "entry.not_in_tree" in [f.code for f in edited.findings], edited.findings
    assert main(["verify", CHAT]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().out
