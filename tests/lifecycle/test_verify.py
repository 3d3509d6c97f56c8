"""`verbatim verify` against Azurite and the Cosmos emulator: a sealed recording verifies, and tampering with
the media, the manifest or the ledger entry is detected and explained."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.cosmos import PartitionKey
from azure.storage.blob import ContainerClient

from devstack.testkit.captures import speech, stage_capture
from tests.ledger.logkit import log_keys
from verbatim.cli import main
from verbatim.contracts.evidence import RecordingFacts, RecordingManifest, RetentionTerm
from verbatim.evidence.access_copy import assemble_access_copy, encode_access_chunk, plan_access_copy
from verbatim.evidence.finalise import finalise
from verbatim.evidence.seal import Sealer, SealResult, build_manifest, read_capture
from verbatim.evidence.worm import Worm
from verbatim.ledger.canonical import canonical_json
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.log.store import BatchEntry
from verbatim.platform import clients, layout
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for


@dataclass
class Sealed:
    recording_id: str
    result: SealResult
    container: ContainerClient
    ledger: TransparencyLog
    settings: Settings


@pytest.fixture
def sealed(stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sealed]:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "state" / "ledger-signing.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    settings = reload_settings()
    service = clients.blob_service(settings.recordings_storage_connection)
    container = service.get_container_client(settings.recordings_container)
    scratch = clients.blob_service(settings.runtime_storage_connection).get_container_client("lifecycle-scratch")
    scratch_store = AzureBlobStore(scratch)
    ledger = container_for(settings).ledger
    for n in range(3):
        ledger.append("accessed", f"recording:earlier-{n}", {"reason": "case review"}, actor="officer@contoso.com")
    recording_id = f"rec-{uuid.uuid4().hex[:10]}"
    staged = stage_capture(container, recording_id, speech(8))
    capture, capture_ref = read_capture(AzureBlobStore(container), staged.capture_blob)
    [track] = finalise(AzureBlobStore(container), AzureBlobStore(container), capture, recording_id=capture.recording_id)
    names = [
        encode_access_chunk(AzureBlobStore(container), scratch_store, recording_id, track, p)
        for p in plan_access_copy(track, 600)
    ]
    access = assemble_access_copy(AzureBlobStore(container), scratch_store, recording_id, track, names)
    facts = RecordingFacts(recording_id=recording_id, call_id=capture.call_id, recorder_instance="recorder-0")
    retention = RetentionTerm(retention_class="default", until=datetime.now(UTC) + timedelta(days=1827))
    manifest = build_manifest(facts, capture, capture_ref, [track], access, retention, [], datetime.now(UTC))
    result = Sealer(
        AzureBlobStore(container), ledger, worm=Worm(container, emulator=settings.recordings_storage_is_emulator)
    ).seal(manifest)
    ledger.append("accessed", f"recording:{recording_id}", {"reason": "replay"}, actor="officer@contoso.com")
    ledger.checkpoint()
    yield Sealed(recording_id, result, container, ledger, settings)


def run_verify(recording_id: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", recording_id])
    return code, capsys.readouterr().out


def test_an_untouched_recording_verifies_up_to_a_signed_checkpoint(
    sealed: Sealed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 0, out
    assert f"recording {sealed.recording_id}: VERIFIED" in out
    assert "ledger entry 4 (sealed) is in the tree signed at size 6" in out
    assert "extends all 1 anchored checkpoints" in out
    assert "access copy" in out and "as sealed" in out
    assert main(["verify", sealed.recording_id, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True
    assert report["sealed_entry"]["index"] == 4 and report["proof"]["treeSize"] == 6
    assert main(["ledger", "verify"]) == 0
    assert "agree with each other" in capsys.readouterr().out


def test_changed_media_is_detected_and_located_in_time(sealed: Sealed, capsys: pytest.CaptureFixture[str]) -> None:
    track = sealed.result.manifest.track()
    blob = sealed.container.get_blob_client(track.blob_name)
    data = bytearray(blob.download_blob().readall())
    data[track.blocks[2].byte_offset + 500] ^= 0x40  # Azure's WORM would refuse this overwrite; Azurite cannot
    blob.upload_blob(bytes(data), overwrite=True)

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "NOT VERIFIED" in out
    assert "[evidence.altered]" in out
    assert "blocks 2 differ" in out
    start = track.blocks[2].start_sample / 16000
    assert f"{start:.1f}-" in out


def test_a_changed_manifest_is_detected(sealed: Sealed, capsys: pytest.CaptureFixture[str]) -> None:
    name = sealed.result.manifest_blob.blob_name
    blob = sealed.container.get_blob_client(name)
    manifest = RecordingManifest.model_validate_json(blob.download_blob().readall())
    forged = manifest.model_copy(update={"call_id": "some-other-call"})
    blob.upload_blob(forged.model_dump_json(indent=2).encode(), overwrite=True)

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "[manifest.altered]" in out and "changed after sealing" in out
    assert "[evidence.altered]" not in out  # the media themselves are still checked, against the ledger


def _edit_sealed_entry(sealed: Sealed) -> bytes:
    """Make the recording deletable early in the ledger's Cosmos copy of its sealed entry; returns the new bytes."""
    container = clients.cosmos_database(sealed.settings).get_container_client(layout.LEDGER_LOG)
    index = sealed.result.ledger_entry.seq
    doc = next(
        d for d in container.query_items("SELECT * FROM c WHERE c.type = 'batch'", enable_cross_partition_query=True)
        if d["first"] <= index < d["upto"]
    )  # fmt: skip
    row = doc["entries"][index - doc["first"]]
    entry = json.loads(base64.b64decode(row["d"]))
    entry["details"]["legal_holds"] = []
    entry["details"]["retention_until"] = "2025-01-01T00:00:00+00:00"
    altered = canonical_json(entry)
    row["d"] = base64.b64encode(altered).decode()
    container.replace_item(doc["id"], doc)
    return altered


def test_an_edited_ledger_entry_is_detected(sealed: Sealed, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_sealed_entry(sealed)

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "[entry.not_in_tree]" in out and "changed after it was written" in out


def test_a_ledger_rewritten_and_re_signed_with_the_key_fails_against_the_anchors(
    sealed: Sealed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever holds the signing key and write access to Cosmos and the log's container (Azurite enforces no
    WORM) rebuilds the whole log around an edited entry and signs it. It verifies on its own; the checkpoint
    anchored before the rewrite (a locked container in Azure) gives it away."""
    log = sealed.ledger
    entries = [e for e in log.entries_between(0, log.size())]
    altered = _edit_sealed_entry(sealed)
    leaves = [altered if e.index == sealed.result.ledger_entry.seq else log.entry_bytes(e.index) for e in entries]
    database = clients.cosmos_database(sealed.settings)
    database.delete_container(layout.LEDGER_LOG)
    database.create_container(layout.LEDGER_LOG, PartitionKey("/pk"))
    blobs = clients.blob_service(sealed.settings.recordings_storage_connection).get_container_client(
        sealed.settings.ledger_container
    )
    for blob in blobs.list_blobs():
        blobs.delete_blob(blob.name)
    forged = container_for(reload_settings()).ledger
    forged.sequencer.sequence(
        [
            BatchEntry(data, e.subject, e.kind, e.idempotency_key)
            for data, e in zip(leaves, entries, strict=True)
            if data
        ]
    )
    progress = forged.store.read_progress()
    forged.store.write_progress(progress, replace(progress, initialized=True))
    assert forged.checkpoint() is not None

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "ledger entry 4 (sealed) is in the tree signed at size 6" in out  # the forgery is self-consistent...
    assert (
        "[anchor.inconsistent]" in out and "does not extend the tree anchored at size 6" in out
    )  # ...but not anchored
    assert main(["ledger", "verify"]) == 1
    assert "[anchor.inconsistent]" in capsys.readouterr().out


def test_an_exported_proof_verifies_offline_with_only_the_log_key(
    sealed: Sealed, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["ledger", "key"]) == 0
    (vkey,) = capsys.readouterr().out.split()
    assert main(["ledger", "prove", sealed.recording_id]) == 0
    proof_file = tmp_path / "sealed.tlog-proof"
    proof_file.write_text(capsys.readouterr().out)
    # Offline: no storage, no database.
    for name in ("AzureWebJobsStorage", "RECORDINGS_STORAGE", "COSMOS_ENDPOINT"):
        monkeypatch.delenv(name)
    reload_settings()

    assert main(["ledger", "verify-proof", str(proof_file), "--key", vkey]) == 0
    other = log_keys(sealed.settings.ledger_origin).verifiers[0].vkey()
    assert main(["ledger", "verify-proof", str(proof_file), "--key", other]) == 1
    assert "note.no_trusted_signature" in capsys.readouterr().out
    lines = proof_file.read_text().split("\n")
    entry = json.loads(base64.b64decode(lines[1].removeprefix("extra ")))
    entry["details"]["retention_until"] = "2025-01-01T00:00:00+00:00"
    lines[1] = "extra " + base64.b64encode(canonical_json(entry)).decode()
    proof_file.write_text("\n".join(lines))
    assert main(["ledger", "verify-proof", str(proof_file), "--key", vkey]) == 1
    assert "proof.root_mismatch" in capsys.readouterr().out
