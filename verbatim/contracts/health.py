"""The health report served at GET /api/health."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from verbatim.contracts import Contract, contract

DependencyState = Literal["up", "down", "not_configured"]


@contract("health-report", 1)
class HealthReport(Contract):
    schema_version: Literal[1] = 1
    status: Literal["healthy", "unhealthy"]
    version: str
    dependencies: dict[str, DependencyStatus] = Field(default_factory=dict)


class DependencyStatus(Contract):
    status: DependencyState
    latency_ms: float | None = None
    detail: str | None = None


HealthReport.model_rebuild()
