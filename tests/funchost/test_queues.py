"""Queue triggers through a real host against Azurite: success, retries, poison queue, encodings."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from tests.conftest import Azurite
from tests.funchost.conftest import APPS, StartHost, wait_for
from tests.funchost.observations import observations
from verbatim.platform.clients import queue_client
from verbatim.platform.settings import StorageConnection

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_name() -> str:
    return f"work-{uuid.uuid4().hex[:12]}"


def client(azurite: Azurite, name: str) -> QueueClient:
    """A base64 client, as the app's own code would send with."""
    connection = StorageConnection(name="AzureWebJobsStorage", connection_string=azurite.connection_string)
    queue = queue_client(connection, name)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    return queue


def _peek(queue: QueueClient) -> list[object]:
    try:
        return list(queue.peek_messages())
    except ResourceNotFoundError:
        return []


def message_count(queue: QueueClient) -> int:
    """Messages still in the queue, visible or not (zero only once they are deleted)."""
    return queue.get_queue_properties().approximate_message_count or 0


def test_message_is_handed_to_the_function_and_deleted_on_success(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "observations.jsonl"
    queue = client(azurite_service, queue_name)
    start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    sent = queue.send_message(json.dumps({"call": "c-1"}))

    [work] = wait_for(lambda: observations(seen, "work"))
    assert work["id"] == sent.id
    assert json.loads(work["body"]) == {"call": "c-1"}
    assert work["dequeue_count"] == 1
    assert work["pop_receipt"]
    wait_for(lambda: message_count(queue) == 0)


def test_failing_message_is_retried_then_moved_to_the_poison_queue(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    # The fixture app's host.json: maxDequeueCount 3, visibilityTimeout 0.
    seen = tmp_path / "observations.jsonl"
    queue = client(azurite_service, queue_name)
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    sent = queue.send_message("fail: bad payload")

    poison = client(azurite_service, f"{queue_name}-poison")
    [poisoned] = wait_for(lambda: list(poison.peek_messages()))
    assert poisoned.content == "fail: bad payload"  # the original content, still base64 on the wire
    attempts = observations(seen, "work")
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3]
    assert {a["id"] for a in attempts} == {sent.id}
    wait_for(lambda: message_count(queue) == 0)
    [moved] = [r for r in host.log_records() if r.get("message_id") == sent.id and "poison" in r["message"]]
    assert moved["dequeue_count"] == 3
    outcomes = [r["outcome"] for r in host.log_records() if r.get("function") == "work" and "outcome" in r]
    assert outcomes == ["failed"] * 3


def test_message_that_is_not_base64_goes_straight_to_poison(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "observations.jsonl"
    raw = QueueClient.from_connection_string(azurite_service.connection_string, queue_name)
    raw.create_queue()
    start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    raw.send_message("this is not base64!")

    poison = QueueClient.from_connection_string(azurite_service.connection_string, f"{queue_name}-poison")
    [poisoned] = wait_for(lambda: _peek(poison))
    assert poisoned.content == "this is not base64!"
    assert observations(seen, "work") == []


def test_failed_message_stays_invisible_for_the_visibility_timeout(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "basic", app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["queues"].update(visibilityTimeout="00:00:02", maxDequeueCount=2)
    (app / "host.json").write_text(json.dumps(host_json))
    seen = tmp_path / "observations.jsonl"
    queue = client(azurite_service, queue_name)
    start_host(app, env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    queue.send_message("fail twice")
    wait_for(lambda: observations(seen, "work"))
    first = time.monotonic()
    wait_for(lambda: len(observations(seen, "work")) == 2)

    assert time.monotonic() - first >= 1.5
    poison = client(azurite_service, f"{queue_name}-poison")
    wait_for(lambda: list(poison.peek_messages()))


def test_queue_output_binding_enqueues_for_the_queue_trigger(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "observations.jsonl"
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    response = httpx.post(f"{host.base_url}/api/enqueue", content=b"from http")

    assert response.status_code == 202
    [work] = wait_for(lambda: observations(seen, "work"))
    assert work["body"] == "from http"


def test_admin_endpoint_fires_a_queue_function_with_the_input_as_body(
    start_host: StartHost, queue_name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "observations.jsonl"
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "WORK_QUEUE": queue_name})

    assert host.admin_invoke("work", "by hand").status_code == 202

    [work] = wait_for(lambda: observations(seen, "work"))
    assert work["body"] == "by hand"
    assert work["dequeue_count"] == 1


def test_batches_keep_at_most_batch_size_plus_new_batch_threshold_in_flight(
    start_host: StartHost, azurite_service: Azurite, queue_name: str, tmp_path: Path
) -> None:
    # host.json: batchSize 4, newBatchThreshold 2. A batch of 4 starts; once only 2 are still running the
    # next batch of 4 is fetched, so up to 6 run at once, never more. Half the messages take longer, so
    # a batch does not finish all at once. (`str` parameter: the function gets the body as text.)
    seen = tmp_path / "observations.jsonl"
    queue = client(azurite_service, queue_name)
    bodies = [f"m{number}:{0.2 if number % 2 else 1.5}" for number in range(12)]
    for body in bodies:
        queue.send_message(body)
    start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen), "SLOW_QUEUE": queue_name})

    done = wait_for(lambda: len(observations(seen, "slow_work")) == 12 and observations(seen, "slow_work"))

    assert sorted(d["body"] for d in done) == sorted(bodies)
    edges = sorted([(d["started"], 1) for d in done] + [(d["ended"], -1) for d in done])
    running, most = 0, 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert 4 < most <= 6
