"""Fixture app for the local host's Durable Functions: an HTTP starter and management routes that use
`@app.durable_client_input` as Verbatim's functions do, and one orchestrator per behaviour under test."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Attempts per key, kept in the host process: lets `flaky` fail a given number of times, then succeed.
_attempts: Counter[str] = Counter()

SAY_HELLO = "say_hello"
FLAKY = "flaky"
DOUBLE = "double"
MAKE_TEXT = "make_text"
MEASURE = "measure"


# --- client side: HTTP routes using the durable client binding ---


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"],
        req.params.get("instance_id"),
        json.loads(body) if body else None,
        version=req.params.get("version"),
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="instances/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    found = await client.get_status(
        req.route_params["instance_id"],
        show_history=req.params.get("history") == "1",
        show_history_output=req.params.get("history") == "1",
        show_input=True,
    )
    if not found:
        return func.HttpResponse(status_code=404)
    payload = found.to_json()
    payload["input"] = found.input_
    payload["historyEvents"] = getattr(found, "historyEvents", None)
    return func.HttpResponse(json.dumps(payload), mimetype="application/json")


@app.route(route="instances/{instance_id}/events/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], req.route_params["event"], req.get_json())
    return func.HttpResponse(status_code=202)


@app.route(route="instances/{instance_id}/terminate", methods=["POST"])
@app.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.terminate(req.route_params["instance_id"], req.params.get("reason", "stopped by test"))
    return func.HttpResponse(status_code=202)


@app.route(route="instances/{instance_id}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def purge(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["instance_id"])
    return func.HttpResponse(json.dumps({"deleted": result.instances_deleted}), mimetype="application/json")


@app.route(route="instances", methods=["GET"])
@app.durable_client_input(client_name="client")
async def query(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    statuses = [df.OrchestrationRuntimeStatus(s) for s in req.params.get("status", "").split(",") if s]
    found = await client.get_status_by(runtime_status=statuses or None, instance_id_prefix=req.params.get("prefix"))
    return func.HttpResponse(json.dumps(sorted(s.instance_id for s in found)), mimetype="application/json")


# --- orchestrators ---


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext) -> Any:
    cities = context.get_input()
    greetings = []
    for city in cities:
        greetings.append((yield context.call_activity(SAY_HELLO, city)))
    return greetings


@app.orchestration_trigger(context_name="context")
def retry_flaky(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=300, max_number_of_attempts=3)
    result = yield context.call_activity_with_retry(FLAKY, options, context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input()
    results = yield context.task_all([context.call_activity(DOUBLE, n) for n in range(count)])
    first = yield context.task_any([context.call_activity(DOUBLE, 100), context.call_activity(DOUBLE, 200)])
    return {"results": results, "sum": sum(results), "first": first.result}


@app.orchestration_trigger(context_name="context")
def timer_then_event(context: df.DurableOrchestrationContext) -> Any:
    seconds = context.get_input()["seconds"]
    started = context.current_utc_datetime
    context.set_custom_status({"stage": "timer"})
    yield context.create_timer(started + timedelta(seconds=seconds))
    context.set_custom_status({"stage": "event"})
    approval = yield context.wait_for_external_event("approval")
    greeting = yield context.call_activity(SAY_HELLO, approval["by"])
    context.set_custom_status({"stage": "done"})
    waited = (context.current_utc_datetime - started).total_seconds()
    return {"approval": approval, "greeting": greeting, "waited_at_least": waited >= seconds}


@app.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status("waiting for go")
    value = yield context.wait_for_external_event("go")
    return {"go": value}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Any:
    name = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)
    child = yield context.call_sub_orchestrator("child", name, instance_id=f"{context.instance_id}-child")
    retried = yield context.call_sub_orchestrator_with_retry("child", options, {"flaky": f"{context.instance_id}"})
    return {"child": child, "retried": retried}


@app.orchestration_trigger(context_name="context")
def versioned(context: df.DurableOrchestrationContext) -> Any:
    """Branches on its instance's version, as the versioning docs' example does, and reports the version its
    sub-orchestration got (none is given: the worker's defaultVersion)."""
    name = context.get_input()
    if context.version in (None, "", "1.0"):
        step = yield context.call_activity(SAY_HELLO, name)
    else:
        step = yield context.call_activity(MAKE_TEXT, 3)  # version 2.0's step
    child_version = yield context.call_sub_orchestrator("report_version", None)
    return {"version": context.version, "step": step, "child_version": child_version}


@app.orchestration_trigger(context_name="context")
def report_version(context: df.DurableOrchestrationContext) -> Any:
    return context.version
    yield  # a generator, as every orchestrator


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext) -> Any:
    data = context.get_input()
    if isinstance(data, dict):
        # Fails on its first run (the activity fails once), succeeds when the parent retries it.
        return (yield context.call_activity(FLAKY, {"key": data["flaky"], "fail_times": 1, "value": "child ok"}))
    return {"parent": context.parent_instance_id, "greeting": (yield context.call_activity(SAY_HELLO, data))}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext) -> Any:
    state = context.get_input()
    context.set_custom_status({"count": state["count"]})
    if state["count"] < state["until"]:
        yield context.call_activity(DOUBLE, state["count"])
        context.continue_as_new({"count": state["count"] + 1, "until": state["until"]})
        return None
    return {"final": state["count"]}


@app.orchestration_trigger(context_name="context")
def big_payload(context: df.DurableOrchestrationContext) -> Any:
    text = yield context.call_activity(MAKE_TEXT, context.get_input())
    measured = yield context.call_activity(MEASURE, text)
    return {"made": len(text), "measured": measured}


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity(SAY_HELLO, "before failing")
    raise ValueError("the orchestrator gave up")


# --- activities ---


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="request")
def flaky(request: dict[str, Any]) -> Any:
    _attempts[request["key"]] += 1
    if _attempts[request["key"]] <= request["fail_times"]:
        raise RuntimeError(f"attempt {_attempts[request['key']]} of {request['key']} failed")
    return request.get("value", {"attempts": _attempts[request["key"]]})


@app.activity_trigger(input_name="number")
async def double(number: int) -> int:
    return number * 2


@app.activity_trigger(input_name="size")
def make_text(size: int) -> str:
    return "".join(chr(0x41 + n % 26) for n in range(size))


@app.activity_trigger(input_name="text")
def measure(text: str) -> int:
    return len(text)
