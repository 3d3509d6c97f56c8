"""`GraphChatDirectory` on Microsoft's documented answers (a unit test of the one module, through the real
`GraphClient` over an in-process transport): the chat of a meeting (chat-get-meeting.json) and a chat's member list
(chat-list-members.json, microsoft-graph-docs-contrib api-reference/v1.0/api/chat-list-members.md) come out as the
chat type, topic, join URL and members (object id, display name, tenant) that the policy gate and the portal use; a
chat Graph does not know is None."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from tests.callrecords.fake_authority import AUTHORITY, FakeAuthority
from verbatim.chat.directory import GraphChatDirectory
from verbatim.graph import GraphClient, GraphCredentials, RetryPolicy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "chats"


def documented(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    body.pop("_source")
    return body


CHAT = documented("chat-get-meeting.json")
MEMBERS = documented("chat-list-members.json")


def handler(request: httpx.Request) -> httpx.Response:
    path = unquote(request.url.path).removeprefix("/v1.0")
    if path == f"/chats/{CHAT['id']}":
        return httpx.Response(200, json=CHAT)
    if path == f"/chats/{CHAT['id']}/members":
        return httpx.Response(200, json=MEMBERS)
    return httpx.Response(404, json={"error": {"code": "NotFound", "message": "No chat."}})


def directory() -> GraphChatDirectory:
    credentials = GraphCredentials(
        client_id="app", client_secret="s3cret", authority_host=AUTHORITY, transport=FakeAuthority().transport()
    )
    client = GraphClient(
        base_url="https://graph.test",
        tenant_id=CHAT["tenantId"],
        credentials=credentials,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(base_delay=0.001, max_delay=0.002),
        sleep=lambda seconds: None,
    )
    return GraphChatDirectory(lambda tenant: client)


def test_the_documented_meeting_chat_and_member_list_are_read_as_documented() -> None:
    facts = directory().chat(CHAT["tenantId"], CHAT["id"])

    assert facts is not None
    assert (facts.chat_type, facts.topic) == ("meeting", "Test Meet Create Online Meeting")
    assert facts.join_web_url == CHAT["onlineMeetingInfo"]["joinWebUrl"]
    assert facts.members == (
        ("8b081ef6-4792-4def-b2c9-c363a1bf41d5", "John Doe", "6e5147da-6a35-4275-b3f3-fc069456b6eb"),
        ("2de87aaf-844d-4def-9dee-2c317f0be1b3", "Bart Hogan", "6e5147da-6a35-4275-b3f3-fc069456b6eb"),
        ("07ad17ad-ada5-4f1f-a650-7a963886a8a7", "Minna Pham", "6e5147da-6a35-4275-b3f3-fc069456b6eb"),
    )


def test_a_chat_graph_does_not_know_is_none() -> None:
    assert directory().chat(CHAT["tenantId"], "19:unknown@thread.v2") is None
