"""`verbatim verify` against Azurite and the Cosmos emulator: a sealed recording verifies, and tampering with
the media, the manifest or the ledger entry is detected and explained."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from devstack.testkit.captures import speech, stage_capture
from verbatim.cli import main
from verbatim.contracts.evidence import RecordingFacts, RecordingManifest, RetentionTerm
from verbatim.evidence.access_copy import assemble_access_copy, encode_access_chunk, plan_access_copy
from verbatim.evidence.finalise import finalise
from verbatim.evidence.seal import Sealer, SealResult, build_manifest, read_capture
from verbatim.evidence.worm import Worm
from verbatim.ledger import Ledger, fingerprint
from verbatim.ledger.chain import build_entry
from verbatim.ledger.store import entry_id
from verbatim.platform import clients
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for


@dataclass
class Sealed:
    recording_id: str
    result: SealResult
    container: ContainerClient
    ledger: Ledger
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
    [track] = finalise(AzureBlobStore(container), capture)
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
    assert "included in the chain signed at checkpoint 5" in out
    assert "access copy" in out and "as sealed" in out
    assert main(["verify", sealed.recording_id, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True
    assert report["sealed_entry"]["seq"] == 4


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


def test_an_edited_ledger_entry_is_detected(sealed: Sealed, capsys: pytest.CaptureFixture[str]) -> None:
    container = clients.cosmos_database(sealed.settings).get_container_client("ledger")
    doc = container.read_item(entry_id(sealed.result.ledger_entry.seq), partition_key="main")
    doc["details"]["legal_holds"] = []
    doc["details"]["retention_until"] = "2025-01-01T00:00:00+00:00"  # try to make it deletable early
    container.replace_item(doc["id"], doc)

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "[entry.content_altered]" in out and "changed after it was written" in out
    assert "[chain.broken_link]" in out


def test_a_forged_ledger_entry_with_recomputed_hashes_still_breaks_the_chain(
    sealed: Sealed, capsys: pytest.CaptureFixture[str]
) -> None:
    original = sealed.result.ledger_entry
    details = dict(original.details)
    details["retention_until"] = "2025-01-01T00:00:00+00:00"
    forged = build_entry(
        chain="main",
        seq=original.seq,
        kind=original.kind,
        subject=original.subject,
        details=details,
        at=datetime.fromisoformat(original.at.replace("Z", "+00:00")),
        prev_hash=original.prev_hash,
        idempotency_key=original.idempotency_key,
    )
    container = clients.cosmos_database(sealed.settings).get_container_client("ledger")
    container.upsert_item({"id": entry_id(original.seq), "type": "entry", **forged.model_dump(mode="json")})

    code, out = run_verify(sealed.recording_id, capsys)

    assert code == 1
    assert "[entry.content_altered]" not in out  # the forger made the entry self-consistent...
    assert "[chain.broken_link]" in out  # ...but the next entry and the signed checkpoint still name the old hash
    assert main(["ledger", "verify"]) == 1
    assert "checkpoint" in capsys.readouterr().out


def test_an_exported_proof_verifies_offline_with_only_the_key_fingerprint(
    sealed: Sealed, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["ledger", "prove", sealed.recording_id]) == 0
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(capsys.readouterr().out)
    assert sealed.ledger.signer is not None
    trusted = fingerprint(sealed.ledger.signer.public_key_pem())
    # Offline: no storage, no database.
    for name in ("AzureWebJobsStorage", "RECORDINGS_STORAGE", "COSMOS_ENDPOINT"):
        monkeypatch.delenv(name)
    reload_settings()

    assert main(["ledger", "verify-proof", str(proof_file), "--trust", trusted]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert main(["ledger", "verify-proof", str(proof_file), "--trust", "0" * 64]) == 1
    assert "[checkpoint.untrusted_key]" in capsys.readouterr().out
    forged = json.loads(proof_file.read_text())
    forged["entry"]["details"]["retention_until"] = "2025-01-01T00:00:00+00:00"
    proof_file.write_text(json.dumps(forged))
    assert main(["ledger", "verify-proof", str(proof_file), "--trust", trusted]) == 1
    assert "[entry.content_altered]" in capsys.readouterr().out
