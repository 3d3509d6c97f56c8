"""Teams chats in the simulator: chats and meeting chats, post/edit/delete with rich change notifications
(encryptedContent built as Microsoft documents, decrypted here by verbatim's own decryptor; validation
tokens checked against the simulator's JWKS), the subscription rules of /chats/getAllMessages, the export
API (documented shape, filter, paging, throttling, deleted messages for 21 days), hosted contents, scripted
scenarios, key rotation and the dropDeliveries fault."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest

from devstack.simulator.odata import format_datetime, parse_datetime
from tests.chat.crypto import decryption_certificate, self_signed
from tests.simulator.harness import CORA, FUNCTIONS_APP, TARA, TENANT_ID, TOM, UNA, SimClient, Subscriber, wait_for
from tests.simulator.shapes import fixture, missing_or_mistyped
from verbatim.chat.encrypted_content import EncryptedContent, decrypt_resource_data
from verbatim.chat.validation_tokens import validate_collection

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]
SECRET = "chat-client-state"
KEY, CERT = self_signed()
CERTIFICATE = decryption_certificate(KEY, CERT, "verbatim-chat/1")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


async def now(sim: SimClient) -> Any:
    return parse_datetime((await sim.ok("GET", "/sim/clock"))["now"])


async def subscribe(sim: SimClient, hook: Subscriber, minutes: float = 60, **extra: Any) -> tuple[int, Any]:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": hook.url,
        "lifecycleNotificationUrl": hook.lifecycle_url,
        "resource": "/chats/getAllMessages?model=A",
        "includeResourceData": True,
        "encryptionCertificate": CERT,
        "encryptionCertificateId": CERTIFICATE.certificate_id,
        "expirationDateTime": format_datetime((await now(sim)) + timedelta(minutes=minutes)),
        "clientState": SECRET,
        **extra,
    }
    status, created, _ = await sim.graph("POST", "/v1.0/subscriptions", json=body)
    return status, created


async def one_on_one(sim: SimClient, a: str = TOM, b: str = TARA) -> dict[str, Any]:
    chat: dict[str, Any] = await sim.ok(
        "POST", "/sim/chats", expect=201, json={"chatType": "oneOnOne", "members": [a, b]}
    )
    return chat


async def post(sim: SimClient, chat_id: str, sender: str, text: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = await sim.ok(
        "POST", f"/sim/chats/{chat_id}/messages", expect=201, json={"from": sender, "content": text, **extra}
    )
    return body


async def keys(sim: SimClient) -> Callable[[str], Any]:
    jwks = await sim.ok("GET", "/common/discovery/keys")
    found = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"]}
    return found.get


def decrypt(item: dict[str, Any]) -> dict[str, Any]:
    content = EncryptedContent.model_validate(item["encryptedContent"])
    return decrypt_resource_data(content, {CERTIFICATE.certificate_id: CERTIFICATE})


def test_chats_have_the_documented_identifier_shapes_and_a_meeting_chat_is_the_meetings_thread(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        first, second = sorted((TOM, TARA))
        assert chat["id"] == f"19:{first}_{second}@unq.gbl.spaces" and chat["chatType"] == "oneOnOne"
        again = await one_on_one(sim, TARA, TOM)
        assert again["id"] == chat["id"]  # one 1:1 chat per pair
        group = await sim.ok(
            "POST", "/sim/chats", expect=201, json={"chatType": "group", "members": [TOM, TARA, UNA], "topic": "Desk"}
        )
        assert group["id"].endswith("@thread.v2") and group["topic"] == "Desk"
        call = await sim.place(
            {
                "type": "meeting",
                "participants": [{"key": "una", "user": UNA}, {"key": "cora", "user": CORA}],
                "subject": "Office move",
                "durationSeconds": 5,
                "mediaPace": "fast",
            }
        )
        meeting = await sim.ok(
            "POST", "/sim/chats", expect=201, json={"chatType": "meeting", "meetingCall": call["id"]}
        )
        assert meeting["id"].startswith("19:meeting_") and meeting["chatType"] == "meeting"
        assert {m["userId"] for m in meeting["members"]} == {UNA, CORA}
        assert meeting["onlineMeetingInfo"]["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
        assert meeting["onlineMeetingInfo"]["organizer"]["id"] == UNA and meeting["topic"] == "Office move"
        status, graph_chat, _ = await sim.graph("GET", f"/v1.0/chats/{meeting['id']}")
        assert status == 200
        assert missing_or_mistyped(graph_chat, fixture("chats/chat-get-meeting.json")) == []
        status, members, _ = await sim.graph("GET", f"/v1.0/chats/{meeting['id']}/members")
        assert status == 200 and {m["userId"] for m in members["value"]} == {UNA, CORA}
        assert missing_or_mistyped(members, fixture("chats/chat-list-members.json")) == []
        status, error = (await sim.request("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM]}))[:2]
        assert status == 400, error

    run(body)


def test_chat_subscription_rules_follow_the_documented_limits(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Subscriber() as hook:
            status, error = await subscribe(sim, hook, encryptionCertificate=None)
            assert status == 400 and "encryptionCertificate" in error["error"]["message"]
            status, error = await subscribe(sim, hook, encryptionCertificate="bm90IGEgY2VydA==")
            assert status == 400 and "X.509" in error["error"]["message"]
            status, error = await subscribe(sim, hook, minutes=120, lifecycleNotificationUrl=None)
            assert status == 400 and error["error"]["message"] == (
                "lifecycleNotificationUrl is a required property for subscription creation on this resource when "
                "the expirationDateTime value is set to greater than 1 hour."
            )
            status, error = await subscribe(sim, hook, minutes=4321)
            assert status == 400 and "4320" in error["error"]["message"]
            status, error = await subscribe(sim, hook, resource="/chats/getAllMessages?model=C")
            assert status == 400
            status, error = await subscribe(sim, hook, changeType="created,moved")
            assert status == 400
            status, created = await subscribe(sim, hook, minutes=4320)
            assert status == 201, created
            assert created["includeResourceData"] is True
            assert created["encryptionCertificateId"] == CERTIFICATE.certificate_id
            assert created["changeType"] == "created,updated,deleted"
            status, error = await subscribe(sim, hook)
            assert status == 403, error  # one subscription per app for the resource
            status, renewed, _ = await sim.graph(
                "PATCH",
                f"/v1.0/subscriptions/{created['id']}",
                json={"expirationDateTime": format_datetime((await now(sim)) + timedelta(minutes=30))},
            )
            assert status == 200, renewed

    run(body)


def test_post_edit_delete_arrive_as_encrypted_notifications_with_valid_tokens(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Subscriber() as hook:
            status, sub = await subscribe(sim, hook)
            assert status == 201, sub
            chat = await one_on_one(sim)
            posted = await post(sim, chat["id"], TOM, "Buy 500 at par")
            await sim.advance(1)
            await sim.ok(
                "PATCH", f"/sim/chats/{chat['id']}/messages/{posted['id']}", json={"content": "Buy 600 at par"}
            )
            await sim.advance(1)
            await sim.ok("DELETE", f"/sim/chats/{chat['id']}/messages/{posted['id']}")
            await wait_for(lambda: len(hook.items()) == 3, what="three notifications")
            lookup = await keys(sim)
            for delivery in hook.received:
                grants = validate_collection(
                    delivery["validationTokens"],
                    [item["tenantId"] for item in delivery["value"]],
                    app_ids=[FUNCTIONS_APP],
                    tenant_ids=[TENANT_ID],
                    keys=lookup,
                    now=time.time(),
                )
                assert [(g.app_id, g.tenant_id) for g in grants] == [(FUNCTIONS_APP, TENANT_ID)]
            items = hook.items()
            assert [i["changeType"] for i in items] == ["created", "updated", "deleted"]
            documented = fixture("chats/notification-with-resource-data.json")
            assert missing_or_mistyped({"value": [items[0]], "validationTokens": ["t"]}, documented) == []
            assert items[0]["clientState"] == SECRET and items[0]["tenantId"] == TENANT_ID
            assert items[0]["resource"] == f"chats('{chat['id']}')/messages('{posted['id']}')"
            assert items[0]["encryptedContent"]["encryptionCertificateThumbprint"] == CERTIFICATE.thumbprint
            versions = [decrypt(i) for i in items]
            assert missing_or_mistyped(versions[0], fixture("chats/notification-decrypted-chatmessage.json")) == []
            assert [v["body"]["content"] for v in versions] == ["Buy 500 at par", "Buy 600 at par", ""]
            assert versions[0]["lastEditedDateTime"] is None and versions[1]["lastEditedDateTime"] is not None
            assert versions[2]["deletedDateTime"] is not None
            assert len({v["etag"] for v in versions}) == 3 and {v["id"] for v in versions} == {posted["id"]}
            assert versions[0]["etag"] == posted["id"]  # the first version's etag is its creation time

    run(body)


def test_without_resource_data_notifications_are_basic_and_carry_no_tokens(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Subscriber() as hook:
            status, sub = await subscribe(sim, hook, includeResourceData=False, encryptionCertificate=None)
            assert status == 201, sub
            chat = await one_on_one(sim)
            await post(sim, chat["id"], TARA, "hello")
            await wait_for(lambda: len(hook.items()) == 1)
            assert "validationTokens" not in hook.received[0]
            assert "encryptedContent" not in hook.items()[0]

    run(body)


def test_the_export_api_answers_like_the_documented_example_and_pages_every_message_once(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        group = await sim.ok("POST", "/sim/chats", expect=201, json={"chatType": "group", "members": [TOM, UNA, CORA]})
        other = await one_on_one(sim, UNA, CORA)  # Tom is not in it
        ids = set()
        for n in range(5):
            ids.add((chat["id"], (await post(sim, chat["id"], TARA if n % 2 else TOM, f"m{n}"))["id"]))
            ids.add((group["id"], (await post(sim, group["id"], UNA, f"g{n}"))["id"]))
            await post(sim, other["id"], CORA, f"x{n}")
            await sim.advance(1)
        status, page, _ = await sim.graph("GET", f"/v1.0/users/{TOM}/chats/getAllMessages?$top=3&model=A")
        assert status == 200, page
        documented = fixture("chats/chats-getallmessages.json")
        assert missing_or_mistyped(page, documented) == []
        assert page["@odata.count"] == 3 and "@odata.nextLink" in page
        seen = [(m["chatId"], m["id"]) for m in page["value"]]
        while "@odata.nextLink" in page:
            status, page, _ = await sim.graph("GET", page["@odata.nextLink"])
            assert status == 200, page
            seen += [(m["chatId"], m["id"]) for m in page["value"]]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen)) == 10
        status, upn_page, _ = await sim.graph(
            "GET", "/v1.0/users/tom.trader@contoso.onmicrosoft.com/chats/getAllMessages?$top=50"
        )
        assert status == 200 and len(upn_page["value"]) == 10
        for bad in ("$top=51", "model=C", "$filter=subject eq 'x'", "$filter=lastModifiedDateTime gt yesterday"):
            status, error, _ = await sim.graph("GET", f"/v1.0/users/{TOM}/chats/getAllMessages?{bad}")
            assert status == 400, (bad, error)

    run(body)


def test_the_export_filter_is_a_lastmodified_window_and_edits_move_messages_into_it(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        start = await now(sim)
        early = await post(sim, chat["id"], TOM, "early")
        await sim.advance(60)
        late = await post(sim, chat["id"], TARA, "late")
        middle = start + timedelta(seconds=30)

        async def window(after: Any, before: Any) -> list[str]:
            flt = (
                f"lastModifiedDateTime gt {format_datetime(after)} and "
                f"lastModifiedDateTime lt {format_datetime(before)}"
            )
            status, page, _ = await sim.graph("GET", f"/v1.0/users/{TOM}/chats/getAllMessages", params={"$filter": flt})
            assert status == 200, page
            return [m["id"] for m in page["value"]]

        assert await window(start - timedelta(seconds=1), middle) == [early["id"]]
        assert await window(middle, start + timedelta(seconds=61)) == [late["id"]]
        await sim.advance(60)
        await sim.ok("PATCH", f"/sim/chats/{chat['id']}/messages/{early['id']}", json={"content": "early, edited"})
        edited_window = await window(start + timedelta(seconds=100), start + timedelta(seconds=200))
        assert edited_window == [early["id"]]
        status, page, _ = await sim.graph(
            "GET",
            f"/v1.0/users/{TOM}/chats/getAllMessages",
            params={"$filter": f"lastModifiedDateTime gt {format_datetime(start)} and from/user/id eq '{TARA}'"},
        )
        assert status == 200 and [m["id"] for m in page["value"]] == [late["id"]]

    run(body)


def test_deleted_messages_stay_exportable_for_21_days(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        message = await post(sim, chat["id"], TOM, "regret")
        await sim.ok("DELETE", f"/sim/chats/{chat['id']}/messages/{message['id']}")
        status, page, _ = await sim.graph("GET", f"/v1.0/users/{TARA}/chats/getAllMessages")
        assert status == 200
        [exported] = page["value"]
        assert exported["deletedDateTime"] is not None and exported["body"]["content"] == ""
        await sim.advance(days=22)
        status, page, _ = await sim.graph("GET", f"/v1.0/users/{TARA}/chats/getAllMessages")
        assert status == 200 and page["value"] == []

    run(body)


def test_the_export_api_throttles_beyond_its_requests_per_second(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.configure(exportRequestsPerSecond=2)
        statuses = []
        retry_after = None
        for _ in range(4):
            status, _, headers = await sim.graph("GET", f"/v1.0/users/{TOM}/chats/getAllMessages")
            statuses.append(status)
            if status == 429:
                retry_after = headers.get("Retry-After")
        assert statuses.count(429) >= 1 and statuses[0] == 200, statuses
        assert retry_after is not None and int(retry_after) >= 1

    run(body)


def test_hosted_contents_are_listed_fetched_and_referenced_from_the_body(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        message = await post(
            sim,
            chat["id"],
            TOM,
            '<div><img src="{hostedContent:1}" width="67" height="63"></div>',
            contentType="html",
            hostedContents=[{"contentType": "image/png", "contentBytes": PNG}],
        )
        [hosted_id] = message["hostedContentIds"]
        assert base64.b64decode(hosted_id + "==").decode().startswith("id=x_0-wus-d9-")
        assert f"/hostedContents/{hosted_id}/$value" in message["body"]["content"]
        base = f"/v1.0/chats/{chat['id']}/messages/{message['id']}/hostedContents"
        status, listed, _ = await sim.graph("GET", base)
        assert status == 200 and [h["id"] for h in listed["value"]] == [hosted_id]
        status, one, _ = await sim.graph("GET", f"{base}/{hosted_id}")
        assert status == 200 and missing_or_mistyped(one, fixture("chats/hostedcontent-get.json")) == []
        assert one["contentBytes"] is None and one["contentType"] is None
        token = await sim.token()
        async with sim.http.get(
            sim.base + f"{base}/{hosted_id}/$value", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200 and r.content_type == "image/png"
            assert await r.read() == base64.b64decode(PNG)

    run(body)


def test_scripted_scenarios_post_edit_and_delete_on_the_clock(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        chat = await one_on_one(sim)
        scenario = await sim.ok(
            "POST",
            "/sim/chats/scenarios",
            expect=201,
            json={
                "steps": [
                    {"at": 2, "action": "post", "chat": chat["id"], "from": TOM, "content": "first", "ref": "a"},
                    {"at": 5, "action": "edit", "chat": chat["id"], "message": "a", "content": "first, edited"},
                    {"at": 8, "action": "delete", "chat": chat["id"], "message": "a"},
                ]
            },
        )
        assert scenario["done"] == 0
        await sim.advance(10)
        done = await sim.ok("GET", f"/sim/chats/scenarios/{scenario['id']}")
        assert [o["outcome"] for o in done["outcomes"]] == ["done", "done", "done"]
        state = await sim.ok("GET", f"/sim/chats/{chat['id']}")
        [message] = state["messages"]
        assert [s["change"] for s in message["states"]] == ["created", "updated", "deleted"]
        status, error = (
            await sim.request(
                "POST",
                "/sim/chats/scenarios",
                json={"steps": [{"at": 1, "action": "edit", "chat": chat["id"], "message": "nope", "content": "x"}]},
            )
        )[:2]
        assert status == 400, error

    run(body)


def test_a_rotated_certificate_encrypts_what_follows(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        new_key, new_cert = self_signed()
        rotated = decryption_certificate(new_key, new_cert, "verbatim-chat/2")
        async with Subscriber() as hook:
            status, sub = await subscribe(sim, hook)
            assert status == 201
            chat = await one_on_one(sim)
            await post(sim, chat["id"], TOM, "before")
            status, patched, _ = await sim.graph(
                "PATCH",
                f"/v1.0/subscriptions/{sub['id']}",
                json={"encryptionCertificate": new_cert, "encryptionCertificateId": rotated.certificate_id},
            )
            assert status == 200 and patched["encryptionCertificateId"] == rotated.certificate_id
            await post(sim, chat["id"], TOM, "after")
            await wait_for(lambda: len(hook.items()) == 2)
            first, second = hook.items()
            assert first["encryptedContent"]["encryptionCertificateId"] == CERTIFICATE.certificate_id
            assert second["encryptedContent"]["encryptionCertificateId"] == rotated.certificate_id
            content = EncryptedContent.model_validate(second["encryptedContent"])
            assert decrypt_resource_data(content, {rotated.certificate_id: rotated})["body"]["content"] == "after"

    run(body)


def test_a_drop_window_loses_deliveries_then_sends_missed_and_the_export_api_still_has_them(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Subscriber() as hook:
            status, sub = await subscribe(sim, hook, minutes=600)
            assert status == 201
            chat = await one_on_one(sim)
            await post(sim, chat["id"], TOM, "delivered")
            await wait_for(lambda: len(hook.items()) == 1)
            start = await now(sim)
            fault = await sim.ok(
                "POST",
                "/sim/faults",
                expect=201,
                json={
                    "kind": "dropDeliveries",
                    "subscriptionId": sub["id"],
                    "durationSeconds": 120,
                    "sendMissed": True,
                },
            )
            lost = [await post(sim, chat["id"], TARA, f"lost {n}") for n in range(3)]
            await sim.advance(119)
            assert len(hook.items()) == 1 and hook.lifecycle == []
            await sim.advance(2)
            await wait_for(lambda: len(hook.lifecycle) == 1, what="missed")
            assert hook.lifecycle[0]["value"][0]["lifecycleEvent"] == "missed"
            dropped = await sim.ok("GET", "/sim/deliveries", params={"outcome": "dropped"})
            assert len(dropped["value"]) == 3 and all("dropDeliveries" in d["reason"] for d in dropped["value"])
            faults = await sim.ok("GET", "/sim/faults")
            assert fault["id"] not in [f["id"] for f in faults["value"]]
            after = await post(sim, chat["id"], TOM, "after the window")
            await wait_for(lambda: len(hook.items()) == 2)
            assert decrypt(hook.items()[1])["id"] == after["id"]
            end = start + timedelta(seconds=120)
            flt = f"lastModifiedDateTime ge {format_datetime(start)} and lastModifiedDateTime lt {format_datetime(end)}"
            status, page, _ = await sim.graph("GET", f"/v1.0/users/{TOM}/chats/getAllMessages", params={"$filter": flt})
            assert status == 200 and sorted(m["id"] for m in page["value"]) == sorted(m["id"] for m in lost)
            status, error = (await sim.request("POST", "/sim/faults", json={"kind": "dropDeliveries", "count": 2}))[:2]
            assert status == 400, error

    run(body)


def test_minted_validation_tokens_carry_the_documented_claims(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        minted = await sim.ok("POST", "/sim/chats/validation-tokens", json={"aud": FUNCTIONS_APP})
        claims = jwt.decode(minted["token"], options={"verify_signature": False})
        documented = fixture("chats/validation-token-claims.json")
        assert set(documented) <= set(claims)
        assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/" and claims["appid"] == documented["appid"]
        assert claims["exp"] - claims["iat"] == documented["exp"] - documented["iat"]

    run(body)
