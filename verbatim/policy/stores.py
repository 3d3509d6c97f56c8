"""Small policy documents in the Cosmos `control` container (partition key `/id`): the published desired
state (what the Function App audits against) and the coverage audit's state (open findings, last report).

Items are read with a query that filters on the id (the partition key), which works the same against
Azure and the local emulator (whose point read of a missing item answers 500 rather than 404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from verbatim.contracts.policy import CoverageFinding, CoverageReport
from verbatim.policy.coverage import CoverageState
from verbatim.policy.validation import Validated, load_desired_state

CONTAINER = "control"
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


def _read(container: Any, item_id: str) -> dict[str, Any] | None:
    items = container.query_items(
        "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": item_id}], partition_key=item_id
    )
    for item in items:
        return {k: v for k, v in item.items() if not k.startswith("_")}
    return None


class CosmosDesiredStateStore:
    def __init__(self, container: Any) -> None:
        self._container = container

    def load(self) -> PublishedDesiredState | None:
        item = _read(self._container, DESIRED_STATE_ID)
        return PublishedDesiredState.model_validate(item["published"]) if item else None

    def save(self, published: PublishedDesiredState) -> None:
        self._container.upsert_item({"id": DESIRED_STATE_ID, "published": published.model_dump(mode="json")})


class CosmosCoverageStateStore:
    def __init__(self, container: Any) -> None:
        self._container = container

    def load(self) -> CoverageState:
        item = _read(self._container, COVERAGE_STATE_ID)
        if item is None:
            return CoverageState()
        document = _CoverageDocument.model_validate(item["coverage"])
        return CoverageState(
            last_run=document.last_run,
            open_findings={f.key: f for f in document.open_findings},
            last_report=document.last_report,
        )

    def save(self, state: CoverageState) -> None:
        document = _CoverageDocument(
            last_run=state.last_run, open_findings=list(state.open_findings.values()), last_report=state.last_report
        )
        self._container.upsert_item(
            {"id": COVERAGE_STATE_ID, "coverage": document.model_dump(mode="json", by_alias=True)}
        )
