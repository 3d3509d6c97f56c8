"""Checks that each dependency (blob, queue, table, cosmos) answers, for GET /api/health."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from verbatim import clients
from verbatim.contracts.health import DependencyStatus, HealthReport
from verbatim.settings import Settings

Check = Callable[[], None]


def _probe(check: Check) -> DependencyStatus:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # a health probe reports every failure, whatever its type
        return DependencyStatus(status="down", detail=f"{type(error).__name__}: {str(error)[:200]}")
    return DependencyStatus(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 1))


def dependency_checks(settings: Settings) -> dict[str, Check | None]:
    """One cheap read per dependency; None where the dependency is not configured."""
    runtime = settings.runtime_storage_connection
    configured = runtime.connection_string is not None or runtime.account_name is not None

    def blob() -> None:
        clients.blob_service(runtime).get_service_properties(timeout=3)

    def queue() -> None:
        clients.queue_service(runtime).get_service_properties(timeout=3)

    def table() -> None:
        next(iter(clients.table_service(runtime).list_tables(results_per_page=1, timeout=3)), None)

    def cosmos() -> None:
        clients.cosmos_database(settings).read()

    return {
        "blob": blob if configured else None,
        "queue": queue if configured else None,
        "table": table if configured else None,
        "cosmos": cosmos if settings.cosmos_endpoint else None,
    }


def check_health(settings: Settings) -> HealthReport:
    checks = dependency_checks(settings)
    runnable = {name: check for name, check in checks.items() if check is not None}
    with ThreadPoolExecutor(max_workers=max(1, len(runnable))) as pool:
        results = dict(zip(runnable, pool.map(_probe, runnable.values()), strict=True))
    dependencies = {name: results.get(name, DependencyStatus(status="not_configured")) for name in checks}
    healthy = all(status.status == "up" for status in dependencies.values())
    return HealthReport(
        status="healthy" if healthy else "unhealthy", version=settings.app_version, dependencies=dependencies
    )
