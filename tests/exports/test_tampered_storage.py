"""An export never carries bytes other than the sealed ones: evidence changed in storage after sealing (which
Azure's WORM would refuse, and Azurite allows) fails the export, naming the object, and leaves no package."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import T0, TRADER
from tests.api.world import seal_recording
from tests.exports.conftest import OFFICER, REASON, ExportWorld
from verbatim.contracts.exports import ExportRequest
from verbatim.exports import assemble
from verbatim.exports.sealed_media import SealMismatch
from verbatim.exports.service import export_subject
from verbatim.wiring import container_for

pytestmark = pytest.mark.timeout(300)


def test_evidence_changed_in_storage_fails_the_export_and_names_the_object(export_world: ExportWorld) -> None:
    settings = export_world.settings
    sealed = seal_recording(settings, seconds=2.0, started_at=T0 + timedelta(hours=3), user=TRADER)
    container = container_for(settings)
    record = container.recording_finder.get(sealed.recording_id)
    assert record is not None and record.seal is not None
    blob = record.seal.evidence_blob
    changed = bytearray(container.recording_blobs.read(blob))
    changed[len(changed) // 2] ^= 0x01
    container.recording_blobs.write(blob, bytes(changed))

    service = container.exports.service
    export = service.create(ExportRequest(recording_ids=[sealed.recording_id]), OFFICER, REASON)
    with pytest.raises(SealMismatch) as caught:
        service.run_inline(export.id)
    assert blob in caught.value.detail and "is not what was sealed" in caught.value.detail

    service.fail(export.id, caught.value.detail)  # what the orchestration does once its retries are spent
    failed = service.store.get(export.id)
    assert failed is not None and failed.status == "failed" and blob in (failed.error or "")
    assert service.work_store.names(f"{export.id}/") == []  # no package, no work area left
    kinds = [e.kind for e in container.ledger.entries_for_subject(export_subject(export.id), limit=10)]
    assert kinds == ["export.created", "export.failed"]


def test_a_package_needing_more_blocks_than_a_blob_takes_fails_before_committing_and_says_why(
    export_world: ExportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure commits at most 50,000 blocks to a block blob; a package too large for one is split into parts
    (tests/exports/test_multipart.py), and a part that would still need more (here: a single item's part, as the
    limit is lowered to 1 block, below the 2 any part takes) fails the export with the reason instead of the
    storage service's refusal of the block list. 50,001 real blocks are out of reach of a test."""
    monkeypatch.setattr(assemble, "MAX_BLOCKS", 1)
    service = container_for(export_world.settings).exports.service
    ids = [r.recording_id for r in export_world.recordings[:2]]
    export = service.create(ExportRequest(recording_ids=ids), OFFICER, REASON)
    with pytest.raises(assemble.PackageTooLarge, match=r"part 1 of the package would need 2 blocks .* takes 1: "):
        service.run_inline(export.id, batch=1)  # a segment (a block at least) per recording, and the end
    assert not service.work_store.exists(f"{export.id}/package.zip")  # nothing committed
    assert [n for n in service.work_store.names(f"{export.id}/") if "/work/" not in n] == []
