"""Small policy documents in the Cosmos `control` container (partition key `/id`): the published desired
state (what the Function App audits against) and the coverage audit's state (open findings, last report,
and the claim of a run under way, taken with If-Match so that instances starting together audit once).

Items are read with a query that filters on the id (the partition key), which works the same against
Azure and the local emulator (whose point read of a missing item answers 500 rather than 404).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError
from pydantic import BaseModel, Field

from verbatim.contracts.policy import CoverageFinding, CoverageReport
from verbatim.platform import layout
from verbatim.policy.coverage import CoverageState, audit_due
from verbatim.policy.validation import Validated, load_desired_state

CONTAINER = layout.CONTROL
DESIRED_STATE_ID = "policy-desired-state"
COVERAGE_STATE_ID = "policy-coverage"


class PublishedDesiredState(BaseModel):
    """The desired state the Function App works with, as its admin published it."""

    text: str
    sha256: str
    published_at: datetime
    published_by: str | None = None

    def validated(self) -> Validated:
        return load_desired_state(self.text, "published desired state")


class DesiredStateStore(Protocol):
    def load(self) -> PublishedDesiredState | None: ...

    def save(self, published: PublishedDesiredState) -> None: ...


class InMemoryDesiredStateStore:
    def __init__(self, published: PublishedDesiredState | None = None) -> None:
        self.published = published

    def load(self) -> PublishedDesiredState | None:
        return self.published

    def save(self, published: PublishedDesiredState) -> None:
        self.published = published


class _CoverageDocument(BaseModel):
    last_run: datetime | None = None
    open_findings: list[CoverageFinding] = Field(default_factory=list)
    last_report: CoverageReport | None = None
    claimed_at: datetime | None = None


def _read_with_etag(container: Any, item_id: str) -> dict[str, Any] | None:
    items = container.query_items(
        "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": item_id}], partition_key=item_id
    )
    for item in items:
        return dict(item)
    return None


def _read(container: Any, item_id: str) -> dict[str, Any] | None:
    item = _read_with_etag(container, item_id)
    return {k: v for k, v in item.items() if not k.startswith("_")} if item is not None else None


class CosmosDesiredStateStore:
    def __init__(self, container: Any) -> None:
        self._container = container

    def load(self) -> PublishedDesiredState | None:
        item = _read(self._container, DESIRED_STATE_ID)
        return PublishedDesiredState.model_validate(item["published"]) if item else None

    def save(self, published: PublishedDesiredState) -> None:
        self._container.upsert_item({"id": DESIRED_STATE_ID, "published": published.model_dump(mode="json")})


def _state(item: dict[str, Any] | None) -> CoverageState:
    if item is None:
        return CoverageState()
    document = _CoverageDocument.model_validate(item["coverage"])
    return CoverageState(
        last_run=document.last_run,
        open_findings={f.key: f for f in document.open_findings},
        last_report=document.last_report,
        claimed_at=document.claimed_at,
    )


def _body(state: CoverageState) -> dict[str, Any]:
    document = _CoverageDocument(
        last_run=state.last_run,
        open_findings=list(state.open_findings.values()),
        last_report=state.last_report,
        claimed_at=state.claimed_at,
    )
    return {"id": COVERAGE_STATE_ID, "coverage": document.model_dump(mode="json", by_alias=True)}


class CosmosCoverageStateStore:
    def __init__(self, container: Any) -> None:
        self._container = container

    def load(self) -> CoverageState:
        return _state(_read(self._container, COVERAGE_STATE_ID))

    def save(self, state: CoverageState) -> None:
        self._container.upsert_item(_body(state))

    def claim(self, now: datetime) -> bool:
        item = _read_with_etag(self._container, COVERAGE_STATE_ID)
        state = _state(item)
        if not audit_due(state, now):
            return False
        state.claimed_at = now
        try:
            if item is None:
                self._container.create_item(_body(state))
            else:
                self._container.replace_item(
                    COVERAGE_STATE_ID, _body(state), etag=item["_etag"], match_condition=MatchConditions.IfNotModified
                )
        except (CosmosAccessConditionFailedError, CosmosResourceExistsError):
            return False  # another instance claimed (or finished) in between
        return True

    def release(self, claimed_at: datetime) -> None:
        item = _read_with_etag(self._container, COVERAGE_STATE_ID)
        state = _state(item)
        if item is None or state.claimed_at != claimed_at:
            return
        state.claimed_at = None
        with contextlib.suppress(CosmosAccessConditionFailedError):  # changed meanwhile: its writer owns it now
            self._container.replace_item(
                COVERAGE_STATE_ID, _body(state), etag=item["_etag"], match_condition=MatchConditions.IfNotModified
            )
