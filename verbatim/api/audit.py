"""Reading the Cosmos `audit` container (partition /day) for auditors: one day at a time, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from azure.cosmos import ContainerProxy

from verbatim.callrecords.audit import InMemoryAuditLog
from verbatim.contracts.api import AuditRecord
from verbatim.reconciliation.store import decode_token, encode_token


@dataclass(frozen=True)
class AuditQuery:
    day: str
    category: str | None = None
    action: str | None = None
    target: str | None = None
    limit: int = 100
    continuation: str | None = None


def _record(document: dict[str, Any]) -> AuditRecord:
    return AuditRecord.model_validate({k: v for k, v in document.items() if not k.startswith("_")})


class AuditReader(Protocol):
    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]: ...


class CosmosAuditReader:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]:
        clauses = ["c.day = @day"]
        parameters: list[dict[str, Any]] = [{"name": "@day", "value": query.day}]
        for field, name, value in (
            ("category", "@category", query.category),
            ("action", "@action", query.action),
            ("target", "@target", query.target),
        ):
            if value is not None:
                clauses.append(f"c.{field} = {name}")
                parameters.append({"name": name, "value": value})
        sql = f"SELECT * FROM c WHERE {' AND '.join(clauses)} ORDER BY c.at DESC"  # noqa: S608 - fixed fields
        pager = self._container.query_items(
            sql, parameters=parameters, partition_key=query.day, max_item_count=query.limit
        ).by_page(decode_token(query.continuation))
        page = next(pager, None)
        items = [_record(item) for item in page] if page is not None else []
        token = getattr(pager, "continuation_token", None) if page is not None else None
        return items, encode_token(token if isinstance(token, str) else None)


class InMemoryAuditReader:
    """Reads an `InMemoryAuditLog` (service-level tests)."""

    def __init__(self, log: InMemoryAuditLog) -> None:
        self._log = log

    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]:
        documents = [e.document() for e in self._log.events]
        found = [
            d
            for d in documents
            if d["day"] == query.day
            and (query.category is None or d["category"] == query.category)
            and (query.action is None or d["action"] == query.action)
            and (query.target is None or d["target"] == query.target)
        ]
        found.sort(key=lambda d: str(d["at"]), reverse=True)
        offset = int(decode_token(query.continuation) or 0)
        page = found[offset : offset + query.limit]
        more = offset + query.limit < len(found)
        return [_record(d) for d in page], encode_token(str(offset + query.limit)) if more else None
