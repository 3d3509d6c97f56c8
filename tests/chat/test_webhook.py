"""The chat webhook's receiver on its own (service level, no host): Microsoft's documented notification with
resource data, its placeholders filled with a real encryption and a signed validation token, is queued; a
batch Graph sent for us (its validation tokens hold) that we cannot decrypt, as during a certificate
rotation, is refused and its content fetched through the export API instead; a forged batch is refused and
asks for nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.chat.crypto import TokenSigner, decryption_certificate, encrypt, self_signed
from verbatim.chat.webhook import ChatNotificationReceiver
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.platform.queues import InMemoryAsyncQueue, InMemoryQueue

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "chats"
# Source: microsoft-graph-docs-contrib concepts/teams-changenotifications-chatmessage.md, "Notifications with
# resource data" and "The decrypted notification payload looks like the following".
NOTIFICATION = json.loads((FIXTURES / "notification-with-resource-data.json").read_text())
MESSAGE = json.loads((FIXTURES / "notification-decrypted-chatmessage.json").read_text())
MESSAGE.pop("_source")
# Source: concepts/change-notifications-with-resource-data.md, "Example JWT token".
CLAIMS = {
    k: v for k, v in json.loads((FIXTURES / "validation-token-claims.json").read_text()).items() if k != "_source"
}
APP, TENANT = CLAIMS["aud"], CLAIMS["tid"]
CLIENT_STATE = "a-secret-only-graph-and-we-know"
NOW = CLAIMS["iat"] + 60

KEY, CERT = self_signed()
CURRENT = decryption_certificate(KEY, CERT, "verbatim-chat/current")
OLD_KEY, OLD_CERT = self_signed()
RETIRED = decryption_certificate(OLD_KEY, OLD_CERT, "verbatim-chat/retired")
SIGNER = TokenSigner()


def collection(*, for_certificate: Any = CURRENT, key: Any = KEY, claims: dict[str, Any] | None = None) -> bytes:
    """The documented notification with its placeholders filled: our clientState and tenant, the documented
    message encrypted for `for_certificate`, a validation token signed for `claims`."""
    body = copy.deepcopy(NOTIFICATION)
    body.pop("_source")
    item = body["value"][0]
    item["clientState"] = CLIENT_STATE
    item["tenantId"] = TENANT
    # The documented notification and the documented decrypted payload are two different messages (ids
    # 1612289765949 and 1612289992105 in the same chat): the notification here names the one it carries.
    item["resourceData"]["id"] = MESSAGE["id"]
    item["encryptedContent"] = encrypt(
        MESSAGE, key.public_key(), for_certificate.certificate_id, for_certificate.thumbprint
    )
    body["validationTokens"] = [SIGNER.sign(claims or CLAIMS)]
    return json.dumps(body).encode()


class World:
    def __init__(self) -> None:
        self.audit = InMemoryAuditLog()
        self.catch_ups: list[str] = []
        self.queue = InMemoryQueue()
        self.receiver = ChatNotificationReceiver(
            certificates={CURRENT.certificate_id: CURRENT},
            signing_keys=SIGNER.lookup,
            app_ids=[APP],
            tenant_ids=[TENANT],
            client_states=[CLIENT_STATE],
            audit=self.audit,
            catch_up=self.catch_ups.append,
            clock=lambda: datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
            wall_clock=lambda: NOW,
        )

    def rejections(self) -> list[dict[str, Any]]:
        return [e.detail for e in self.audit.events if e.action == "graph.chat-notification.rejected"]


@pytest.fixture
def world() -> World:
    return World()


def test_the_documented_notification_is_decrypted_and_queued(world: World) -> None:
    accepted = world.receiver.accept(collection(), "application/json", world.queue)
    assert (accepted.notifications, accepted.enqueued, accepted.refused) == (1, 1, None)
    (queued,) = world.queue.bodies()
    captured = ChatMessageCaptured.model_validate_json(queued)
    assert json.loads(captured.raw) == MESSAGE
    assert captured.tenant_id == TENANT and captured.source == "notification"
    assert world.catch_ups == [] and world.rejections() == []


def test_the_async_entry_point_queues_the_same(world: World) -> None:
    queue = InMemoryAsyncQueue()
    accepted = asyncio.run(world.receiver.accept_async(collection(), "application/json", queue))
    assert accepted.enqueued == 1 and len(queue.inner.bodies()) == 1


def test_graphs_batch_for_a_certificate_we_no_longer_hold_is_caught_up_through_the_export_api(world: World) -> None:
    """A rotation: Graph still encrypts for the retired certificate until the subscription names the new one."""
    accepted = world.receiver.accept(collection(for_certificate=RETIRED, key=OLD_KEY), "application/json", world.queue)
    assert accepted.enqueued == 0 and accepted.refused is not None
    assert "encrypted content" in accepted.refused
    assert world.queue.bodies() == []
    assert world.catch_ups == [TENANT]
    (rejection,) = world.rejections()
    assert rejection["genuine"] is True


def test_a_forged_batch_is_refused_and_asks_for_no_back_fill(world: World) -> None:
    forged = TokenSigner("attacker-kid")
    body = json.loads(collection())
    body["validationTokens"] = [forged.sign(CLAIMS)]
    accepted = world.receiver.accept(json.dumps(body).encode(), "application/json", world.queue)
    assert accepted.enqueued == 0 and accepted.refused is not None and "validation token" in accepted.refused
    assert world.catch_ups == []
    (rejection,) = world.rejections()
    assert rejection["genuine"] is False


def test_a_token_for_another_tenant_asks_for_no_back_fill(world: World) -> None:
    other = {**CLAIMS, "tid": "00000000-0000-0000-0000-000000000001"}
    accepted = world.receiver.accept(collection(claims=other), "application/json", world.queue)
    assert accepted.enqueued == 0 and world.catch_ups == []
