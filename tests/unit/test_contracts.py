"""Every cross-process contract has a committed JSON Schema that matches the model exactly."""

from __future__ import annotations

import json

import pytest

from verbatim.contracts import SCHEMA_DIR, registered_contracts, schema_of


@pytest.mark.parametrize("key", sorted(registered_contracts()))
def test_committed_schema_matches_the_model(key: str) -> None:
    committed = SCHEMA_DIR / f"{key}.json"

    assert committed.exists(), f"{committed} is missing: run `python -m verbatim.contracts` and commit it"
    assert committed.read_text() == schema_of(key), f"{committed} is stale: run `python -m verbatim.contracts`"


def test_no_committed_schema_is_left_without_its_model() -> None:
    orphans = {path.stem for path in SCHEMA_DIR.glob("*.json")} - set(registered_contracts())

    assert not orphans, f"schemas without a registered contract: {sorted(orphans)}"


def test_every_contract_key_carries_its_version() -> None:
    for key in registered_contracts():
        name, _, version = key.rpartition(".v")
        assert name and version.isdigit(), key


def test_schemas_are_valid_json_schema_documents() -> None:
    from jsonschema import Draft202012Validator

    for key in registered_contracts():
        Draft202012Validator.check_schema(json.loads(schema_of(key)))
