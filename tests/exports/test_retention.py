"""Exports' own retention: a package expires `EXPORT_RETENTION_DAYS` after it was requested (the hourly sweep deletes
it, recorded in the ledger), unless it was made from a legal hold that is still active. An export by hold takes
every recording the hold holds, and their audit trails show the hold."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.testkit.records import SALES
from tests.exports.conftest import OFFICER, REASON, ExportWorld
from verbatim.contracts.exports import ExportRequest
from verbatim.contracts.retention import HoldRequest, Officer
from verbatim.exports import names
from verbatim.exports.service import export_subject
from verbatim.wiring import container_for

pytestmark = pytest.mark.timeout(300)


def test_packages_expire_after_their_retention_unless_their_hold_is_still_active(
    export_world: ExportWorld, tmp_path: Path
) -> None:
    container = container_for(export_world.settings)
    hold = container.retention.holds.create(
        HoldRequest(matter_id="M-EXPORT", description="exports test", custodians=[SALES]),
        Officer(subject="officer-h", name="Hank Holder"),
    ).hold
    service = container.exports.service
    by_hold = service.create(ExportRequest(hold_id=hold.id, title="Matter M-EXPORT"), OFFICER, REASON)
    by_ids = service.create(ExportRequest(recording_ids=[export_world.recordings[0].recording_id]), OFFICER, REASON)
    for export in (by_hold, by_ids):
        service.run_inline(export.id)

    held = service.store.get(by_hold.id)
    assert held is not None and held.result is not None
    sales = [export_world.recordings[1].recording_id]  # the SALES call
    package = tmp_path / "held.zip"
    package.write_bytes(service.work_store.read(held.result.package_blob))
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read(names.PACKAGE_MANIFEST))
        assert [r["recordingId"] for r in manifest["recordings"]] == sales
        trail = archive.read(f"{names.recording_folder(0, sales[0])}/audit-trail.jsonl").splitlines()
    assert "hold.applied" in [json.loads(line)["kind"] for line in trail]
    assert service.status(by_hold.id).held is True

    later = dataclasses.replace(service, clock=lambda: datetime.now(UTC) + timedelta(days=31))
    assert by_ids.id in later.sweep() and by_hold.id not in later.sweep()
    expired = service.store.get(by_ids.id)
    assert expired is not None and expired.status == "expired"
    assert service.work_store.names(f"{by_ids.id}/") == []
    kinds = [e.kind for e in container.ledger.entries_for_subject(export_subject(by_ids.id), limit=10)]
    assert kinds[-1] == "export.deleted"
    kept = service.store.get(by_hold.id)
    assert kept is not None and kept.status == "completed"
    assert service.work_store.names(f"{by_hold.id}/") == [held.result.package_blob]
