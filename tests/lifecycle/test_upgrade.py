"""The ledger upgrade, end to end on Azurite and the Cosmos emulator: recordings sealed by the release before it
(the v1 hash chain, with its signed checkpoint) still verify after it — the chain is migrated into the log on
the first use, every v1 sequence number still names its entry, the migration is checked against the v1 head
and checkpoint, and `verbatim verify` proves the old seals with inclusion proofs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.testkit.captures import speech, stage_capture
from verbatim.cli import main
from verbatim.contracts.evidence import RecordingFacts, RetentionTerm
from verbatim.evidence.access_copy import assemble_access_copy, encode_access_chunk, plan_access_copy
from verbatim.evidence.finalise import finalise
from verbatim.evidence.seal import Sealer, SealResult, build_manifest, read_capture, seal_capture_manifest
from verbatim.evidence.worm import Worm
from verbatim.ledger.store import CosmosLedgerStore
from verbatim.ledger.writer import Ledger, LedgerMigrated
from verbatim.platform import clients, layout
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import build_signer, container_for


def seal_with_v1(settings: Settings, ledger: Ledger) -> SealResult:
    """What the release before the upgrade did: seal a recording and append `sealed` to the v1 chain."""
    service = clients.blob_service(settings.recordings_storage_connection)
    container = service.get_container_client(settings.recordings_container)
    scratch = AzureBlobStore(
        clients.blob_service(settings.runtime_storage_connection).get_container_client("lifecycle-scratch")
    )
    recording_id = f"rec-{uuid.uuid4().hex[:10]}"
    staged = stage_capture(container, recording_id, speech(6))
    store = AzureBlobStore(container)
    capture, _ = read_capture(store, staged.capture_blob)
    capture_ref = seal_capture_manifest(store, recording_id, 0, store.read(staged.capture_blob))
    [track] = finalise(store, store, capture, recording_id=recording_id)
    names = [
        encode_access_chunk(AzureBlobStore(container), scratch, recording_id, track, p)
        for p in plan_access_copy(track, 600)
    ]
    access = assemble_access_copy(AzureBlobStore(container), scratch, recording_id, track, names)
    facts = RecordingFacts(recording_id=recording_id, call_id=capture.call_id, recorder_instance="recorder-0")
    retention = RetentionTerm(retention_class="default", until=datetime.now(UTC) + timedelta(days=1827))
    manifest = build_manifest(facts, capture, capture_ref, [track], access, retention, [], datetime.now(UTC))
    worm = Worm(container, emulator=True)
    return Sealer(AzureBlobStore(container), ledger, worm=worm).seal(manifest)


def test_recordings_sealed_before_the_upgrade_still_verify_after_it(
    stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger-signing.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    settings = reload_settings()
    v1 = Ledger(
        CosmosLedgerStore(clients.cosmos_database(settings).get_container_client(layout.LEDGER)),
        settings.ledger_chain,
        build_signer(settings),
    )
    before = [seal_with_v1(settings, v1) for _ in range(2)]
    v1.append("accessed", f"recording:{before[0].manifest.recording_id}", {"reason": "review"}, actor="officer")
    signed = v1.checkpoint()
    assert signed is not None and signed.seq == 3

    # The upgrade: the service's ledger is now the log; its first use migrates the chain.
    log = container_for(reload_settings()).ledger
    after = log.append("accessed", f"recording:{before[1].manifest.recording_id}", {"reason": "after"})
    assert after.index == 5  # the log's first entry, three v1 entries, the ledger.migrated entry, then this
    for result in before:  # the sequence numbers stored before the upgrade still name the entries
        entry = log.entry(result.ledger_entry.seq)
        assert entry is not None and entry.kind == "sealed" and entry.v1 == result.ledger_entry
    with pytest.raises(LedgerMigrated):
        v1.append("accessed", "recording:late", {})
    assert log.checkpoint() is not None

    for result in before:
        assert main(["verify", result.manifest.recording_id]) == 0
        out = capsys.readouterr().out
        assert "VERIFIED" in out and "sealed before the ledger upgrade" in out
        assert f"ledger entry {result.ledger_entry.seq} (sealed) is in the tree signed at size 6" in out
    assert main(["ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert "v1 chain 'main': 3 entries migrated as leaves 1..3" in out and "matches the recorded v1 checkpoint" in out
    assert main(["verify", before[0].manifest.recording_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sealed_entry"]["v1"]["seq"] == 1
