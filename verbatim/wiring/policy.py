"""Policy automation's stores and the coverage audit, built from the container's adapters and Graph —
Microsoft's in Azure, the simulator's in the devstack (GRAPH_BASE_URL)."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from verbatim.contracts.policy import CoverageReport
from verbatim.graph import graph_client
from verbatim.platform import layout
from verbatim.policy.coverage import audit_coverage
from verbatim.policy.directory import GraphDirectory
from verbatim.policy.readers import GraphEffectivePolicies, catalog_from_desired, tenant_default_policy
from verbatim.policy.service import must_record_groups
from verbatim.policy.stores import CosmosCoverageStateStore, CosmosDesiredStateStore
from verbatim.policy.validation import InvalidDesiredState, Validated

if TYPE_CHECKING:
    from verbatim.wiring.container import Container

log = logging.getLogger(__name__)


class PolicyServices:
    def __init__(self, container: Container) -> None:
        self._c = container
        self.settings = container.settings

    @cached_property
    def desired_states(self) -> CosmosDesiredStateStore:
        return CosmosDesiredStateStore(self._c.cosmos(layout.CONTROL))

    @cached_property
    def coverage_states(self) -> CosmosCoverageStateStore:
        return CosmosCoverageStateStore(self._c.cosmos(layout.CONTROL))

    def coverage_audit(self, now: datetime) -> CoverageReport:
        """One audit of the must-record users' effective policies against the published desired state."""
        published = self.desired_states.load()
        validated: Validated | None = None
        if published is not None:
            try:
                validated = published.validated()
            except InvalidDesiredState as error:
                log.error("the published desired state no longer validates: %s", error.detail)
        groups = must_record_groups(validated, self.settings.policy_must_record_groups)
        exclusion = validated.desired.jurisdictions.exclusion_policy if validated else None
        # Its own client, closed after the run: the audit runs every 15 minutes with Graph's default retries.
        graph = graph_client(self.settings)
        try:
            directory = GraphDirectory(graph)
            desired = validated.desired if validated else None
            reader = GraphEffectivePolicies(
                graph,
                catalog_from_desired(desired, directory) if desired else {},
                tenant_default=tenant_default_policy(desired),
            )
            return audit_coverage(
                must_record_groups=groups,
                directory=directory,
                reader=reader,
                now=now,
                state_store=self.coverage_states,
                snapshots=self._c.policy_snapshots,
                ledger=self._c.ledger,
                exclusion_policy=exclusion,
            )
        finally:
            graph.close()
