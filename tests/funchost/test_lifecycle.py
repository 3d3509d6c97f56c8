"""The host's lifecycle: graceful shutdown, and extensions loaded, served and stopped through the seam."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from tests.funchost.conftest import APPS, StartHost, wait_for
from tests.funchost.observations import observations

pytestmark = pytest.mark.integration

EXTENSION = "tests.funchost.fake_extension"


def test_sigterm_lets_an_in_flight_request_finish_and_exits_zero(start_host: StartHost, tmp_path: Path) -> None:
    seen = tmp_path / "o.jsonl"
    host = start_host(APPS / "basic", env={"FUNCHOST_OBSERVATIONS": str(seen)})
    responses: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: responses.append(httpx.get(f"{host.base_url}/api/slow", params={"seconds": "1.5"}, timeout=10))
    )
    request.start()
    wait_for(lambda: observations(seen, "slow_started"))  # the request is in the function now

    exit_code = host.stop()
    request.join()

    assert exit_code == 0
    assert [r.status_code for r in responses] == [200]
    assert responses[0].text == "done"
    assert host.log_records()[-1]["message"] == "host stopped"


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_extension_gets_its_triggers_bindings_and_routes_and_is_started_and_stopped(
    start_host: StartHost, tmp_path: Path
) -> None:
    log = tmp_path / "extension.jsonl"
    host = start_host(APPS / "extension", env={"FAKE_EXTENSION_LOG": str(log)}, extensions=[EXTENSION])

    [started] = _events(log)
    assert started["event"] == "start"
    assert started["listening"] is True  # start() runs once the HTTP server listens
    assert started["functions"] == {"echo": "echoTrigger", "echo_async": "echoTrigger", "greet": "httpTrigger"}
    assert started["has_app_setting"] is True

    # The extension's route invokes a sync function through HostServices.invoke; the host fills the
    # extension's input binding from input_binding_value (greeting from host.json's extensions.echo).
    echoed = httpx.post(f"{host.base_url}/runtime/webhooks/echo/echo", content=b"abc")
    assert echoed.json() == {"greeting": "Ahoy (echo/greeting)", "payload": "abc"}
    # An async function runs on the loop and gets the invocation context.
    echoed_async = httpx.post(f"{host.base_url}/runtime/webhooks/echo/echo_async", content=b"xyz").json()
    assert echoed_async["payload"] == "xyz"
    assert echoed_async["function"] == "echo_async"
    assert echoed_async["invocation_id"]
    # HTTP functions get the extension's input bindings too.
    assert httpx.get(f"{host.base_url}/api/greet").text == "Ahoy (greet/greeting)"

    assert host.stop() == 0
    assert [event["event"] for event in _events(log)] == ["start", "stop"]


def test_extension_is_not_created_for_an_app_that_does_not_use_it(start_host: StartHost, tmp_path: Path) -> None:
    log = tmp_path / "extension.jsonl"
    env = {"FAKE_EXTENSION_LOG": str(log), "FUNCHOST_OBSERVATIONS": str(tmp_path / "o.jsonl")}
    host = start_host(APPS / "basic", env=env, extensions=[EXTENSION])

    assert httpx.post(f"{host.base_url}/runtime/webhooks/echo/work", content=b"x").status_code == 404
    host.stop()
    assert _events(log) == []


def test_host_json_log_level_silences_one_functions_invocation_lines(start_host: StartHost, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "basic", app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["logging"] = {"logLevel": {"default": "Information", "Function.hello": "Warning"}}
    (app / "host.json").write_text(json.dumps(host_json))
    host = start_host(app, env={"FUNCHOST_OBSERVATIONS": str(tmp_path / "o.jsonl")})

    httpx.get(f"{host.base_url}/api/hello/ada")
    httpx.get(f"{host.base_url}/api/boom")

    loggers = {r["logger"] for r in host.log_records() if r.get("function") in ("hello", "boom")}
    assert loggers == {"Function.boom"}  # hello's success is below Warning; boom's failure is an error
