"""The Graph webhooks through their triggers, against real Azurite queues and the Cosmos emulator:
handshake, verified notifications enqueued (202), forged / malformed / oversized / wrong-type bodies
refused with 4xx and nothing enqueued, an enqueue failure answered 5xx so Graph retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import azure.functions as func
import pytest

from functions import graph_webhook
from tests.callrecords.fixtures import load
from tests.callrecords.helpers import (
    SECRET,
    TENANT,
    cosmos_items,
    drain,
    handler,
    notification_body,
    post,
    queue_messages,
)
from verbatim.platform.settings import Settings, reload_settings

_notifications = handler(graph_webhook.graph_notifications)


def notifications(request: func.HttpRequest) -> func.HttpResponse:
    """The async webhook trigger, run to completion (as the host runs it on its event loop)."""
    response: func.HttpResponse = asyncio.run(_notifications(request))
    return response


lifecycle = handler(graph_webhook.graph_lifecycle)


@pytest.fixture
def webhook_env(stack_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("GRAPH_CLIENT_STATE", SECRET)
    monkeypatch.setenv("GRAPH_TENANT_ID", TENANT)
    monkeypatch.setenv("GRAPH_WEBHOOK_MAX_BYTES", "65536")
    settings = reload_settings()
    drain(settings, "callrecord-notifications")
    drain(settings, "graph-lifecycle")
    yield settings


def security_events(settings: Settings) -> list[dict[str, object]]:
    return cosmos_items(settings, "audit", "SELECT * FROM c WHERE c.category = 'security'")


def test_the_validation_handshake_echoes_the_url_decoded_token_as_plain_text(webhook_env: Settings) -> None:
    # The query string carried `Validation%3A%20Testing%20client%20application%20reachability+<id>`.
    token = "Validation: Testing client application reachability for subscription Request-Id: 1+2/3?"
    for trigger, route in ((notifications, "graph/notifications"), (lifecycle, "graph/lifecycle")):
        response = trigger(post(route, b"", content_type="text/plain", params={"validationToken": token}))

        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        assert response.get_body().decode() == token
    assert queue_messages(webhook_env, "callrecord-notifications") == []


def test_the_documented_notification_is_enqueued_and_answered_202(webhook_env: Settings) -> None:
    body = json.dumps(load("notification.json")).replace("{secret}", SECRET)

    response = notifications(post("graph/notifications", body, content_type="application/json; charset=utf-8"))

    assert response.status_code == 202
    (message,) = queue_messages(webhook_env, "callrecord-notifications")
    assert message["schema"] == "callrecord.notification"
    assert message["callRecordId"] == "e523d2ed-2966-4b6b-925b-754a88034cc5"
    assert (message["tenantId"], message["changeType"], message["source"]) == (TENANT, "created", "notification")


def test_a_batch_is_enqueued_once_per_record(webhook_env: Settings) -> None:
    response = notifications(post("graph/notifications", notification_body(["a1", "a2", "a1"])))

    assert response.status_code == 202
    assert sorted(m["callRecordId"] for m in queue_messages(webhook_env, "callrecord-notifications")) == ["a1", "a2"]


@pytest.mark.parametrize("secret", ["wrong-secret", "", SECRET + "x"])
def test_a_forged_client_state_is_refused_recorded_and_nothing_enqueued(
    webhook_env: Settings, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTED_FORWARDED_HOPS", "1")  # one proxy of ours appends the address it saw
    reload_settings()
    body = notification_body(["ok-1"])
    body["value"] += notification_body(["forged-1"], secret=secret, subscription="sub-evil")["value"]

    # The sender wrote the first entry itself; the proxy appended the second.
    forwarded = {"x-forwarded-for": "198.51.100.66, 203.0.113.9"}
    response = notifications(post("graph/notifications", body, headers=forwarded))

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert queue_messages(webhook_env, "callrecord-notifications") == []
    (event,) = security_events(webhook_env)
    assert event["action"] == "graph.notification.rejected"
    assert event["detail"]["subscriptionIds"] == ["sub-evil"]  # type: ignore[index]
    assert event["detail"]["sourceIp"] == "203.0.113.9"  # type: ignore[index]
    assert SECRET not in json.dumps(event) and (not secret or secret not in json.dumps(event))


def test_x_forwarded_for_is_not_believed_unless_our_proxies_are_configured(webhook_env: Settings) -> None:
    # Issue 13, finding 10: anyone can write the header; with TRUSTED_FORWARDED_HOPS unset it is not used.
    body = notification_body(["forged-1"], secret="wrong-secret", subscription="sub-evil")

    response = notifications(post("graph/notifications", body, headers={"x-forwarded-for": "203.0.113.9"}))

    assert response.status_code == 403
    (event,) = security_events(webhook_env)
    assert event["detail"]["sourceIp"] is None  # type: ignore[index]


def test_a_missing_client_state_is_refused(webhook_env: Settings) -> None:
    body = notification_body(["x"])
    del body["value"][0]["clientState"]

    assert notifications(post("graph/notifications", body)).status_code == 403
    assert queue_messages(webhook_env, "callrecord-notifications") == []


def test_a_notification_from_an_unconfigured_tenant_is_refused(webhook_env: Settings) -> None:
    response = notifications(post("graph/notifications", notification_body(["x"], tenant="other-tenant")))

    assert response.status_code == 403
    assert queue_messages(webhook_env, "callrecord-notifications") == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"value": [', "application/json", 400),
        (b"not json at all", "application/json", 400),
        (b'{"value": []}', "application/json", 400),
        (b'{"value": [{"clientState": "x"}]}', "application/json", 400),
        (b'{"value": "nope"}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (json.dumps(notification_body(["x"])).encode(), "text/plain", 415),
        (json.dumps(notification_body(["x"])).encode(), None, 415),
        (json.dumps(notification_body(["x"])).encode(), "application/xml", 415),
        (b" " * 70_000, "application/json", 413),
    ],
)
def test_malformed_wrong_type_and_oversized_bodies_get_a_clear_4xx_and_nothing_is_enqueued(
    webhook_env: Settings, body: bytes, content_type: str | None, status: int
) -> None:
    response = notifications(post("graph/notifications", body, content_type=content_type))

    assert response.status_code == status
    problem = json.loads(response.get_body())
    assert problem["status"] == status and problem["detail"]
    assert queue_messages(webhook_env, "callrecord-notifications") == []


def test_a_record_id_that_could_reshape_a_graph_url_is_refused(webhook_env: Settings) -> None:
    response = notifications(post("graph/notifications", notification_body(["../../users"])))

    assert response.status_code == 400
    assert queue_messages(webhook_env, "callrecord-notifications") == []


def test_when_the_queue_is_unreachable_the_webhook_answers_503_so_graph_retries(
    webhook_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.processes import free_port

    dead = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    reload_settings()

    for batch in (["x"], ["x", "y", "z"]):  # one send, and a batch sent concurrently
        response = notifications(post("graph/notifications", notification_body(batch)))

        assert response.status_code == 503


def test_a_lifecycle_notification_is_verified_and_queued_for_the_subscription_keeper(webhook_env: Settings) -> None:
    body = json.dumps(load("lifecycle-reauthorization-required.json")).replace("{secret}", SECRET)
    assert lifecycle(post("graph/lifecycle", body)).status_code == 202
    (event,) = queue_messages(webhook_env, "graph-lifecycle")
    assert (event["schema"], event["lifecycleEvent"]) == ("graph.lifecycle", "reauthorizationRequired")

    forged = body.replace(SECRET, "nope")
    assert lifecycle(post("graph/lifecycle", forged)).status_code == 403
    assert len(queue_messages(webhook_env, "graph-lifecycle")) == 1
