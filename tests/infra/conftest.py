"""Fixtures for the infra tests: every template parsed once."""

from __future__ import annotations

import pytest

from tests.infra.bicep_tree import INFRA, Bicep, bicep_files


@pytest.fixture(scope="session")
def templates() -> dict[str, Bicep]:
    """Every .bicep under infra/, parsed, keyed by path relative to infra/ (e.g. modules/cosmos.bicep)."""
    return {path.relative_to(INFRA).as_posix(): Bicep.load(path) for path in bicep_files()}


@pytest.fixture(scope="session")
def main(templates: dict[str, Bicep]) -> Bicep:
    return templates["main.bicep"]
