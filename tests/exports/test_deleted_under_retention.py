"""A recording deleted under retention while an export of it is made: the export fails saying so (never as
evidence that does not match its seal, never a 500), nothing of it is exported after its deletion, and the same
export requested again lists it as deleted under retention, naming the deletion certificate."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.testkit.records import T0, TRADER
from tests.api.world import seal_recording
from tests.exports.conftest import OFFICER, REASON, ExportWorld
from verbatim.contracts.exports import ExportBatch, ExportRequest
from verbatim.exports import names
from verbatim.exports.recording import DeletedUnderRetention
from verbatim.exports.service import export_subject
from verbatim.wiring import Container, container_for

pytestmark = pytest.mark.timeout(300)

# The recordings' default class keeps them 1,827 days from the call's start.
AFTER_RETENTION = T0 + timedelta(days=1828)


def delete_under_retention(export_world: ExportWorld, recording_id: str) -> int:
    """The retention sweep's deletion of the recording (its date passed); the deletion certificate's entry."""
    deleter = Container(export_world.settings, clock=lambda: AFTER_RETENTION).retention.deleter
    outcome = deleter.delete(recording_id, reason="retention_expired", actor="retention-sweep:test")
    assert outcome.certificate is not None
    return outcome.certificate.seq


@pytest.mark.parametrize("moment", ["after the plan, before attesting", "after attesting, before packaging"])
def test_a_recording_deleted_while_it_is_exported_fails_the_export_saying_so(
    export_world: ExportWorld, moment: str, tmp_path: Path
) -> None:
    sealed = seal_recording(export_world.settings, seconds=2.0, started_at=T0 + timedelta(hours=5), user=TRADER)
    rid = sealed.recording_id
    container = container_for(export_world.settings)
    service = container.exports.service
    export = service.create(ExportRequest(recording_ids=[rid]), OFFICER, REASON)
    assert service.plan(export.id).total == 1
    batch = ExportBatch(export_id=export.id, first=0, end=1)
    if moment == "after attesting, before packaging":
        service.attest(batch)
    certificate = delete_under_retention(export_world, rid)

    with pytest.raises(DeletedUnderRetention) as caught:
        if moment == "after the plan, before attesting":
            service.attest(batch)
        else:
            service.package(batch.model_copy(update={"checkpoint_size": service.checkpoint(export.id, 1)}))
    error = caught.value
    assert error.status == 410
    assert f"recording {rid} was deleted under retention (deletion certificate: ledger entry {certificate})" in (
        error.detail
    )
    kinds = [e.kind for e in container.ledger.entries_for_subject(f"recording:{rid}")]
    assert kinds[-1] == "deleted"  # nothing exported after the deletion

    service.fail(export.id, error.detail)  # what the orchestration does once its retries are spent
    failed = service.store.get(export.id)
    assert failed is not None and failed.status == "failed" and "deleted under retention" in (failed.error or "")
    assert service.work_store.names(f"{export.id}/") == []
    assert [e.kind for e in container.ledger.entries_for_subject(export_subject(export.id), limit=10)][-1] == (
        "export.failed"
    )

    # Requested again, with a recording still kept: the deleted one is listed, with its certificate.
    kept = export_world.recordings[0].recording_id
    again = service.create(ExportRequest(recording_ids=[rid, kept]), OFFICER, REASON)
    service.run_inline(again.id)
    done = service.store.get(again.id)
    assert done is not None and done.status == "completed" and done.result is not None
    package = tmp_path / "again.zip"
    package.write_bytes(service.work_store.read(done.result.package_blob))
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read(names.PACKAGE_MANIFEST))
        listed = json.loads(archive.read(names.EXPORT_JSON))
    assert [r["recordingId"] for r in manifest["recordings"]] == [kept]
    excluded = {e["recording_id"]: e["reason"] for e in listed["excluded"]}
    assert excluded == {rid: f"deleted under retention (deletion certificate: ledger entry {certificate})"}
