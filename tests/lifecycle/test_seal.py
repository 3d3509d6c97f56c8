"""Sealing against Azurite: manifest beside the media, the WORM requests Azure would receive (asserted through
the transport, since Azurite answers 501), the ledger entry, idempotent retries, and the app's own guard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
from azure.storage.blob import ContainerClient

from devstack.testkit.captures import speech, stage_capture
from tests.lifecycle.transport import CapturingTransport
from verbatim.contracts.evidence import RecordingFacts, RecordingManifest, RetentionTerm
from verbatim.contracts.recorder import ObservedUser
from verbatim.evidence.finalise import finalise
from verbatim.evidence.guard import ensure_deletable, ensure_extension
from verbatim.evidence.seal import Sealer, build_manifest, read_capture, seal_capture_manifest
from verbatim.evidence.worm import Worm, WormNotApplied
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.errors import RetentionViolation

SEALED_AT = datetime(2025, 3, 3, 9, 5, tzinfo=UTC)
UNTIL = datetime(2030, 3, 3, 9, 5, tzinfo=UTC)


def manifest_for(container: ContainerClient, recording_id: str, holds: list[str]) -> RecordingManifest:
    staged = stage_capture(container, recording_id, speech(4))
    store = AzureBlobStore(container)
    capture, _ = read_capture(store, staged.capture_blob)
    # The recorder's capture manifest is sealed beside the evidence, under the name the seal derives.
    capture_ref = seal_capture_manifest(store, recording_id, 0, store.read(staged.capture_blob))
    evidence = finalise(store, store, capture, recording_id=capture.recording_id)
    facts = RecordingFacts(
        recording_id=recording_id,
        call_id=capture.call_id,
        observed_user=ObservedUser(id="u-1", upn="trader@contoso.com"),
        recorder_instance=capture.recorder_instance,
        started_at=capture.started_at,
        ended_at=capture.ended_at,
    )
    retention = RetentionTerm(retention_class="mifid2", until=UNTIL, basis="MiFID II Art 16(7)")
    return build_manifest(facts, capture, capture_ref, evidence, None, retention, holds, SEALED_AT)


def ledger() -> Ledger:
    return Ledger(InMemoryLedgerStore(), "main", None)


def test_seal_sends_an_unlocked_immutability_policy_until_the_retention_date_for_every_sealed_object(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, transport = recordings
    manifest = manifest_for(container, "rec-seal", holds=[])
    transport.requests.clear()

    result = Sealer(AzureBlobStore(container), ledger(), worm=Worm(container, emulator=True)).seal(manifest)

    worm = transport.worm_requests()
    prefix = f"/{container.container_name}/rec-seal/"
    assert [(r.method, urlparse(r.url).path.removeprefix("/devstoreaccount1")) for r in worm] == [
        ("PUT", prefix + "audio.flac"),
        ("PUT", prefix + "capture.json"),
        ("PUT", prefix + "manifest.json"),
    ]
    for request in worm:
        assert "comp=immutabilityPolicies" in request.url
        assert request.headers["x-ms-immutability-policy-until-date"] == "Sun, 03 Mar 2030 09:05:00 GMT"
        assert request.headers["x-ms-immutability-policy-mode"] == "Unlocked"
        assert "x-ms-legal-hold" not in request.headers
    assert result.enforcement == "emulator-not-enforced"
    assert result.protected_blobs == [f"rec-seal/{n}" for n in ("audio.flac", "capture.json", "manifest.json")]


def test_seal_sets_a_legal_hold_on_every_sealed_object_when_a_hold_applies(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, transport = recordings
    manifest = manifest_for(container, "rec-held", holds=["matter-42"])
    transport.requests.clear()

    Sealer(AzureBlobStore(container), ledger(), worm=Worm(container, emulator=True)).seal(manifest)

    holds = [r for r in transport.worm_requests() if "comp=legalhold" in r.url]
    assert len(holds) == 3
    assert all(r.method == "PUT" and r.headers["x-ms-legal-hold"] == "true" for r in holds)


def test_a_501_is_an_error_unless_the_target_is_declared_to_be_the_emulator(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    manifest = manifest_for(container, "rec-azure", holds=[])

    with pytest.raises(WormNotApplied, match="501"):
        Sealer(AzureBlobStore(container), ledger(), worm=Worm(container, emulator=False)).seal(manifest)


def test_the_manifest_is_stored_beside_the_media_and_its_hash_is_in_the_sealed_ledger_entry(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    manifest = manifest_for(container, "rec-ledger", holds=["m-1"])
    chain = ledger()

    result = Sealer(AzureBlobStore(container), chain, worm=Worm(container, emulator=True)).seal(manifest)

    stored = container.download_blob(result.manifest_blob.blob_name).readall()
    assert RecordingManifest.model_validate_json(stored) == manifest
    assert json.loads(stored)["retention"]["until"] == "2030-03-03T09:05:00Z"
    entry = result.ledger_entry
    assert (entry.kind, entry.subject, entry.seq) == ("sealed", "recording:rec-ledger", 1)
    assert entry.details["manifest"]["sha256"] == result.manifest_blob.sha256  # type: ignore[index,call-overload]
    assert entry.details["evidence"][0]["sha256"] == manifest.evidence[0].sha256  # type: ignore[index,call-overload]
    assert entry.details["legal_holds"] == ["m-1"]
    assert entry.details["worm"] == "emulator-not-enforced"


def test_sealing_again_after_a_crash_reuses_the_stored_manifest_and_the_ledger_entry(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    manifest = manifest_for(container, "rec-retry", holds=[])
    chain = ledger()
    first = Sealer(AzureBlobStore(container), chain, worm=Worm(container, emulator=True)).seal(manifest)

    later = manifest.model_copy(update={"sealed_at": SEALED_AT + timedelta(minutes=5)})
    second = Sealer(AzureBlobStore(container), chain, worm=Worm(container, emulator=True)).seal(later)

    assert second.manifest == first.manifest
    assert second.manifest_blob.sha256 == first.manifest_blob.sha256
    assert second.ledger_entry == first.ledger_entry
    assert chain.head_entry() == first.ledger_entry


def test_the_app_refuses_to_delete_before_the_retention_date_or_under_hold() -> None:
    with pytest.raises(RetentionViolation, match="retained until"):
        ensure_deletable("r", retention_until=UNTIL, holds=[], now=UNTIL - timedelta(seconds=1))
    with pytest.raises(RetentionViolation, match="legal hold"):
        ensure_deletable("r", retention_until=UNTIL, holds=["m-1"], now=UNTIL + timedelta(days=1))
    ensure_deletable("r", retention_until=UNTIL, holds=[], now=UNTIL)
    with pytest.raises(RetentionViolation, match="only be extended"):
        ensure_extension("r", current_until=UNTIL, requested_until=UNTIL - timedelta(days=1))
