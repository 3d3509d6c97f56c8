"""Chat capture end to end through the local Functions host, the simulator, Azurite and the Cosmos emulator.

The host runs the real `function_app.py`: its start-up timer creates the `/chats/getAllMessages` subscription
(encrypted resource data, our certificate), the simulator notifies the webhook, which validates the tokens,
decrypts, checks the HMAC and queues; ingestion stores every version. Forged notifications (bad HMAC, a bad
validation token, a foreign certificate) are answered 202 and nothing of them is stored. Dropping the
subscription's deliveries for a window and sending `missed` leads to a back-fill that stores every message of
the window exactly once.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from tests.callrecords.conftest import FUNCTIONS_APP_ID, Simulator
from tests.callrecords.helpers import cosmos_items
from tests.chat.crypto import encrypt, self_signed
from tests.funchost.conftest import RunningHost, wait_for
from verbatim.chat.certificates import load_pem
from verbatim.contracts.policy import EffectivePolicy
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore, observe

pytestmark = pytest.mark.integration
TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"


@pytest.fixture
def host(chat_host: Callable[[], RunningHost], sim_env: Settings, tmp_path: Path) -> tuple[RunningHost, Settings, Path]:
    running = chat_host()
    _record_tom(sim_env)
    return running, sim_env, tmp_path / "chat.pem"


def _record_tom(settings: Settings) -> None:
    """Tom is a policy user from now on. The host's coverage audit runs at start-up against a tenant with no
    published desired state (so it observes nobody as recorded): let it, then observe Tom as recorded."""
    container = clients.cosmos_database(settings).get_container_client(layout.POLICY_SNAPSHOTS)
    wait_for(
        lambda: any(
            s["userId"] == TOM for s in container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
        ),
        60,
    )
    observe(
        CosmosPolicySnapshotStore(container),
        EffectivePolicy(userId=TOM, policyName="StrictRecording", source="group", records=True, strict=True),
        datetime.now(UTC),
        previous_observation=None,
        observed_by="test",
    )


def chat_subscription(simulator: Simulator, host: RunningHost) -> dict[str, Any] | None:
    for sub in simulator.sim("GET", "/sim/subscriptions").json()["value"]:
        if sub["notificationUrl"].startswith(host.base_url) and sub["resource"].startswith("/chats/"):
            return dict(sub)
    return None


def versions(settings: Settings, chat_id: str) -> list[dict[str, Any]]:
    return [d for d in cosmos_items(settings, layout.CHATS) if d["chatId"] == chat_id and d["docType"] == "version"]


def post(simulator: Simulator, chat_id: str, sender: str, text: str) -> dict[str, Any]:
    body: dict[str, Any] = simulator.sim(
        "POST", f"/sim/chats/{chat_id}/messages", json={"from": sender, "content": text}
    ).json()
    return body


def test_posts_edits_and_deletions_are_captured_as_versions_and_read_back_through_the_api(
    host: tuple[RunningHost, Settings, Path], simulator: Simulator
) -> None:
    running, settings, _ = host
    subscription = wait_for(lambda: chat_subscription(simulator, running), 60)
    assert subscription["includeResourceData"] is True and subscription["lifecycleNotificationUrl"]
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    message = post(simulator, chat["id"], TOM, "Buy 500 at par")
    time.sleep(0.05)
    simulator.sim("PATCH", f"/sim/chats/{chat['id']}/messages/{message['id']}", json={"content": "Buy 600 at par"})
    time.sleep(0.05)
    simulator.sim("DELETE", f"/sim/chats/{chat['id']}/messages/{message['id']}")
    stored = wait_for(lambda: len(versions(settings, chat["id"])) == 3 and versions(settings, chat["id"]), 60)
    assert sorted(v["state"] for v in stored) == ["deleted", "edited", "posted"]
    token = simulator.user_token("Compliance.Officer")
    response = httpx.get(
        f"{running.base_url}/api/v1/chats/{chat['id']}",
        headers={"Authorization": f"Bearer {token}", "X-Access-Reason": "test"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    detail = response.json()
    [history] = detail["messages"]
    assert [v["text"] for v in history["versions"]] == ["Buy 500 at par", "Buy 600 at par", ""]
    assert [v["state"] for v in history["versions"]] == ["posted", "edited", "deleted"]
    assert detail["chat"]["policyUsers"] == [TOM]
    reads = cosmos_items(settings, layout.AUDIT, "SELECT * FROM c WHERE c.action = 'chat.read'")
    assert reads, "the read was not audited"
    anonymous = httpx.get(f"{running.base_url}/api/v1/chats/{chat['id']}", timeout=30)
    assert anonymous.status_code == 401

    # By participant, and searched: the edited-away text is still found (terms), the edit by substring.
    reason = f"case {uuid.uuid4()}"

    def get(path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "X-Access-Reason": reason}
        return httpx.get(f"{running.base_url}/api/v1/{path}", params=params, headers=headers, timeout=30)

    listed = get("chats", participant=TOM)
    assert listed.status_code == 200 and chat["id"] in [c["chatId"] for c in listed.json()["items"]]
    terms = get("chat-search", q="BUY 500", participant=TOM).json()
    assert [(h["messageId"], h["state"]) for h in terms["items"]] == [(message["id"], "posted")]
    substring = get("chat-search", q="600 at", mode="substring").json()
    assert [(h["chatId"], h["state"]) for h in substring["items"]] == [(chat["id"], "edited")]
    for bad in (
        {"q": "60", "mode": "substring"},  # under 3 characters
        {"q": "600", "mode": "substring", "from": "2030-01-01", "to": "2030-03-01"},  # over 31 days
        {"q": "buy", "mode": "fuzzy"},
        {"q": "buy", "limit": "0"},
    ):
        refused = get("chat-search", **bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json"), bad
    searches = [
        e
        for e in cosmos_items(settings, layout.AUDIT, "SELECT * FROM c WHERE c.action = 'chat.search'")
        if e["detail"].get("reason") == reason
    ]
    # every successful read audited (the list, then both searches), none of the refused ones
    assert sorted(str(e["detail"].get("mode")) for e in searches) == ["None", "substring", "terms"], searches


def _forge(
    running: RunningHost,
    simulator: Simulator,
    subscription: dict[str, Any],
    chat_id: str,
    pem: Path,
    *,
    what: str,
) -> int:
    pair = load_pem(pem.read_bytes())
    public = x509.load_der_x509_certificate(base64.b64decode(pair.certificate_b64)).public_key()
    message = {
        "id": "1893456000000",
        "etag": "1893456000000",
        "chatId": chat_id,
        "createdDateTime": "2030-01-01T00:00:00.000Z",
        "lastModifiedDateTime": "2030-01-01T00:00:00.000Z",
        "from": {"user": {"id": TOM, "displayName": "Tom Trader", "userIdentityType": "aadUser"}},
        "body": {"contentType": "text", "content": f"forged: {what}"},
    }
    audience = FUNCTIONS_APP_ID
    if what == "foreign certificate":
        other_key, _other_cert = self_signed()
        content = encrypt(message, other_key.public_key(), "someone-else/1", "00" * 20)
    else:
        content = encrypt(message, public, pair.certificate_id, pair.decryption.thumbprint)  # type: ignore[arg-type]
    if what == "bad HMAC":
        signature = bytearray(base64.b64decode(content["dataSignature"]))
        signature[0] ^= 1
        content["dataSignature"] = base64.b64encode(bytes(signature)).decode()
    if what == "bad validation token":
        audience = "11111111-2222-3333-4444-555555555555"
    token = simulator.sim("POST", "/sim/chats/validation-tokens", json={"aud": audience}).json()["token"]
    body = {
        "value": [
            {
                "subscriptionId": subscription["id"],
                "changeType": "created",
                "clientState": subscription["clientState"],
                "subscriptionExpirationDateTime": "2030-01-01T00:00:00.000+00:00",
                "resource": f"chats('{chat_id}')/messages('{message['id']}')",
                "resourceData": {"id": message["id"], "@odata.type": "#Microsoft.Graph.chatMessage"},
                "encryptedContent": content,
                "tenantId": simulator.tenant_id,
            }
        ],
        "validationTokens": [token],
    }
    # The sender writes X-Forwarded-For itself; with no proxy of ours configured (TRUSTED_FORWARDED_HOPS) it is
    # not believed (issue 13, finding 10).
    headers = {"X-Forwarded-For": "203.0.113.66"}
    response = httpx.post(subscription["notificationUrl"], json=body, headers=headers, timeout=30)
    return response.status_code


def test_forged_notifications_are_answered_202_and_nothing_of_them_is_stored(
    host: tuple[RunningHost, Settings, Path], simulator: Simulator
) -> None:
    running, settings, pem = host
    subscription = wait_for(lambda: chat_subscription(simulator, running), 60)
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    for what in ("bad HMAC", "bad validation token", "foreign certificate"):
        assert _forge(running, simulator, subscription, chat["id"], pem, what=what) == 202
    refusals = wait_for(
        lambda: (
            [
                e
                for e in cosmos_items(settings, layout.AUDIT, "SELECT * FROM c WHERE c.category = 'security'")
                if e["action"] == "graph.chat-notification.rejected"
            ]
            if len(cosmos_items(settings, layout.AUDIT, "SELECT * FROM c WHERE c.category = 'security'")) >= 3
            else None
        ),
        30,
    )
    reasons = sorted(e["detail"]["reason"] for e in refusals)
    assert any("signature mismatch" in r for r in reasons), reasons
    assert any("audience" in r for r in reasons), reasons
    assert any("unknown certificate" in r for r in reasons), reasons
    assert [e["detail"]["sourceIp"] for e in refusals] == [None] * len(refusals)
    # a genuine message after them is stored; the forged ones never are
    post(simulator, chat["id"], TOM, "genuine")
    stored = wait_for(lambda: versions(settings, chat["id"]), 60)
    assert [v["text"] for v in stored] == ["genuine"]


def test_a_dropped_window_and_missed_lead_to_a_backfill_that_stores_each_message_once(
    host: tuple[RunningHost, Settings, Path], simulator: Simulator
) -> None:
    running, settings, _ = host
    subscription = wait_for(lambda: chat_subscription(simulator, running), 60)
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    post(simulator, chat["id"], TOM, "before the window")
    wait_for(lambda: len(versions(settings, chat["id"])) == 1, 60)
    simulator.fault(kind="dropDeliveries", subscriptionId=subscription["id"], durationSeconds=4, sendMissed=True)
    lost = [post(simulator, chat["id"], TARA if n % 2 else TOM, f"in the window {n}") for n in range(5)]
    deliveries = simulator.sim("GET", "/sim/deliveries", params={"outcome": "dropped"}).json()["value"]
    assert len(deliveries) == 5
    stored = wait_for(lambda: len(versions(settings, chat["id"])) >= 6 and versions(settings, chat["id"]), 90)
    time.sleep(2)  # anything arriving twice would arrive now
    stored = versions(settings, chat["id"])
    counts = Counter(v["messageId"] for v in stored)
    assert all(counts[m["id"]] == 1 for m in lost), counts
    assert len(stored) == 6
    assert {v["source"] for v in stored if v["messageId"] in {m["id"] for m in lost}} == {"export"}
    lifecycle = simulator.sim("GET", "/sim/deliveries", params={"kind": "lifecycle"}).json()["value"]
    assert [d["resources"] for d in lifecycle if d["outcome"] == "delivered"][-1] == ["missed"]
    assert json.loads(json.dumps(counts))  # keeps counts printable in a failure
