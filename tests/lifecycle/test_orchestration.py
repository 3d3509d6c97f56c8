"""recording_lifecycle in the local Functions host (real SDK replay, Azurite task hub, Cosmos emulator):
recorder events on the queue drive a call to sealed evidence; a recorder that goes silent is salvaged; the
orchestration survives a restart of the host in the middle of a call."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.testkit.captures import speech, stage_capture
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from tests.lifecycle.events import joined, started, stopped
from verbatim.contracts.recorder import RecorderEvent
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform import clients
from verbatim.platform.settings import Settings, reload_settings

pytestmark = pytest.mark.integration

APP = Path(__file__).parent / "app"
ENV_NAMES = (
    "AzureWebJobsStorage",
    "RECORDINGS_STORAGE",
    "COSMOS_ENDPOINT",
    "COSMOS_KEY",
    "COSMOS_CA_CERT",
    "COSMOS_DATABASE",
    "LEDGER_CONTAINER",
    "LEDGER_ANCHOR_CONTAINER",
    "LEDGER_SIGNING_KEY_FILE",
    "RECORDINGS_STORAGE_IS_EMULATOR",
)


@pytest.fixture
def settings(stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    return reload_settings()


@pytest.fixture
def launcher(azurite_service: Azurite, tmp_path: Path) -> Iterator[HostLauncher]:
    hosts = HostLauncher(azurite_service, tmp_path)
    yield hosts
    hosts.stop_all()


def start_host(launcher: HostLauncher, state_dir: Path, hub: str) -> RunningHost:
    env = {name: os.environ[name] for name in ENV_NAMES}
    env["DURABLE_TASK_HUB_NAME"] = hub
    return launcher.start(APP, env=env, state_dir=state_dir)


def send(settings: Settings, *events: RecorderEvent) -> None:
    queue = clients.queue_service(settings.runtime_storage_connection).get_queue_client("recorder-events")
    for event in events:
        queue.send_message(event.model_dump_json())


def status(host: RunningHost, recording_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{host.base_url}/runtime/webhooks/durabletask/instances/recording-{recording_id}",
        headers={"x-functions-key": host.master_key},
        timeout=10,
    )
    # 202 while running, 200 once finished, 404 before the first event started it.
    return dict(response.json()) if response.status_code in (200, 202) else {}


def stage_of(host: RunningHost, recording_id: str) -> str | None:
    custom = status(host, recording_id).get("customStatus")
    return custom.get("stage") if isinstance(custom, dict) else None


def finished(host: RunningHost, recording_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        current = status(host, recording_id)
        return current if current.get("runtimeStatus") in ("Completed", "Failed", "Terminated") else None

    return dict(wait_for(done, timeout=timeout, interval=0.5))


def test_recorder_events_drive_a_call_to_sealed_evidence(
    settings: Settings, launcher: HostLauncher, tmp_path: Path
) -> None:
    host = start_host(launcher, tmp_path / "host", f"t{uuid.uuid4().hex[:10]}")
    captures = clients.blob_service(settings.recordings_storage_connection).get_container_client("captures")
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    staged = stage_capture(captures, recording_id, speech(6), started_at=now)
    send(settings, started(recording_id, at=now, heartbeat=30), joined(recording_id, at=now))
    wait_for(lambda: stage_of(host, recording_id) == "capturing", timeout=30)
    stop = stopped(recording_id, staged.manifest.tracks[0].sha256, 6.0, at=now)
    send(settings, stop, stop)  # a redelivered event is harmless

    result = finished(host, recording_id)

    assert result["runtimeStatus"] == "Completed", result
    assert result["output"] == {"recording_id": recording_id, "status": "sealed", "interrupted": False}
    assert result["customStatus"]["stage"] == "sealed"
    store = CosmosRecordingStore(clients.cosmos_database(settings).get_container_client("recordings"))
    record = store.get(recording_id)
    assert record is not None and record.status == "sealed" and record.seal is not None
    assert record.seal.worm == "emulator-not-enforced"
    # The access copy is made afterwards, by the `access-copies` queue trigger, and sealed in its own right.

    def access_sealed() -> Any:
        current = store.get(recording_id)
        seal = current.seal if current is not None else None
        return seal if seal is not None and seal.access_copy_blob and not seal.parts[-1].access_pending else None

    seal = wait_for(access_sealed, timeout=60, interval=0.5)
    assert seal.parts[-1].access_manifest_blob is not None and seal.parts[-1].access_ledger_seq is not None


def test_a_silent_recorder_is_salvaged_and_sealed_as_interrupted(
    settings: Settings, launcher: HostLauncher, tmp_path: Path
) -> None:
    host = start_host(launcher, tmp_path / "host", f"t{uuid.uuid4().hex[:10]}")
    captures = clients.blob_service(settings.recordings_storage_connection).get_container_client("captures")
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    staged = stage_capture(captures, recording_id, speech(5), commit=False, started_at=now)
    captures.delete_blob(staged.capture_blob)
    send(settings, started(recording_id, at=now, heartbeat=1))  # then nothing: the recorder died

    # Nobody to ask: silent after 2 heartbeats + the Table service's 30 s server timeout.
    result = finished(host, recording_id, timeout=90)

    assert result["runtimeStatus"] == "Completed", str(result.get("output"))[:3000]
    assert result["output"]["interrupted"] is True


def test_the_orchestration_survives_a_host_restart_in_the_middle_of_a_call(
    settings: Settings, launcher: HostLauncher, tmp_path: Path
) -> None:
    hub, state_dir = f"t{uuid.uuid4().hex[:10]}", tmp_path / "host"
    host = start_host(launcher, state_dir, hub)
    captures = clients.blob_service(settings.recordings_storage_connection).get_container_client("captures")
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    staged = stage_capture(captures, recording_id, speech(4), started_at=now)
    send(settings, started(recording_id, at=now, heartbeat=30))
    wait_for(lambda: stage_of(host, recording_id) == "capturing", timeout=30)

    host.stop()
    send(settings, stopped(recording_id, staged.manifest.tracks[0].sha256, 4.0, sequence=1, at=now))
    host = start_host(launcher, state_dir, hub)

    result = finished(host, recording_id)
    assert result["runtimeStatus"] == "Completed", result
    assert result["output"]["status"] == "sealed"


def test_a_recorder_event_naming_another_recordings_evidence_is_rejected_and_nothing_is_touched(
    settings: Settings, launcher: HostLauncher, tmp_path: Path
) -> None:
    """Issue 13, finding 2, through the real queue trigger: the event is dropped (no record, no orchestration),
    the victim's sealed blobs are untouched, and the rejection is a security event in the audit log."""
    host = start_host(launcher, tmp_path / "host", f"t{uuid.uuid4().hex[:10]}")
    recordings = clients.blob_service(settings.recordings_storage_connection).get_container_client("recordings")
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    recordings.upload_blob(f"{victim}/audio.flac", b"sealed evidence")
    before = {b.name: b.etag for b in recordings.list_blobs(name_starts_with=f"{victim}/")}
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    hostile = started(recording_id).model_copy(update={"blob_name": f"{victim}/audio.flac"})
    send(settings, hostile, started(f"rec-{uuid.uuid4().hex[:8]}"))  # and an honest one, to know when it is done

    audit = clients.cosmos_database(settings).get_container_client("audit")

    def rejected() -> list[dict[str, Any]]:
        return list(
            audit.query_items(
                "SELECT * FROM c WHERE c.action = 'recorder.event.rejected' AND c.target = @target",
                parameters=[{"name": "@target", "value": f"recording:{recording_id}"}],
                enable_cross_partition_query=True,
            )
        )

    (record,) = wait_for(rejected, timeout=60)
    assert record["category"] == "security" and f"{victim}/audio.flac" in record["detail"]["reason"]
    store = CosmosRecordingStore(clients.cosmos_database(settings).get_container_client("recordings"))
    assert store.get(recording_id) is None
    assert status(host, recording_id) == {}
    assert {b.name: b.etag for b in recordings.list_blobs(name_starts_with=f"{victim}/")} == before
