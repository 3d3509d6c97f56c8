"""Graph reads of one chat: ``GET /chats/{id}``, ``/chats/{id}/members``, ``/chats/{id}/messages/{id}``,
``…/hostedContents`` (list), ``…/hostedContents/{id}`` (``contentBytes`` and ``contentType`` always null, as
documented) and ``…/hostedContents/{id}/$value`` (the bytes, with their content type)."""

from __future__ import annotations

from aiohttp import web

from ..identity import Identity
from ..odata import base_url
from ..tenant import TenantStore
from .payloads import chat, chat_message, member
from .store import ChatStore

CHAT_READ = ("Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All")
MEMBERS_READ = ("ChatMember.Read.All", "ChatMember.ReadWrite.All", *CHAT_READ)
MESSAGES_READ = ("Chat.Read.All", "Chat.ReadWrite.All")


class ChatGraphApi:
    def __init__(self, store: ChatStore, identity: Identity, tenant: TenantStore) -> None:
        self.store = store
        self.identity = identity
        self.tenant = tenant

    @property
    def tenant_id(self) -> str:
        return self.tenant.model.tenant.id

    def routes(self) -> list[web.RouteDef]:
        out = []
        for v in ("v1.0", "beta"):
            messages = f"/{v}/chats/{{cid}}/messages/{{mid}}"
            out += [
                web.get(f"/{v}/chats/{{cid}}", self.get_chat),
                web.get(f"/{v}/chats/{{cid}}/members", self.list_members),
                web.get(messages, self.get_message),
                web.get(f"{messages}/hostedContents", self.list_hosted),
                web.get(f"{messages}/hostedContents/{{hid}}", self.get_hosted),
                web.get(f"{messages}/hostedContents/{{hid}}/$value", self.get_hosted_value),
            ]
        return out

    async def get_chat(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *CHAT_READ)
        found = self.store.chat(request.match_info["cid"])
        return web.json_response(chat(found, tenant_id=self.tenant_id, base=base_url(request)))

    async def list_members(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *MEMBERS_READ)
        found = self.store.chat(request.match_info["cid"])
        base = base_url(request)
        return web.json_response(
            {
                "@odata.context": f"{base}/v1.0/$metadata#chats('{found.id}')/members",
                "@odata.count": len(found.members),
                "value": [member(found, m, tenant_id=self.tenant_id) for m in found.members],
            }
        )

    async def get_message(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *MESSAGES_READ)
        message = self.store.message(request.match_info["cid"], request.match_info["mid"])
        base = base_url(request)
        body = {
            "@odata.context": f"{base}/v1.0/$metadata#chats('{message.chat_id}')/messages/$entity",
            **chat_message(message),
        }
        return web.json_response(body)

    async def list_hosted(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *MESSAGES_READ)
        message = self.store.message(request.match_info["cid"], request.match_info["mid"])
        base = base_url(request)
        return web.json_response(
            {
                "@odata.context": f"{base}/v1.0/$metadata#chats('{message.chat_id}')/messages('{message.id}')"
                "/hostedContents",
                "@odata.count": len(message.hosted_contents),
                "value": [{"id": h.id, "contentBytes": None, "contentType": None} for h in message.hosted_contents],
            }
        )

    async def get_hosted(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *MESSAGES_READ)
        cid, mid = request.match_info["cid"], request.match_info["mid"]
        hosted = self.store.hosted_content(cid, mid, request.match_info["hid"])
        base = base_url(request)
        return web.json_response(
            {
                "@odata.context": f"{base}/v1.0/$metadata#chats('{cid}')/messages('{mid}')/hostedContents/$entity",
                "id": hosted.id,
                "contentBytes": None,
                "contentType": None,
            }
        )

    async def get_hosted_value(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *MESSAGES_READ)
        hosted = self.store.hosted_content(
            request.match_info["cid"], request.match_info["mid"], request.match_info["hid"]
        )
        return web.Response(body=hosted.data, content_type=hosted.content_type)
