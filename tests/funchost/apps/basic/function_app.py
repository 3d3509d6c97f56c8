"""A small app for the local host's tests: HTTP with route params and auth levels, timers, queues.

Functions record what they saw as JSON lines in the file named by FUNCHOST_OBSERVATIONS, so a test can
assert on what the function received.
"""

import asyncio
import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def observe(kind: str, **fields: object) -> None:
    with open(os.environ["FUNCHOST_OBSERVATIONS"], "a", encoding="utf-8") as file:
        file.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")


@app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{os.environ['GREETING']} {req.route_params['name']}")


@app.route(route="items/{id:int}/{*rest}", methods=["GET", "POST"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    echo = {
        "method": req.method,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "header": req.headers.get("x-probe"),
        "body": req.get_body().decode(),
    }
    return func.HttpResponse(json.dumps(echo), status_code=201, mimetype="application/json", headers={"x-item": "yes"})


@app.route(route="items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("special")


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("a detail that must not reach the client")


@app.route(route="slow", auth_level=func.AuthLevel.ANONYMOUS)
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    observe("slow_started")
    await asyncio.sleep(float(req.params.get("seconds", "1")))
    return func.HttpResponse("done")


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="out", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", use_monitor=False)
def yearly(timer: func.TimerRequest) -> None:
    observe("yearly", past_due=timer.past_due)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True, use_monitor=False)
def on_startup(timer: func.TimerRequest) -> None:
    observe("on_startup", past_due=timer.past_due)


@app.timer_trigger(schedule="%FREQUENT_SCHEDULE%", arg_name="timer", use_monitor=True)
def frequent(timer: func.TimerRequest) -> None:
    observe("frequent", past_due=timer.past_due, status=timer.schedule_status)


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    observe("work", id=msg.id, body=body, dequeue_count=msg.dequeue_count, pop_receipt=msg.pop_receipt)
    if body.startswith("fail"):
        raise ValueError(f"refusing {body!r}")


@app.queue_trigger(arg_name="body", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
async def slow_work(body: str) -> None:
    started = time.time()
    await asyncio.sleep(float(body.partition(":")[2] or "0.4"))
    observe("slow_work", body=body, started=started, ended=time.time())
