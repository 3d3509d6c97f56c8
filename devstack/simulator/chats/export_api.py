"""The Teams export API for chats: ``GET /users/{id | userPrincipalName}/chats/getAllMessages``
(learn.microsoft.com/graph/api/chats-getallmessages): every message of every chat the user is a member of
(1:1, group and meeting chats), current state only, deleted ones for 21 days after their deletion.

* ``$filter``: the date range ``lastModifiedDateTime gt|ge|lt|le <DateTimeOffset>`` (clauses joined with
  ``and``), optionally with the documented clauses ``from/user/id eq '…'``, ``from/user/userIdentityType eq
  '…'``, ``from/application/applicationIdentityType eq '…'``, ``messageType eq|ne '…'`` (joined with ``or``).
* ``$top`` up to 50 (the documented example asks for 50), ``@odata.nextLink`` with ``$skiptoken``, and
  ``@odata.count`` as in the documented response. "The order of messages in the response isn't guaranteed"
  (export-teams-content): pages come in a stable but meaningless order, so clients cannot lean on one.
* ``model=A|B`` (the licensing and payment model). Microsoft stopped metering these APIs on 25 August 2025
  (learn.microsoft.com/graph/teams-licenses) and the current API page no longer lists the parameter; the
  simulator accepts ``A``, ``B`` or nothing and refuses other values.
* Throttling: "up to 200 RPS per app per tenant" (export-teams-content); beyond ``exportRequestsPerSecond``
  requests in a wall-clock second the caller gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..identity import Identity
from ..odata import GraphError, bad_request, base_url, decode_skiptoken, encode_skiptoken, parse_datetime
from ..tenant import TenantStore
from .model import Message
from .payloads import chat_message
from .store import ChatStore

READ = ("Chat.Read.All", "Chat.ReadWrite.All")
MAX_TOP = 50
DEFAULT_TOP = 20
_DATE = re.compile(r"^lastModifiedDateTime\s+(gt|ge|lt|le)\s+(\S+)$", re.IGNORECASE)
_EQ = re.compile(
    r"^(from/user/id|from/user/userIdentityType|from/application/applicationIdentityType|messageType)"
    r"\s+(eq|ne)\s+['\"]([^'\"]*)['\"]$",
    re.IGNORECASE,
)


@dataclass
class MessageFilter:
    after: list[tuple[str, datetime]] = field(default_factory=list)  # (gt|ge, value)
    before: list[tuple[str, datetime]] = field(default_factory=list)  # (lt|le, value)
    alternatives: list[tuple[str, str, str]] = field(default_factory=list)  # (property, eq|ne, value), or-joined

    def accepts(self, message: Message) -> bool:
        modified = message.last_modified
        for op, value in self.after:
            if not (modified > value if op == "gt" else modified >= value):
                return False
        for op, value in self.before:
            if not (modified < value if op == "lt" else modified <= value):
                return False
        if not self.alternatives:
            return True
        return any(_clause(message, prop, op, value) for prop, op, value in self.alternatives)


def _clause(message: Message, prop: str, op: str, value: str) -> bool:
    actual = {
        "from/user/id": message.sender_id.lower(),
        "from/user/useridentitytype": "aaduser",
        "from/application/applicationidentitytype": "",
        "messagetype": "message",
    }[prop.lower()]
    equal = actual == value.lower()
    return equal if op.lower() == "eq" else not equal


def parse_filter(text: str | None) -> MessageFilter:
    result = MessageFilter()
    if not text:
        return result
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        part = part.strip()
        while part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()
        date = _DATE.match(part)
        if date:
            op = date.group(1).lower()
            try:
                value = parse_datetime(date.group(2))
            except ValueError as error:
                raise bad_request(f"'{date.group(2)}' is not a DateTimeOffset.") from error
            (result.after if op in ("gt", "ge") else result.before).append((op, value))
            continue
        for alternative in re.split(r"\s+or\s+", part, flags=re.IGNORECASE):
            alternative = alternative.strip().strip("()").strip()
            clause = _EQ.match(alternative)
            if not clause:
                raise bad_request(f"Unsupported filter clause '{alternative}'.")
            result.alternatives.append((clause.group(1), clause.group(2), clause.group(3)))
    return result


def _order_key(message: Message) -> str:
    return hashlib.sha256(f"{message.chat_id}\x00{message.id}".encode()).hexdigest()


class ExportThrottle:
    """Requests per app in the last wall-clock second (the export API's documented per-app limit)."""

    def __init__(self, limit: Callable[[], float]) -> None:
        self._limit = limit
        self._seen: dict[str, deque[float]] = {}

    def check(self, app_id: str) -> None:
        now = time.monotonic()
        seen = self._seen.setdefault(app_id, deque())
        while seen and now - seen[0] >= 1.0:
            seen.popleft()
        if len(seen) >= self._limit():
            raise GraphError(
                429,
                "TooManyRequests",
                "Too many requests, retry after the time in the Retry-After header.",
                headers={"Retry-After": "1"},
            )
        seen.append(now)

    def reset(self) -> None:
        self._seen.clear()


class ExportApi:
    def __init__(self, store: ChatStore, identity: Identity, tenant: TenantStore, throttle: ExportThrottle) -> None:
        self.store = store
        self.identity = identity
        self.tenant = tenant
        self.throttle = throttle

    def routes(self) -> list[web.RouteDef]:
        out = []
        for version in ("v1.0", "beta"):
            for name in ("getAllMessages", "getallMessages"):
                out.append(web.get(f"/{version}/users/{{uid}}/chats/{name}", self.get_all_messages))
        return out

    async def get_all_messages(self, request: web.Request) -> web.Response:
        principal = self.identity.authorize(request, *READ)
        self.throttle.check(principal.app_id or "")
        model = request.query.get("model")
        if model is not None and model not in ("A", "B"):
            raise bad_request(f"'{model}' is not a licensing and payment model; use model=A or model=B.")
        key = request.match_info["uid"]
        if key.startswith("('") and key.endswith("')"):
            key = key[2:-2]
        user = self.tenant.user(key)
        if user is None:
            raise GraphError(404, "NotFound", f"User '{key}' was not found.")
        top = request.query.get("$top")
        size = DEFAULT_TOP
        if top is not None:
            if not top.isdigit() or not 1 <= int(top) <= MAX_TOP:
                raise bad_request(f"$top must be between 1 and {MAX_TOP}.")
            size = int(top)
        flt = parse_filter(request.query.get("$filter"))
        after_key = ""
        token = request.query.get("$skiptoken")
        if token:
            state = decode_skiptoken(token)
            after_key = str(state.get("after", ""))
        candidates = sorted(
            (
                (_order_key(message), message)
                for chat in self.store.chats_of(user.id)
                for message in chat.messages.values()
                if self.store.visible(message) and flt.accepts(message)
            ),
            key=lambda pair: pair[0],
        )
        remaining = [pair for pair in candidates if pair[0] > after_key]
        page = remaining[:size]
        base = base_url(request)
        body: dict[str, Any] = {
            "@odata.context": f"{base}/v1.0/$metadata#Collection(chatMessage)",
            "@odata.count": len(page),
        }
        if len(remaining) > size:
            query = {"$top": str(size)}
            if request.query.get("$filter"):
                query["$filter"] = request.query["$filter"]
            if model:
                query["model"] = model
            query["$skiptoken"] = encode_skiptoken({"after": page[-1][0]})
            body["@odata.nextLink"] = f"{base}/v1.0/users/{user.id}/chats/getAllMessages?{urlencode(query)}"
        body["value"] = [{"@odata.type": "#microsoft.graph.chatMessage", **chat_message(m)} for _, m in page]
        return web.json_response(body)
