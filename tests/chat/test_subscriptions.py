"""The chat subscription keeper against the simulator's Graph (a real process; the keeper built by the composition
root, Cosmos `subscriptions` on the emulator, the back-fill queue on Azurite), its clock moved by the test:

- created once with encrypted resource data, our certificate and a lifecycle URL, then left alone, then renewed
  (same subscription) when less than the renewal margin is left;
- `subscriptionRemoved` (delivered by the simulator to our lifecycle URL, in the structure Microsoft documents)
  recreates it and asks for a catch-up from the last moment the flow was known whole;
- `reauthorizationRequired` renews it (which also reauthorizes, per Microsoft) and asks for a catch-up;
- `missed` asks for a catch-up and leaves the subscription alone;
- after lost state the keeper adopts the app's subscription instead of making a second one; a new encryption
  certificate replaces the subscription (Graph keeps encrypting for the old one otherwise).

Source of the lifecycle facts and payload structure: microsoft-graph-docs-contrib
concepts/change-notifications-lifecycle-events.md ("Structure of a lifecycle notification"; "subscriptionRemoved
notifications - ... Teams chatMessage"; "renewing your subscription also reauthorizes your endpoint").
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devstack.chat_certificate import ensure_chat_certificate
from tests.callrecords.conftest import Simulator
from tests.callrecords.helpers import drain
from tests.funchost.conftest import wait_for
from verbatim.chat.subscriptions import CHAT_MESSAGES
from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.contracts.chat import ChatBackfillRequest
from verbatim.platform import clients, layout
from verbatim.platform.queues import InMemoryQueue
from verbatim.platform.settings import Settings, reload_settings
from verbatim.platform.times import parse_datetime
from verbatim.wiring.container import Container

pytestmark = pytest.mark.integration

# "Structure of a lifecycle notification" (change-notifications-lifecycle-events.md): exactly these fields.
DOCUMENTED_LIFECYCLE_FIELDS = {
    "subscriptionId",
    "subscriptionExpirationDateTime",
    "tenantId",
    "clientState",
    "lifecycleEvent",
}


class Endpoint:
    """Our webhook and lifecycle URLs as Graph sees them: the validation handshake answered (echo the
    `validationToken` as text/plain), every other POST kept and answered 202."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(url.query).get("validationToken")
                if token:
                    data = token[0].encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                endpoint.received.append((url.path, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def lifecycle(self) -> list[bytes]:
        return [body for path, body in self.received if path == "/api/chat/lifecycle"]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    served.thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


class Rig:
    def __init__(self, settings: Settings, simulator: Simulator, endpoint: Endpoint) -> None:
        self.settings = settings
        self.simulator = simulator
        self.endpoint = endpoint
        self.now = datetime.now(UTC)
        self.container = Container(settings, clock=lambda: self.now)
        self.keeper = self.container.chat.keeper
        self.tenant = simulator.tenant_id

    def subscriptions(self) -> list[dict[str, Any]]:
        """This app's chat subscriptions as the simulator's Graph holds them."""
        return [
            s
            for s in self.simulator.sim("GET", "/sim/subscriptions").json()["value"]
            if s["resource"].startswith("/chats/") and s["notificationUrl"].startswith(self.endpoint.base)
        ]

    def graph_subscription(self, subscription_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.container.graph_for(self.tenant).get_json(f"/subscriptions/{subscription_id}")
        return found

    def lifecycle(self, subscription_id: str, event: str) -> GraphLifecycleEvent:
        """Have the simulator's Graph send `event`, take it through our lifecycle receiver as the webhook does."""
        before = len(self.endpoint.lifecycle())
        self.simulator.sim("POST", f"/sim/subscriptions/{subscription_id}/lifecycle", json={"event": event})
        body = wait_for(lambda: len(self.endpoint.lifecycle()) > before and self.endpoint.lifecycle()[before], 30)
        [item] = json.loads(body)["value"]
        assert set(item) == DOCUMENTED_LIFECYCLE_FIELDS, item
        queue = InMemoryQueue()
        accepted = self.container.chat.receiver.accept_lifecycle(body, "application/json", queue)
        assert accepted.enqueued == 1, accepted
        [message] = queue.bodies()
        return GraphLifecycleEvent.model_validate_json(message)

    def catch_ups(self) -> list[ChatBackfillRequest]:
        return [ChatBackfillRequest.model_validate(m) for m in drain(self.settings, layout.CHAT_BACKFILL_QUEUE)]


def _settings(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, pem: Path, simulator: Simulator) -> Settings:
    monkeypatch.setenv("CHAT_ENCRYPTION_PEM_FILE", str(pem))
    monkeypatch.setenv("CHAT_NOTIFICATION_URL", f"{endpoint.base}/api/chat/notifications?code=k")
    monkeypatch.setenv("CHAT_LIFECYCLE_URL", f"{endpoint.base}/api/chat/lifecycle?code=k")
    monkeypatch.setenv("CHAT_VALIDATION_JWKS_URL", f"{simulator.http_url}/common/discovery/v2.0/keys")
    # Two hours' lifetime, renewed in its last hour: short enough for the simulator's real-time clock to accept
    # a renewal made at a clock the test moved 70 minutes on.
    monkeypatch.setenv("CHAT_SUBSCRIPTION_LIFETIME_MINUTES", "120")
    monkeypatch.setenv("CHAT_SUBSCRIPTION_RENEW_BEFORE_MINUTES", "60")
    return reload_settings()


@pytest.fixture
def rig(
    sim_env: Settings, simulator: Simulator, endpoint: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Rig:
    simulator.sim("POST", "/sim/reset")
    settings = _settings(monkeypatch, endpoint, ensure_chat_certificate(tmp_path / "chat.pem"), simulator)
    states = clients.cosmos_database(settings).get_container_client(layout.SUBSCRIPTIONS)
    key = CHAT_MESSAGES.state_id(simulator.tenant_id)
    with contextlib.suppress(ResourceNotFoundError):
        states.delete_item(key, partition_key=key)
    drain(settings, layout.CHAT_BACKFILL_QUEUE)
    return Rig(settings, simulator, endpoint)


def test_created_with_encrypted_resource_data_left_alone_then_renewed_before_expiry(rig: Rig) -> None:
    created = rig.keeper.ensure(rig.tenant)
    assert created.action == "created"
    [subscription] = rig.subscriptions()
    assert subscription["id"] == created.subscription_id
    assert subscription["resource"] == "/chats/getAllMessages"
    assert subscription["changeType"] == "created,updated,deleted"
    assert subscription["includeResourceData"] is True
    assert subscription["encryptionCertificateId"] == rig.container.chat.key_pairs[0].certificate_id
    assert subscription["lifecycleNotificationUrl"] == rig.settings.chat_lifecycle_url
    first_expiry = parse_datetime(rig.graph_subscription(created.subscription_id)["expirationDateTime"])
    assert first_expiry is not None and timedelta(minutes=110) < first_expiry - rig.now <= timedelta(minutes=120)

    rig.now += timedelta(minutes=30)
    assert rig.keeper.ensure(rig.tenant).action == "unchanged"
    rig.now += timedelta(minutes=40)  # 50 minutes left, under the hour's margin
    renewed = rig.keeper.ensure(rig.tenant)

    assert (renewed.action, renewed.subscription_id) == ("renewed", created.subscription_id)
    expiry = parse_datetime(rig.graph_subscription(created.subscription_id)["expirationDateTime"])
    assert expiry is not None and expiry - first_expiry > timedelta(minutes=60)
    assert [s["id"] for s in rig.subscriptions()] == [created.subscription_id]
    assert rig.catch_ups() == []  # nothing was lost


def test_subscription_removed_recreates_it_and_asks_for_a_catch_up_from_when_the_flow_was_whole(rig: Rig) -> None:
    created = rig.keeper.ensure(rig.tenant)
    whole_until = rig.now
    rig.now += timedelta(minutes=5)

    event = rig.lifecycle(created.subscription_id, "subscriptionRemoved")
    assert (event.lifecycle_event, event.subscription_id) == ("subscriptionRemoved", created.subscription_id)
    result = rig.keeper.handle_lifecycle(event)

    assert result is not None and result.subscription_id != created.subscription_id
    assert [s["id"] for s in rig.subscriptions()] == [result.subscription_id]
    [catch_up] = rig.catch_ups()
    assert (catch_up.tenant_id, catch_up.reason) == (rig.tenant, "subscriptionRemoved")
    assert catch_up.since is not None and parse_datetime(catch_up.since) == whole_until


def test_reauthorization_required_renews_the_same_subscription_and_asks_for_a_catch_up(rig: Rig) -> None:
    created = rig.keeper.ensure(rig.tenant)
    before = parse_datetime(rig.graph_subscription(created.subscription_id)["expirationDateTime"])
    rig.now += timedelta(minutes=10)

    result = rig.keeper.handle_lifecycle(rig.lifecycle(created.subscription_id, "reauthorizationRequired"))

    assert result is not None and (result.action, result.subscription_id) == ("reauthorized", created.subscription_id)
    after = parse_datetime(rig.graph_subscription(created.subscription_id)["expirationDateTime"])
    assert before is not None and after is not None and after - before >= timedelta(minutes=9)
    assert [c.reason for c in rig.catch_ups()] == ["reauthorizationRequired"]


def test_missed_asks_for_a_catch_up_and_leaves_the_subscription_alone(rig: Rig) -> None:
    created = rig.keeper.ensure(rig.tenant)
    expiry = rig.graph_subscription(created.subscription_id)["expirationDateTime"]

    assert rig.keeper.handle_lifecycle(rig.lifecycle(created.subscription_id, "missed")) is None

    assert rig.graph_subscription(created.subscription_id)["expirationDateTime"] == expiry
    assert [c.reason for c in rig.catch_ups()] == ["missed"]


def test_lost_state_adopts_the_apps_subscription_and_a_new_certificate_replaces_it(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = rig.keeper.ensure(rig.tenant)
    states = clients.cosmos_database(rig.settings).get_container_client(layout.SUBSCRIPTIONS)
    key = CHAT_MESSAGES.state_id(rig.tenant)
    states.delete_item(key, partition_key=key)  # our state is lost; Graph still has the subscription

    adopted = rig.keeper.ensure(rig.tenant)
    assert (adopted.action, adopted.subscription_id) == ("adopted", created.subscription_id)
    assert len(rig.subscriptions()) == 1

    settings = _settings(monkeypatch, rig.endpoint, ensure_chat_certificate(tmp_path / "rotated.pem"), rig.simulator)
    rotated = Rig(settings, rig.simulator, rig.endpoint)
    assert rotated.container.chat.key_pairs[0].certificate_id != rig.container.chat.key_pairs[0].certificate_id
    replaced = rotated.keeper.ensure(rotated.tenant)

    assert replaced.action == "recreated" and replaced.subscription_id != created.subscription_id
    [subscription] = rotated.subscriptions()
    assert subscription["encryptionCertificateId"] == rotated.container.chat.key_pairs[0].certificate_id
    assert [c.reason for c in rotated.catch_ups()] == ["subscriptionRemoved"]


def test_a_subscription_graph_dropped_while_we_were_down_is_recreated_with_a_catch_up(rig: Rig) -> None:
    created = rig.keeper.ensure(rig.tenant)
    rig.container.graph_for(rig.tenant).delete(f"/subscriptions/{created.subscription_id}")
    rig.now += timedelta(minutes=20)

    again = rig.keeper.ensure(rig.tenant)

    assert again.action == "recreated" and again.subscription_id != created.subscription_id
    assert [s["id"] for s in rig.subscriptions()] == [again.subscription_id]
    assert [c.reason for c in rig.catch_ups()] == ["subscriptionRemoved"]


def test_a_payment_model_is_named_in_the_resource_and_dropping_it_replaces_the_subscription(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model=A` (teams-licenses.md: no longer metered since 25 August 2025, still accepted) when a tenant asks."""
    monkeypatch.setenv("CHAT_PAYMENT_MODEL", "A")
    modelled = Rig(reload_settings(), rig.simulator, rig.endpoint)
    created = modelled.keeper.ensure(modelled.tenant)
    [subscription] = modelled.subscriptions()
    assert (created.action, subscription["resource"]) == ("created", "/chats/getAllMessages?model=A")

    monkeypatch.delenv("CHAT_PAYMENT_MODEL")
    plain = Rig(reload_settings(), rig.simulator, rig.endpoint)
    replaced = plain.keeper.ensure(plain.tenant)
    [subscription] = plain.subscriptions()
    assert replaced.action == "recreated" and subscription["resource"] == "/chats/getAllMessages"
