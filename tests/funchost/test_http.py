"""HTTP triggers through a real host process: routes, methods, keys, request and response conversion."""

from __future__ import annotations

import httpx
import pytest

from tests.funchost.conftest import APPS, RunningHost, StartHost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host(start_module_host: StartHost) -> RunningHost:
    return start_module_host(APPS / "basic", env={"GREETING": "hi"})


def test_anonymous_function_needs_no_key_and_sees_route_params_and_app_settings(host: RunningHost) -> None:
    response = httpx.get(f"{host.base_url}/api/hello/ada")
    assert response.status_code == 200
    # GREETING is "hello" in local.settings.json; the environment wins.
    assert response.text == "hi ada"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_function_level_route_is_401_without_a_key(host: RunningHost) -> None:
    assert httpx.get(f"{host.base_url}/api/items/5").status_code == 401
    assert httpx.get(f"{host.base_url}/api/items/5", params={"code": "wrong"}).status_code == 401


@pytest.mark.parametrize("key_kind", ["function", "master"])
@pytest.mark.parametrize("key_place", ["query", "header"])
def test_function_or_master_key_opens_a_function_level_route(host: RunningHost, key_kind: str, key_place: str) -> None:
    key = host.function_key if key_kind == "function" else host.master_key
    params = {"x": "1", **({"code": key} if key_place == "query" else {})}
    headers = {"x-probe": "p", **({"x-functions-key": key} if key_place == "header" else {})}
    response = httpx.post(f"{host.base_url}/api/items/5/a/b", params=params, headers=headers, content=b"payload")

    assert response.status_code == 201
    assert response.headers["x-item"] == "yes"
    assert response.headers["content-type"] == "application/json"
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["route_params"] == {"id": "5", "rest": "a/b"}
    assert echo["params"]["x"] == "1"
    assert echo["header"] == "p"
    assert echo["body"] == "payload"


def test_repeated_query_values_are_joined_with_commas(host: RunningHost) -> None:
    response = httpx.get(f"{host.base_url}/api/items/1?x=1&x=2", headers={"x-functions-key": host.function_key})
    assert response.json()["params"]["x"] == "1,2"


def test_admin_level_takes_only_the_master_key(host: RunningHost) -> None:
    assert httpx.get(f"{host.base_url}/api/admin-only", params={"code": host.function_key}).status_code == 401
    response = httpx.get(f"{host.base_url}/api/admin-only", params={"code": host.master_key})
    assert response.status_code == 200
    assert response.text == "admin"


def test_literal_route_wins_over_a_parameter_route(host: RunningHost) -> None:
    response = httpx.get(f"{host.base_url}/api/items/special", headers={"x-functions-key": host.function_key})
    assert response.text == "special"


def test_unknown_route_is_404_and_a_failed_constraint_is_404(host: RunningHost) -> None:
    key = {"x-functions-key": host.master_key}
    assert httpx.get(f"{host.base_url}/api/nothing-here", headers=key).status_code == 404
    assert httpx.get(f"{host.base_url}/api/items/not-a-number", headers=key).status_code == 404
    assert httpx.get(f"{host.base_url}/hello/ada").status_code == 404  # outside the route prefix


def test_wrong_method_is_405_with_the_allowed_methods(host: RunningHost) -> None:
    response = httpx.delete(f"{host.base_url}/api/items/5", headers={"x-functions-key": host.master_key})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_unhandled_exception_is_a_bare_500_logged_with_its_invocation_id(host: RunningHost) -> None:
    response = httpx.get(f"{host.base_url}/api/boom")

    assert response.status_code == 500
    assert response.content == b""
    failures = [r for r in host.log_records() if r.get("function") == "boom" and r.get("outcome") == "failed"]
    assert len(failures) == 1
    assert failures[0]["invocation_id"]
    assert "a detail that must not reach the client" in failures[0]["exception"]


def test_every_invocation_logs_one_structured_line(host: RunningHost) -> None:
    def hello_records() -> list[dict[str, object]]:
        return [r for r in host.log_records() if r.get("function") == "hello"]

    before = len(hello_records())
    httpx.get(f"{host.base_url}/api/hello/ada")

    records = hello_records()
    assert len(records) == before + 1
    record = records[-1]
    assert record["level"] == "INFO"
    assert record["trigger"] == "httpTrigger"
    assert record["outcome"] == "succeeded"
    assert isinstance(record["duration_ms"], float | int)
    assert record["invocation_id"]


def test_host_status_is_running_and_admin_listing_needs_the_master_key(host: RunningHost) -> None:
    status = httpx.get(f"{host.base_url}/admin/host/status")
    assert status.status_code == 200
    assert status.json()["state"] == "Running"
    assert httpx.get(f"{host.base_url}/admin/functions").status_code == 401
    listing = httpx.get(f"{host.base_url}/admin/functions", headers={"x-functions-key": host.master_key}).json()
    urls = {entry["name"]: entry.get("invoke_url_template") for entry in listing}
    assert urls["hello"] == f"{host.base_url}/api/hello/{{name}}"
    assert urls["work"] is None
