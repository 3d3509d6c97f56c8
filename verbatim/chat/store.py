"""Where captured chat lives before and after sealing: the Cosmos `chats` container (partition `/chatId`), one
partition per chat holding the chat's document (members, policy users, meeting link), one document per
message version (the exact JSON Graph delivered, its text and search terms, the bundle that sealed it) and one
per sealed bundle. A chat's own reads are single-partition; by-participant lists and searches go across
partitions, always bounded by time.

`ChatRepository` is the port; `CosmosChatRepository` the adapter, `InMemoryChatRepository` the fake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError

from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.paging import cosmos_page, offset_page

CHAT_DOC = "chat"
MAX_PAGE = 200


def version_doc_id(message_id: str, etag: str) -> str:
    return f"v:{message_id}:{etag}"


def bundle_doc_id(day: str, part: int) -> str:
    return f"b:{day}:{part:03d}"


class ChatRepository(Protocol):
    def get_chat(self, chat_id: str) -> dict[str, Any] | None: ...

    def save_chat(self, document: dict[str, Any]) -> None:
        """Create or replace the chat's document (`id` = "chat")."""
        ...

    def update_chat(self, chat_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Apply `change` to the chat's document under optimistic concurrency (retried on a conflict)."""
        ...

    def add_version(self, document: dict[str, Any]) -> bool:
        """Store a version once; False when (chat, message, etag) is already stored."""
        ...

    def replace_version(self, document: dict[str, Any]) -> None: ...

    def versions(self, chat_id: str, message_id: str | None = None) -> list[dict[str, Any]]:
        """A chat's versions (of one message when given), oldest first."""
        ...

    def unsealed(self, before_day: str) -> list[tuple[str, str]]:
        """(chat id, day) pairs with versions not sealed yet, of days before `before_day`."""
        ...

    def add_bundle(self, document: dict[str, Any]) -> None: ...

    def bundles(self, chat_id: str) -> list[dict[str, Any]]: ...

    def chats_of(
        self, user_id: str | None, start: str, end: str, continuation: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Chats with a message between `start` and `end`, of which `user_id` is a member (any when None)."""
        ...

    def search(
        self,
        *,
        start: str,
        end: str,
        terms: list[str] | None,
        substring: str | None,
        user_id: str | None,
        continuation: str | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def versions_between(self, user_id: str, start: str, end: str) -> list[dict[str, Any]]:
        """Versions of chats `user_id` is a member of, last modified in [start, end)."""
        ...

    def versions_of_user(self, user_id: str) -> list[dict[str, Any]]:
        """Every version of every chat `user_id` was a member of (data-subject search)."""
        ...

    def delete_version(self, chat_id: str, document_id: str) -> None: ...

    def all_bundles(self, user_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Every sealed bundle (of chats with one of `user_ids` as a member, when given)."""
        ...


class CosmosChatRepository:
    def __init__(self, container: ContainerProxy) -> None:
        self._c = container

    def _one(self, chat_id: str, doc_id: str) -> dict[str, Any] | None:
        items = list(
            self._c.query_items(
                "SELECT * FROM c WHERE c.chatId = @chat AND c.id = @id",
                parameters=[{"name": "@chat", "value": chat_id}, {"name": "@id", "value": doc_id}],
                partition_key=chat_id,
            )
        )
        return dict(items[0]) if items else None

    def get_chat(self, chat_id: str) -> dict[str, Any] | None:
        return self._one(chat_id, CHAT_DOC)

    def save_chat(self, document: dict[str, Any]) -> None:
        self._c.upsert_item({k: v for k, v in document.items() if not k.startswith("_")})

    def update_chat(self, chat_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        for _ in range(20):
            current = self.get_chat(chat_id)
            body = {k: v for k, v in change(dict(current) if current else None).items() if not k.startswith("_")}
            try:
                if current is None:
                    self._c.create_item(body)
                else:
                    self._c.replace_item(
                        item=CHAT_DOC, body=body, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                    )
                return body
            except (CosmosResourceExistsError, CosmosAccessConditionFailedError):
                continue
        raise DependencyUnavailable(f"chat {chat_id}: its document kept changing under us")

    def add_version(self, document: dict[str, Any]) -> bool:
        try:
            self._c.create_item(document)
        except CosmosResourceExistsError:
            return False
        return True

    def replace_version(self, document: dict[str, Any]) -> None:
        self._c.upsert_item({k: v for k, v in document.items() if not k.startswith("_")})

    def versions(self, chat_id: str, message_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM c WHERE c.chatId = @chat AND c.docType = 'version'"
        params: list[dict[str, Any]] = [{"name": "@chat", "value": chat_id}]
        if message_id is not None:
            sql += " AND c.messageId = @m"
            params.append({"name": "@m", "value": message_id})
        sql += " ORDER BY c.lastModified ASC"
        return [dict(d) for d in self._c.query_items(sql, parameters=params, partition_key=chat_id)]

    def unsealed(self, before_day: str) -> list[tuple[str, str]]:
        rows = self._c.query_items(
            "SELECT c.chatId, c.day FROM c WHERE c.docType = 'version' AND c.sealedIn = null AND c.day < @day",
            parameters=[{"name": "@day", "value": before_day}],
            enable_cross_partition_query=True,
        )
        return sorted({(str(r["chatId"]), str(r["day"])) for r in rows})

    def add_bundle(self, document: dict[str, Any]) -> None:
        self._c.upsert_item(document)

    def bundles(self, chat_id: str) -> list[dict[str, Any]]:
        return [
            dict(d)
            for d in self._c.query_items(
                "SELECT * FROM c WHERE c.chatId = @chat AND c.docType = 'bundle' ORDER BY c.id ASC",
                parameters=[{"name": "@chat", "value": chat_id}],
                partition_key=chat_id,
            )
        ]

    def chats_of(
        self, user_id: str | None, start: str, end: str, continuation: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        sql = "SELECT * FROM c WHERE c.docType = 'chat' AND c.lastMessageAt >= @start AND c.firstMessageAt < @end"
        params: list[dict[str, Any]] = [{"name": "@start", "value": start}, {"name": "@end", "value": end}]
        if user_id is not None:
            sql += " AND ARRAY_CONTAINS(c.members, @user)"
            params.append({"name": "@user", "value": user_id.lower()})
        sql += " ORDER BY c.lastMessageAt DESC"
        query = self._c.query_items(
            sql, parameters=params, enable_cross_partition_query=True, max_item_count=min(limit, MAX_PAGE)
        )
        return cosmos_page(query.by_page, continuation, dict)

    def search(
        self,
        *,
        start: str,
        end: str,
        terms: list[str] | None,
        substring: str | None,
        user_id: str | None,
        continuation: str | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        sql = "SELECT * FROM c WHERE c.docType = 'version' AND c.lastModified >= @start AND c.lastModified < @end"
        params: list[dict[str, Any]] = [{"name": "@start", "value": start}, {"name": "@end", "value": end}]
        for index, term in enumerate(terms or []):
            sql += f" AND ARRAY_CONTAINS(c.terms, @t{index})"
            params.append({"name": f"@t{index}", "value": term})
        if substring is not None:
            sql += " AND CONTAINS(c.textLower, @q)"
            params.append({"name": "@q", "value": substring})
        if user_id is not None:
            sql += " AND ARRAY_CONTAINS(c.participants, @user)"
            params.append({"name": "@user", "value": user_id.lower()})
        sql += " ORDER BY c.lastModified DESC"
        query = self._c.query_items(
            sql, parameters=params, enable_cross_partition_query=True, max_item_count=min(limit, MAX_PAGE)
        )
        return cosmos_page(query.by_page, continuation, dict)

    def versions_between(self, user_id: str, start: str, end: str) -> list[dict[str, Any]]:
        return [
            dict(d)
            for d in self._c.query_items(
                "SELECT * FROM c WHERE c.docType = 'version' AND ARRAY_CONTAINS(c.participants, @user) "
                "AND c.lastModified >= @start AND c.lastModified < @end",
                parameters=[
                    {"name": "@user", "value": user_id.lower()},
                    {"name": "@start", "value": start},
                    {"name": "@end", "value": end},
                ],
                enable_cross_partition_query=True,
            )
        ]

    def versions_of_user(self, user_id: str) -> list[dict[str, Any]]:
        return [
            dict(d)
            for d in self._c.query_items(
                "SELECT * FROM c WHERE c.docType = 'version' AND ARRAY_CONTAINS(c.participants, @user)",
                parameters=[{"name": "@user", "value": user_id.lower()}],
                enable_cross_partition_query=True,
            )
        ]

    def delete_version(self, chat_id: str, document_id: str) -> None:
        self._c.delete_item(document_id, partition_key=chat_id)

    def all_bundles(self, user_ids: list[str] | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM c WHERE c.docType = 'bundle'"
        params: list[dict[str, Any]] = []
        if user_ids is not None:
            if not user_ids:
                return []
            clauses = []
            for index, user in enumerate(user_ids):
                clauses.append(f"ARRAY_CONTAINS(c.members, @u{index})")
                params.append({"name": f"@u{index}", "value": user.lower()})
            sql += " AND (" + " OR ".join(clauses) + ")"
        return [dict(d) for d in self._c.query_items(sql, parameters=params, enable_cross_partition_query=True)]


class InMemoryChatRepository:
    """The fake: the same answers over dicts (tests and benchmarks)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _all(self, doc_type: str) -> Iterable[dict[str, Any]]:
        return [dict(d) for d in self.docs.values() if d.get("docType") == doc_type]

    def get_chat(self, chat_id: str) -> dict[str, Any] | None:
        found = self.docs.get((chat_id, CHAT_DOC))
        return dict(found) if found else None

    def save_chat(self, document: dict[str, Any]) -> None:
        with self._lock:
            self.docs[(document["chatId"], CHAT_DOC)] = dict(document)

    def update_chat(self, chat_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            current = self.docs.get((chat_id, CHAT_DOC))
            updated = change(dict(current) if current else None)
            self.docs[(chat_id, CHAT_DOC)] = dict(updated)
            return dict(updated)

    def add_version(self, document: dict[str, Any]) -> bool:
        key = (document["chatId"], document["id"])
        with self._lock:
            if key in self.docs:
                return False
            self.docs[key] = dict(document)
            return True

    def replace_version(self, document: dict[str, Any]) -> None:
        with self._lock:
            self.docs[(document["chatId"], document["id"])] = dict(document)

    def versions(self, chat_id: str, message_id: str | None = None) -> list[dict[str, Any]]:
        found = [
            d
            for d in self._all("version")
            if d["chatId"] == chat_id and (message_id is None or d["messageId"] == message_id)
        ]
        return sorted(found, key=lambda d: str(d["lastModified"]))

    def unsealed(self, before_day: str) -> list[tuple[str, str]]:
        return sorted(
            {
                (d["chatId"], d["day"])
                for d in self._all("version")
                if d.get("sealedIn") is None and d["day"] < before_day
            }
        )

    def add_bundle(self, document: dict[str, Any]) -> None:
        with self._lock:
            self.docs[(document["chatId"], document["id"])] = dict(document)

    def bundles(self, chat_id: str) -> list[dict[str, Any]]:
        return sorted((d for d in self._all("bundle") if d["chatId"] == chat_id), key=lambda d: str(d["id"]))

    def chats_of(
        self, user_id: str | None, start: str, end: str, continuation: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        found = [
            d
            for d in self._all("chat")
            if d.get("lastMessageAt", "") >= start
            and d.get("firstMessageAt", "") < end
            and (user_id is None or user_id.lower() in d.get("members", []))
        ]
        found.sort(key=lambda d: str(d.get("lastMessageAt")), reverse=True)
        return offset_page(found, continuation, min(limit, MAX_PAGE))

    def search(
        self,
        *,
        start: str,
        end: str,
        terms: list[str] | None,
        substring: str | None,
        user_id: str | None,
        continuation: str | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        found = [
            d
            for d in self._all("version")
            if start <= d["lastModified"] < end
            and all(t in d.get("terms", []) for t in terms or [])
            and (substring is None or substring in d.get("textLower", ""))
            and (user_id is None or user_id.lower() in d.get("participants", []))
        ]
        found.sort(key=lambda d: str(d["lastModified"]), reverse=True)
        return offset_page(found, continuation, min(limit, MAX_PAGE))

    def versions_between(self, user_id: str, start: str, end: str) -> list[dict[str, Any]]:
        return [
            d
            for d in self._all("version")
            if user_id.lower() in d.get("participants", []) and start <= d["lastModified"] < end
        ]

    def versions_of_user(self, user_id: str) -> list[dict[str, Any]]:
        return [d for d in self._all("version") if user_id.lower() in d.get("participants", [])]

    def delete_version(self, chat_id: str, document_id: str) -> None:
        with self._lock:
            self.docs.pop((chat_id, document_id), None)

    def all_bundles(self, user_ids: list[str] | None = None) -> list[dict[str, Any]]:
        wanted = {u.lower() for u in user_ids} if user_ids is not None else None
        return [d for d in self._all("bundle") if wanted is None or wanted & set(d.get("members", []))]
