"""Fixtures for the infra tests: every template parsed once."""

from __future__ import annotations

import pytest

from tests.infra.bicep_tree import INFRA, Bicep

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


@pytest.fixture(scope="session")
def templates() -> dict[str, Bicep]:
    """Every .bicep under infra/, parsed, keyed by path relative to infra/ (e.g. modules/cosmos.bicep)."""
    return {path.relative_to(INFRA).as_posix(): Bicep.load(path) for path in BICEP_FILES}


@pytest.fixture(scope="session")
def main(templates: dict[str, Bicep]) -> Bicep:
    return templates["main.bicep"]


def mutated(template: Bicep, old: str, new: str) -> Bicep:
    """The same template with one piece of text replaced (the replaced text must occur)."""
    source = template.source.decode()
    assert old in source, f"{old!r} is not in {template.path}"
    copy = Bicep(source.replace(old, new).encode(), template.path)
    return copy
