"""A module-scoped world in the session's emulators for the export tests: recordings captured, finalised,
transcoded and sealed by the lifecycle's own activities (real FLAC and Opus in Azurite, the real ledger v2 log),
their call records and verdicts from reconciliation, reads recorded in the ledger; and an export of them made by
the export service's own steps, downloaded to a file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.testkit.records import SALES, T0, TRADER, call, party, phone, snapshot
from tests.api.world import PSTN, SealedCall, seal_recording
from tests.callrecords.conftest import sim_env, simulator
from tests.conftest import Azurite, Cosmos
from verbatim.contracts.exports import ExportRecord, ExportRequest
from verbatim.evidence.seal import recording_subject
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, Principal
from verbatim.platform.settings import Settings, reload_settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore
from verbatim.wiring import container_for

__all__ = ["export_world", "sim_env", "simulator"]  # the simulator's fixtures serve tests/exports/test_chat_export.py

OFFICER = Principal(subject="officer-1", name="Olive Officer", roles=frozenset({COMPLIANCE_OFFICER}))
AUDITOR = Principal(subject="auditor-1", name="Avery Auditor", roles=frozenset({COMPLIANCE_AUDITOR}))
REASON = "FCA request 2026/117: calls of the sales desk"


@dataclass
class ExportWorld:
    settings: Settings
    recordings: list[SealedCall]
    export: ExportRecord
    package: Path
    env: dict[str, str]


def export_environment(azurite: Azurite, cosmos: Cosmos, root: Path) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "RECORDINGS_STORAGE": azurite.connection_string,
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_CA_CERT": str(cosmos.ca_cert),
        "COSMOS_DATABASE": f"exp{tag}",
        "LEDGER_CONTAINER": f"ledger-exp{tag}",
        "LEDGER_ANCHOR_CONTAINER": f"anchors-exp{tag}",
        "LEDGER_SIGNING_KEY_FILE": str(root / "ledger.pem"),
        "VERBATIM_ENVIRONMENT": "local",
        "MEDIA_CHUNK_BYTES": str(64 * 1024),
    }


def make_export(
    settings: Settings, recording_ids: list[str], root: Path, title: str = "Sales desk calls"
) -> tuple[ExportRecord, Path]:
    """An export of `recording_ids` through the service's own steps, its package downloaded to a file."""
    service = container_for(settings).exports.service
    record = service.create(ExportRequest(recording_ids=recording_ids, title=title), OFFICER, REASON)
    service.run_inline(record.id, batch=2)
    done = service.store.get(record.id)
    assert done is not None and done.status == "completed" and done.result is not None, done
    path = root / f"{record.id}.zip"
    path.write_bytes(service.work_store.read(done.result.package_blob))
    return done, path


@pytest.fixture(scope="module")
def export_world(
    azurite_service: Azurite, cosmos_service: Cosmos, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExportWorld]:
    from devstack.provision import provision_cosmos, provision_storage

    root = tmp_path_factory.mktemp("exports")
    with pytest.MonkeyPatch.context() as patch:
        env = export_environment(azurite_service, cosmos_service, root)
        for name, value in env.items():
            patch.setenv(name, value)
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        container = container_for(settings)
        snapshots = CosmosPolicySnapshotStore(container.database.get_container_client("policy_snapshots"))
        for user in (TRADER, SALES):
            snapshots.add(snapshot(user))
        # Lengths differ so that no two recordings share media bytes (speech() is deterministic).
        sealed = [
            seal_recording(settings, seconds=4.0 + n / 2, started_at=T0 + timedelta(minutes=10 * n), user=user)
            for n, user in enumerate((TRADER, SALES, TRADER))
        ]
        reconciler = container.reconciliation.reconciler
        for one in sealed:
            reconciler.calls.save_if_newer(
                call(one.call_id, [party(TRADER), phone(PSTN)], seconds=one.seconds), {"id": one.call_id}
            )
            reconciler.reconcile_call(one.call_id)
        # Reads of the first recording, as the API records them: they belong to its audit trail.
        for reason in ("complaint 42", "quality review"):
            container.access.record(AUDITOR, "recording.read", recording_subject(sealed[0].recording_id), reason)
        export, package = make_export(settings, [s.recording_id for s in sealed], root)
        yield ExportWorld(settings, sealed, export, package, env)
    reload_settings()
