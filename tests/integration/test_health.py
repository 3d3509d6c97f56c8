"""The health report against real emulators: up when they answer, 503-worthy when one is gone."""

from __future__ import annotations

import pytest

from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for
from verbatim.wiring.health import check_health


def test_health_reports_every_dependency_up_against_the_emulators(stack_env: Settings) -> None:
    report = check_health(container_for(stack_env))

    assert report.status == "healthy"
    assert {name: dep.status for name, dep in report.dependencies.items()} == {
        "blob": "up",
        "queue": "up",
        "table": "up",
        "cosmos": "up",
    }


def test_health_reports_unhealthy_when_cosmos_is_unreachable(
    stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.processes import free_port

    monkeypatch.setenv("COSMOS_ENDPOINT", f"https://127.0.0.1:{free_port()}")
    report = check_health(container_for(reload_settings()))

    assert report.status == "unhealthy"
    assert report.dependencies["cosmos"].status == "down"
    assert report.dependencies["blob"].status == "up"
