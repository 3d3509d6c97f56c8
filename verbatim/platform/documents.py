"""Documents of one pydantic model in a Cosmos container partitioned by `/id`, changed by read-change-write with
the document's etag, retried when another writer changed it first (the recording records, the recording pairs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceExistsError
from pydantic import BaseModel

from verbatim.platform.errors import DependencyUnavailable

M = TypeVar("M", bound=BaseModel)


class VersionedDocuments(Generic[M]):
    def __init__(self, container: ContainerProxy, model: type[M], noun: str, max_attempts: int = 20) -> None:
        self._container = container
        self._model = model
        self._noun = noun
        self._max_attempts = max_attempts

    def _read(self, doc_id: str) -> dict[str, Any] | None:
        # A query, not read_item: the emulator answers 500 instead of 404 for a missing item.
        docs = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": doc_id}], partition_key=doc_id
            )
        )
        return docs[0] if docs else None

    def get(self, doc_id: str) -> M | None:
        doc = self._read(doc_id)
        return self._model.model_validate(doc) if doc else None

    def update(self, doc_id: str, change: Callable[[M | None], M]) -> M:
        """Read, change and write back (nothing written when the change changes nothing)."""
        for _ in range(self._max_attempts):
            doc = self._read(doc_id)
            current = self._model.model_validate(doc) if doc else None
            updated = change(current)
            if current is not None and updated == current:
                return current
            body = updated.model_dump(mode="json")
            try:
                if doc is None:
                    self._container.create_item(body)
                else:
                    self._container.replace_item(
                        doc_id, body, etag=doc["_etag"], match_condition=MatchConditions.IfNotModified
                    )
            except CosmosResourceExistsError:
                continue
            except CosmosHttpResponseError as error:
                if error.status_code == 412:
                    continue
                raise
            return updated
        raise DependencyUnavailable(f"{self._noun} {doc_id}: too many concurrent updates")
