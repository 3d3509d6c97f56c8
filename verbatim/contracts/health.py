"""What GET /api/health answers: the status alone to anyone (`HealthStatus`), the whole report (`HealthReport`)
to a caller with one of the API's app roles."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from verbatim.contracts import Contract, contract

DependencyState = Literal["up", "down", "not_configured"]


WormLockState = Literal["locked", "not_locked", "unknown"]
NOT_LOCKED_WARNING = "evidence store not locked"


@contract("health-status", 1)
class HealthStatus(Contract):
    """The anonymous answer: healthy or not, nothing about the deployment."""

    schema_version: Literal[1] = 1
    status: Literal["healthy", "unhealthy"]


@contract("health-report", 1)
class HealthReport(Contract):
    schema_version: Literal[1] = 1
    status: Literal["healthy", "unhealthy"]
    version: str
    dependencies: dict[str, DependencyStatus] = Field(default_factory=dict)
    evidence_store: EvidenceStoreStatus | None = None
    # Conditions that do not stop the app but need an operator: "evidence store not locked" until the
    # recordings container's default WORM policy is locked (docs/deploy.md, "Locking the evidence").
    warnings: list[str] = Field(default_factory=list)


class DependencyStatus(Contract):
    status: DependencyState
    latency_ms: float | None = None
    detail: str | None = None  # the kind of failure (an exception type), never its text


class EvidenceStoreStatus(Contract):
    """The recordings container's default WORM policy, as Azure Resource Manager reports it."""

    worm: WormLockState
    detail: str | None = None


HealthReport.model_rebuild()
