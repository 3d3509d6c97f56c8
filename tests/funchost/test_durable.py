"""Durable Functions in the local host, end to end: a real host process, real Azurite, the real SDK.

The fixture app (apps/durable) starts orchestrations and manages them through `@app.durable_client_input`
routes, so every call goes SDK client -> Durable HTTP API -> task hub in Azurite -> dispatchers -> the SDK's
replay engine in the orchestrator functions. Some checks use the check-status links directly, as a browser or
curl would.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.funchost.conftest import APPS, RunningHost, StartHost, wait_for

pytestmark = pytest.mark.integration

APP = APPS / "durable"
TERMINAL = {"Completed", "Failed", "Terminated"}


def _hub_env() -> dict[str, str]:
    return {"DURABLE_TASK_HUB_NAME": f"t{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module")
def host(start_module_host: StartHost) -> Iterator[RunningHost]:
    yield start_module_host(APP, env=_hub_env())


def _start(host: RunningHost, name: str, value: Any = None, instance_id: str | None = None) -> dict[str, str]:
    response = httpx.post(
        f"{host.base_url}/api/orchestrators/{name}",
        params={"instance_id": instance_id} if instance_id else None,
        json=value,
        timeout=10,
    )
    assert response.status_code == 202, response.text
    links: dict[str, str] = response.json()
    assert response.headers["Location"] == links["statusQueryGetUri"]
    return links


def _status(host: RunningHost, instance_id: str, history: bool = False) -> dict[str, Any]:
    response = httpx.get(
        f"{host.base_url}/api/instances/{instance_id}", params={"history": "1"} if history else None, timeout=10
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _finished(host: RunningHost, instance_id: str, timeout: float = 20, history: bool = False) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = _status(host, instance_id, history)
        return status if status["runtimeStatus"] in TERMINAL else None

    return dict(wait_for(done, timeout=timeout, interval=0.2))


def _raise(host: RunningHost, instance_id: str, event: str, data: Any) -> None:
    response = httpx.post(f"{host.base_url}/api/instances/{instance_id}/events/{event}", json=data, timeout=10)
    assert response.status_code == 202, response.text


def _event_types(status: dict[str, Any]) -> list[str]:
    return [event["EventType"] for event in status["historyEvents"]]


def test_an_orchestration_calls_its_activities_in_order_and_the_check_status_link_reports_the_output(
    host: RunningHost,
) -> None:
    links = _start(host, "hello_sequence", ["Tokyo", "Seattle", "London"])

    status = _finished(host, links["id"], history=True)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert _event_types(status) == ["ExecutionStarted", *["TaskCompleted"] * 3, "ExecutionCompleted"]
    assert [e["FunctionName"] for e in status["historyEvents"][1:4]] == ["say_hello"] * 3
    assert status["historyEvents"][1]["Result"] == '"Hello Tokyo!"'

    # The links of create_check_status_response work as they are, like with the real host.
    direct = httpx.get(links["statusQueryGetUri"], timeout=10)
    assert direct.status_code == 200
    assert direct.json()["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert direct.json()["runtimeStatus"] == "Completed"
    assert {"sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri"} <= links.keys()


def test_a_retried_activity_that_fails_twice_then_succeeds_completes_after_two_retry_timers(host: RunningHost) -> None:
    key = uuid.uuid4().hex
    links = _start(host, "retry_flaky", {"key": key, "fail_times": 2})

    status = _finished(host, links["id"], history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"attempts": 3}
    assert _event_types(status) == [
        "ExecutionStarted",
        "TaskFailed",
        "TimerFired",
        "TaskFailed",
        "TimerFired",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert "attempt 1 of" in status["historyEvents"][1]["Reason"]
    fired = [datetime.fromisoformat(e["Timestamp"]) for e in status["historyEvents"] if e["EventType"] == "TimerFired"]
    failed = [datetime.fromisoformat(e["Timestamp"]) for e in status["historyEvents"] if e["EventType"] == "TaskFailed"]
    assert all(f - t >= timedelta(milliseconds=300) for t, f in zip(failed, fired, strict=True))


def test_when_retries_run_out_the_orchestration_fails_with_the_activitys_error(host: RunningHost) -> None:
    links = _start(host, "retry_flaky", {"key": uuid.uuid4().hex, "fail_times": 10})

    status = _finished(host, links["id"], history=True)
    assert status["runtimeStatus"] == "Failed"
    assert "Orchestrator function 'retry_flaky' failed" in status["output"]
    assert "attempt 3 of" in status["output"]
    assert _event_types(status).count("TaskFailed") == 3


def test_a_fan_out_of_ten_activities_fans_in_with_all_results_and_task_any_returns_the_first(
    host: RunningHost,
) -> None:
    links = _start(host, "fan_out_fan_in", 10)

    status = _finished(host, links["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["results"] == [n * 2 for n in range(10)]
    assert status["output"]["sum"] == 90
    assert status["output"]["first"] in (200, 400)


def test_a_durable_timer_holds_the_orchestration_and_custom_status_shows_each_stage(host: RunningHost) -> None:
    started = time.monotonic()
    links = _start(host, "timer_then_event", {"seconds": 1.5})

    assert wait_for(lambda: _status(host, links["id"])["customStatus"] == {"stage": "timer"})
    assert wait_for(lambda: _status(host, links["id"])["customStatus"] == {"stage": "event"}, timeout=10)
    assert time.monotonic() - started >= 1.5
    running = httpx.get(links["statusQueryGetUri"], timeout=10)
    assert running.status_code == 202
    assert running.json()["runtimeStatus"] == "Running"
    assert running.json()["customStatus"] == {"stage": "event"}

    _raise(host, links["id"], "approval", {"by": "Ada"})
    status = _finished(host, links["id"])
    assert status["output"] == {"approval": {"by": "Ada"}, "greeting": "Hello Ada!", "waited_at_least": True}
    assert status["customStatus"] == {"stage": "done"}


def test_an_external_event_resumes_a_waiting_orchestration(host: RunningHost) -> None:
    links = _start(host, "wait_for_go")
    wait_for(lambda: _status(host, links["id"])["runtimeStatus"] == "Running")
    assert _status(host, links["id"])["customStatus"] == "waiting for go"

    _raise(host, links["id"], "go", {"speed": 3, "mode": "fast"})

    status = _finished(host, links["id"])
    assert status["output"] == {"go": {"speed": 3, "mode": "fast"}}


def test_an_event_raised_before_the_orchestrator_waits_for_it_is_kept_until_it_does(host: RunningHost) -> None:
    links = _start(host, "timer_then_event", {"seconds": 1.5})
    wait_for(lambda: _status(host, links["id"])["customStatus"] == {"stage": "timer"})

    _raise(host, links["id"], "approval", {"by": "Grace"})  # the orchestrator is still in its timer

    status = _finished(host, links["id"])
    assert status["output"]["approval"] == {"by": "Grace"}


def test_the_send_event_link_raises_an_event_and_answers_410_once_the_instance_is_done(host: RunningHost) -> None:
    links = _start(host, "wait_for_go")
    wait_for(lambda: _status(host, links["id"])["runtimeStatus"] == "Running")
    url = links["sendEventPostUri"].replace("{eventName}", "go")

    assert httpx.post(url, json="green", timeout=10).status_code == 202
    assert _finished(host, links["id"])["output"] == {"go": "green"}
    assert httpx.post(url, json="again", timeout=10).status_code == 410


def test_a_sub_orchestration_returns_its_output_and_a_failed_one_is_retried(host: RunningHost) -> None:
    instance_id = f"parent-{uuid.uuid4().hex[:8]}"
    _start(host, "parent", "Lisbon", instance_id=instance_id)

    status = _finished(host, instance_id, history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"child": {"parent": instance_id, "greeting": "Hello Lisbon!"}, "retried": "child ok"}
    assert _event_types(status).count("SubOrchestrationInstanceFailed") == 1
    assert _event_types(status).count("SubOrchestrationInstanceCompleted") == 2
    child = _status(host, f"{instance_id}-child")
    assert child["runtimeStatus"] == "Completed"
    assert child["output"] == {"parent": instance_id, "greeting": "Hello Lisbon!"}


def test_continue_as_new_restarts_with_new_input_and_a_fresh_history(host: RunningHost) -> None:
    links = _start(host, "counter", {"count": 0, "until": 3})

    status = _finished(host, links["id"], history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"final": 3}
    assert status["customStatus"] == {"count": 3}
    assert _event_types(status) == ["ExecutionStarted", "ExecutionCompleted"]
    assert status["historyEvents"][0]["Input"] == '{"count": 3, "until": 3}'


def test_payloads_larger_than_a_queue_message_or_a_table_property_pass_through(host: RunningHost) -> None:
    links = _start(host, "big_payload", 300_000)

    status = _finished(host, links["id"], history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"made": 300_000, "measured": 300_000}
    assert len(status["historyEvents"][1]["Result"]) == 300_002  # the JSON string, quotes included


def test_an_orchestrator_that_raises_fails_with_its_error_message(host: RunningHost) -> None:
    links = _start(host, "failing")

    status = _finished(host, links["id"])
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'failing' failed: the orchestrator gave up"
    assert httpx.get(links["statusQueryGetUri"], timeout=10).status_code == 200
    assert httpx.get(links["statusQueryGetUri"] + "&returnInternalServerErrorOnFailure=true").status_code == 500


def test_terminate_stops_a_running_orchestration_with_the_reason_as_output(host: RunningHost) -> None:
    links = _start(host, "wait_for_go")
    wait_for(lambda: _status(host, links["id"])["runtimeStatus"] == "Running")

    response = httpx.post(
        f"{host.base_url}/api/instances/{links['id']}/terminate", params={"reason": "no longer needed"}, timeout=10
    )
    assert response.status_code == 202

    status = _finished(host, links["id"])
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "no longer needed"
    again = httpx.post(links["terminatePostUri"].replace("{text}", "twice"), timeout=10)
    assert again.status_code == 410


def test_purge_deletes_a_finished_instance_but_not_a_running_one(host: RunningHost) -> None:
    done = _start(host, "hello_sequence", ["Oslo"])
    _finished(host, done["id"])
    running = _start(host, "wait_for_go")
    wait_for(lambda: _status(host, running["id"])["runtimeStatus"] == "Running")

    purged = httpx.delete(f"{host.base_url}/api/instances/{done['id']}", timeout=10)
    assert purged.json() == {"deleted": 1}
    assert httpx.get(f"{host.base_url}/api/instances/{done['id']}", timeout=10).status_code == 404
    assert httpx.get(done["statusQueryGetUri"], timeout=10).status_code == 404
    assert httpx.delete(running["purgeHistoryDeleteUri"], timeout=10).status_code == 412

    _raise(host, running["id"], "go", 1)
    _finished(host, running["id"])
    assert httpx.delete(running["purgeHistoryDeleteUri"], timeout=10).json() == {"instancesDeleted": 1}


def test_instances_are_listed_by_status_and_prefix_and_purged_by_filter_with_paging(host: RunningHost) -> None:
    prefix = f"batch-{uuid.uuid4().hex[:6]}-"
    since = datetime.now(UTC) - timedelta(seconds=5)
    for n in range(3):
        _start(host, "hello_sequence", [str(n)], instance_id=f"{prefix}{n}")
    _start(host, "wait_for_go", instance_id=f"{prefix}waiting")
    for n in range(3):
        _finished(host, f"{prefix}{n}")
    wait_for(lambda: _status(host, f"{prefix}waiting")["runtimeStatus"] == "Running")

    listed = httpx.get(f"{host.base_url}/api/instances", params={"prefix": prefix}, timeout=10).json()
    assert listed == sorted([f"{prefix}0", f"{prefix}1", f"{prefix}2", f"{prefix}waiting"])
    running = httpx.get(f"{host.base_url}/api/instances", params={"prefix": prefix, "status": "Running"}).json()
    assert running == [f"{prefix}waiting"]

    # Paging through the Durable HTTP API with `top` and the continuation token header.
    base = host.base_url + "/runtime/webhooks/durabletask/instances"
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        page = httpx.get(base, params={"instanceIdPrefix": prefix, "top": "3"}, headers=headers, timeout=10)
        pages.append([item["instanceId"] for item in page.json()])
        token = page.headers.get("x-ms-continuation-token")
        if not token:
            break
    assert pages == [[f"{prefix}0", f"{prefix}1", f"{prefix}2"], [f"{prefix}waiting"]]

    purged = httpx.delete(
        base, params={"createdTimeFrom": since.isoformat(), "runtimeStatus": "Completed"}, timeout=10
    ).json()
    assert purged["instancesDeleted"] >= 3
    remaining = httpx.get(f"{host.base_url}/api/instances", params={"prefix": prefix}, timeout=10).json()
    assert remaining == [f"{prefix}waiting"]


def test_starting_an_unknown_orchestrator_or_a_running_instance_id_again_is_refused(host: RunningHost) -> None:
    api = host.base_url + "/runtime/webhooks/durabletask"
    unknown = httpx.post(f"{api}/orchestrators/no_such_orchestrator", timeout=10)
    assert unknown.status_code == 400
    assert "no_such_orchestrator" in unknown.json()["ExceptionMessage"]

    instance_id = f"once-{uuid.uuid4().hex[:8]}"
    assert httpx.post(f"{api}/orchestrators/wait_for_go/{instance_id}", timeout=10).status_code == 202
    assert httpx.post(f"{api}/orchestrators/wait_for_go/{instance_id}", timeout=10).status_code == 409


def test_entities_are_not_implemented_and_say_so(host: RunningHost) -> None:
    response = httpx.get(host.base_url + "/runtime/webhooks/durabletask/entities/counter/one", timeout=10)
    assert response.status_code == 501
    assert "entities" in response.json()["Message"]


def _kill(host: RunningHost) -> None:
    """SIGKILL the host's process group: no graceful shutdown, nothing handed back."""
    process = host.process.process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    host.process.stop()


def test_an_orchestration_waiting_on_a_timer_and_then_an_event_survives_host_kills(start_host: StartHost) -> None:
    env = _hub_env()
    first = start_host(APP, env=env)
    links = _start(first, "timer_then_event", {"seconds": 3})
    wait_for(lambda: _status(first, links["id"])["customStatus"] == {"stage": "timer"})

    # A killed server leaves its port in TIME_WAIT for a while, so the restarted host listens on another one.
    _kill(first)  # while the durable timer is pending
    second = start_host(APP, env=env, state_dir=first.state_dir)
    status = wait_for(
        lambda: (s := _status(second, links["id"]))["customStatus"] == {"stage": "event"} and s, timeout=20
    )
    assert status["runtimeStatus"] == "Running"

    _kill(second)  # while it waits for the external event
    third = start_host(APP, env=env, state_dir=first.state_dir)
    _raise(third, links["id"], "approval", {"by": "Linus"})

    status = _finished(third, links["id"], history=True)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"approval": {"by": "Linus"}, "greeting": "Hello Linus!", "waited_at_least": True}
    # Nothing ran twice: one timer, one event, one activity.
    assert _event_types(status) == [
        "ExecutionStarted",
        "TimerFired",
        "EventRaised",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
