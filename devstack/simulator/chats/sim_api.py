"""``/sim/chats``: create chats (1:1, group, or the chat of a simulated meeting), post, edit and delete
messages, run scripted scenarios, and mint validation tokens with chosen claims for rejection tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..identity import Identity
from ..odata import bad_request, base_url, format_datetime, not_found, read_model
from ..tenant import TenantStore
from .model import Chat, Message
from .payloads import chat, chat_message, member
from .scenarios import HostedContentSpec, ScenarioRunner, ScenarioSpec
from .store import ChatStore
from .tokens import NOTIFICATION_PUBLISHER_APP_ID, VALIDATION_TOKEN_SECONDS, validation_token


@dataclass(frozen=True)
class MeetingRef:
    """What a simulated meeting call tells its chat: thread id, join URL, organizer and participants."""

    thread_id: str
    join_web_url: str | None
    organizer: str | None
    participants: list[str]
    subject: str | None = None


MeetingResolver = Callable[[str], MeetingRef | None]


class ChatCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    chat_type: Literal["oneOnOne", "group", "meeting"] = Field(alias="chatType")
    members: list[str] = Field(default_factory=list, max_length=250)
    topic: str | None = Field(default=None, max_length=250)
    meeting_call: str | None = Field(default=None, alias="meetingCall", max_length=100)
    thread_id: str | None = Field(default=None, alias="threadId", max_length=300)
    join_web_url: str | None = Field(default=None, alias="joinWebUrl", max_length=2048)
    organizer: str | None = Field(default=None, max_length=256)


class MessagePost(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    sender: str = Field(alias="from", min_length=1, max_length=256)
    content: str = Field(max_length=28_000)
    content_type: Literal["text", "html"] = Field(default="text", alias="contentType")
    hosted_contents: list[HostedContentSpec] = Field(default_factory=list, alias="hostedContents", max_length=10)
    importance: Literal["normal", "high", "urgent"] = "normal"


class MessageEdit(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    content: str = Field(max_length=28_000)
    content_type: Literal["text", "html"] | None = Field(default=None, alias="contentType")


class TokenRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    aud: str = Field(min_length=1, max_length=256)
    tid: str | None = Field(default=None, max_length=64)
    appid: str = Field(default=NOTIFICATION_PUBLISHER_APP_ID, max_length=64)
    expires_in_seconds: int = Field(default=VALIDATION_TOKEN_SECONDS, alias="expiresInSeconds", ge=-86400, le=86400)


class SimChatsApi:
    def __init__(
        self,
        store: ChatStore,
        runner: ScenarioRunner,
        identity: Identity,
        tenant: TenantStore,
        meetings: MeetingResolver | None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.identity = identity
        self.tenant = tenant
        self.meetings = meetings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sim/chats", self.create),
            web.get("/sim/chats", self.list_chats),
            web.post("/sim/chats/scenarios", self.start_scenario),
            web.get("/sim/chats/scenarios/{sid}", self.get_scenario),
            web.post("/sim/chats/validation-tokens", self.mint_token),
            web.get("/sim/chats/{cid}", self.get_chat),
            web.post("/sim/chats/{cid}/messages", self.post_message),
            web.patch("/sim/chats/{cid}/messages/{mid}", self.edit_message),
            web.delete("/sim/chats/{cid}/messages/{mid}", self.delete_message),
        ]

    def _dump_chat(self, request: web.Request, found: Chat) -> dict[str, Any]:
        tid = self.tenant.model.tenant.id
        return {
            **chat(found, tenant_id=tid, base=base_url(request)),
            "members": [member(found, m, tenant_id=tid) for m in found.members],
            "messages": [self._dump_message(m) for m in found.messages.values()],
        }

    @staticmethod
    def _dump_message(message: Message) -> dict[str, Any]:
        return {
            **chat_message(message),
            "states": [
                {"change": s.change, "at": format_datetime(s.at), **chat_message(message, s)["body"]}
                for s in message.states
            ],
            "hostedContentIds": [h.id for h in message.hosted_contents],
        }

    async def create(self, request: web.Request) -> web.Response:
        body = await read_model(request, ChatCreate, max_bytes=64 * 1024)
        members = list(body.members)
        thread_id, join_url, organizer = body.thread_id, body.join_web_url, body.organizer
        topic = body.topic
        if body.meeting_call is not None:
            if body.chat_type != "meeting":
                raise bad_request("meetingCall only goes with chatType 'meeting'.")
            ref = self.meetings(body.meeting_call) if self.meetings else None
            if ref is None:
                raise not_found(f"No simulated meeting '{body.meeting_call}'.")
            thread_id, join_url = ref.thread_id, ref.join_web_url
            organizer = organizer or ref.organizer
            topic = body.topic or ref.subject
            members = members or ref.participants
        created = self.store.create_chat(
            body.chat_type,
            members,
            topic=topic,
            thread_id=thread_id,
            join_web_url=join_url,
            organizer=organizer,
        )
        return web.json_response(self._dump_chat(request, created), status=201)

    async def list_chats(self, request: web.Request) -> web.Response:
        return web.json_response({"value": [self._dump_chat(request, c) for c in self.store.chats.values()]})

    async def get_chat(self, request: web.Request) -> web.Response:
        return web.json_response(self._dump_chat(request, self.store.chat(request.match_info["cid"])))

    async def post_message(self, request: web.Request) -> web.Response:
        body = await read_model(request, MessagePost, max_bytes=48 * 1024 * 1024)
        message = self.store.post(
            request.match_info["cid"],
            body.sender,
            body.content,
            content_type=body.content_type,
            hosted=[(h.content_type, h.content_bytes) for h in body.hosted_contents],
            importance=body.importance,
        )
        return web.json_response(self._dump_message(message), status=201)

    async def edit_message(self, request: web.Request) -> web.Response:
        body = await read_model(request, MessageEdit, max_bytes=256 * 1024)
        message = self.store.edit(
            request.match_info["cid"], request.match_info["mid"], body.content, content_type=body.content_type
        )
        return web.json_response(self._dump_message(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        message = self.store.delete(request.match_info["cid"], request.match_info["mid"])
        return web.json_response(self._dump_message(message))

    async def start_scenario(self, request: web.Request) -> web.Response:
        spec = await read_model(request, ScenarioSpec, max_bytes=64 * 1024 * 1024)
        scenario = self.runner.start(spec)
        return web.json_response(scenario.dump(), status=201)

    async def get_scenario(self, request: web.Request) -> web.Response:
        scenario = self.runner.items.get(request.match_info["sid"])
        if scenario is None:
            raise not_found(f"No chat scenario '{request.match_info['sid']}'.")
        return web.json_response(scenario.dump())

    async def mint_token(self, request: web.Request) -> web.Response:
        body = await read_model(request, TokenRequest, max_bytes=4096)
        token = validation_token(
            self.identity,
            body.aud,
            body.tid or self.tenant.model.tenant.id,
            lifetime_seconds=body.expires_in_seconds,
            publisher_app_id=body.appid,
        )
        return web.json_response({"token": token})
