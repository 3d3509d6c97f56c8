"""Timer triggers through a real host: admin invocation, run on startup, past due after downtime."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from tests.conftest import Azurite
from tests.funchost.conftest import APPS, RunningHost, StartHost, wait_for
from tests.funchost.observations import observations

pytestmark = pytest.mark.integration


@pytest.fixture
def observations_file(tmp_path: Path) -> Path:
    return tmp_path / "observations.jsonl"


def test_admin_endpoint_fires_a_timer_function(start_host: StartHost, observations_file: Path) -> None:
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(observations_file)})

    response = host.admin_invoke("yearly")

    assert response.status_code == 202
    [fired] = wait_for(lambda: observations(observations_file, "yearly"))
    assert fired["past_due"] is False


def test_admin_endpoint_needs_the_master_key_and_a_non_http_function(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(tmp_path / "o.jsonl")})
    url = f"{host.base_url}/admin/functions"

    assert httpx.post(f"{url}/yearly", json={"input": ""}).status_code == 401
    function_key = {"x-functions-key": host.function_key}
    assert httpx.post(f"{url}/yearly", json={"input": ""}, headers=function_key).status_code == 401
    assert host.admin_invoke("no_such_function").status_code == 404
    assert host.admin_invoke("hello").status_code == 400


def test_run_on_startup_timer_fires_once_when_the_host_starts(start_host: StartHost, observations_file: Path) -> None:
    start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(observations_file)})

    [fired] = wait_for(lambda: observations(observations_file, "on_startup"))
    assert fired["past_due"] is False


def _recorded_status(azurite: Azurite, host: RunningHost) -> dict[str, str] | None:
    host_id = (host.state_dir / "host-id").read_text().strip()
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    blob = blobs.get_blob_client("azure-webjobs-hosts", f"timers/{host_id}/Host.Functions.frequent/status")
    if not blob.exists():
        return None
    status: dict[str, str] = json.loads(blob.download_blob().readall())
    return status


def test_timer_missed_while_the_host_was_down_runs_past_due_on_restart(
    start_host: StartHost, azurite_service: Azurite, observations_file: Path
) -> None:
    # Every 3 s, with the schedule monitor: its status blob records the next due time.
    env = {"FUNCHOST_OBSERVATIONS": str(observations_file), "FREQUENT_SCHEDULE": "*/3 * * * * *"}
    host = start_host(APPS / "basic", env=env)
    wait_for(lambda: observations(observations_file, "frequent"))
    assert host.stop() == 0
    status = _recorded_status(azurite_service, host)
    assert status is not None
    missed = datetime.fromisoformat(status["Next"])
    # Stay down until that due time has passed.
    time.sleep(max((missed - datetime.now(UTC)).total_seconds(), 0) + 0.5)
    before = len(observations(observations_file, "frequent"))

    restarted = start_host(APPS / "basic", env=env, state_dir=host.state_dir)

    after = wait_for(lambda: observations(observations_file, "frequent")[before:])
    assert after[0]["past_due"] is True
    assert datetime.fromisoformat(after[0]["status"]["Next"]) == missed
    # Later occurrences are on schedule again.
    later = wait_for(lambda: observations(observations_file, "frequent")[before + 1 :])
    assert later[0]["past_due"] is False
    restarted.stop()


def test_timer_status_is_not_past_due_on_a_restart_before_the_due_time(
    start_host: StartHost, azurite_service: Azurite, observations_file: Path
) -> None:
    env = {"FUNCHOST_OBSERVATIONS": str(observations_file), "FREQUENT_SCHEDULE": "0 0 0 1 1 *"}
    host = start_host(APPS / "basic", env=env)
    wait_for(lambda: _recorded_status(azurite_service, host))
    host.stop()

    start_host(APPS / "basic", env=env, state_dir=host.state_dir)

    time.sleep(1.0)
    assert observations(observations_file, "frequent") == []
