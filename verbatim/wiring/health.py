"""Checks that each dependency (blob, queue, table, cosmos) answers, for GET /api/health.

Each probe is an operation the Function App's data roles allow. Service-level calls (Get Blob/Queue Service
Properties) need `blobServices/read` / `queueServices/read`, management actions in Storage Account Contributor,
not in the data roles (https://learn.microsoft.com/rest/api/storageservices/get-blob-service-properties#authorization),
so in Azure they answer 403 and the probe would report a healthy store as down. Instead: the properties of
the scratch container (`containers/read`, in Storage Blob Data Owner) and of a queue the app consumes
(Get Queue Metadata, in Storage Queue Data Contributor; the Functions queue trigger reads it to scale), and one
page of the table listing (`tables/read`, in Storage Table Data Contributor).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from verbatim.contracts.health import (
    NOT_LOCKED_WARNING,
    DependencyStatus,
    HealthReport,
    HealthStatus,
)
from verbatim.platform import layout
from verbatim.wiring.container import Container

Check = Callable[[], None]
log = logging.getLogger(__name__)

# Both in verbatim.platform.layout, so they exist on the runtime account (infra/modules/runtime-storage.bicep)
# and in the devstack; the blob probe reads the container's own client (`Container.scratch`).
PROBE_CONTAINER = layout.LIFECYCLE_SCRATCH_BLOBS
PROBE_QUEUE = layout.RECORDER_EVENTS_QUEUE


def _probe(check: Check) -> DependencyStatus:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # a health probe reports every failure, whatever its type
        # The kind of failure only: exception texts carry endpoints, account names and request ids.
        log.warning("health probe failed: %s", error)
        return DependencyStatus(status="down", detail=type(error).__name__)
    return DependencyStatus(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 1))


def dependency_checks(container: Container) -> dict[str, Check | None]:
    """One cheap read per dependency, through the process's own clients; None where it is not configured."""
    settings = container.settings
    runtime = settings.runtime_storage_connection
    configured = runtime.connection_string is not None or runtime.account_name is not None

    def blob() -> None:
        container.scratch.get_container_properties(timeout=3)

    def queue() -> None:
        container.runtime_queues.get_queue_client(PROBE_QUEUE).get_queue_properties(timeout=3)

    def table() -> None:
        next(iter(container.runtime_tables.list_tables(results_per_page=1, timeout=3)), None)

    def cosmos() -> None:
        container.database.read()

    return {
        "blob": blob if configured else None,
        "queue": queue if configured else None,
        "table": table if configured else None,
        "cosmos": cosmos if settings.cosmos_endpoint else None,
    }


def health_status(report: HealthReport) -> HealthStatus:
    """What an anonymous caller is told."""
    return HealthStatus(status=report.status)


def check_health(container: Container) -> HealthReport:
    settings = container.settings
    checks = dependency_checks(container)
    runnable = {name: check for name, check in checks.items() if check is not None}
    with ThreadPoolExecutor(max_workers=max(1, len(runnable))) as pool:
        results = dict(zip(runnable, pool.map(_probe, runnable.values()), strict=True))
    dependencies = {name: results.get(name, DependencyStatus(status="not_configured")) for name in checks}
    healthy = all(status.status == "up" for status in dependencies.values())
    evidence = container.evidence_store_status()
    return HealthReport(
        status="healthy" if healthy else "unhealthy",
        version=settings.app_version,
        dependencies=dependencies,
        evidence_store=evidence,
        warnings=[NOT_LOCKED_WARNING] if evidence.worm != "locked" else [],
    )
