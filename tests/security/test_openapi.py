"""Issue 13, "Also": the OpenAPI document covers every `/api/v1` route function_app.py registers, with the same
methods, and is a valid OpenAPI 3.1 document (openapi-spec-validator); its request and response schemas are the
JSON Schemas of the contracts the triggers read and answer with (verbatim.api.openapi.MODELS), and every read
route's real answer on the local stack validates against the schema the document gives it. Served as is by the
host."""

from __future__ import annotations

import uuid

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.security.conftest import Stack
from tests.security.test_read_audit import READS, _call_route, registered_routes
from tests.security.test_read_audit import made as made  # the hold and coverage audit the reads need
from verbatim.api.openapi import MODELS, OPERATIONS, openapi_document


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), f"v1{path}")
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }


def test_every_v1_route_is_in_the_document_and_nothing_else() -> None:
    # A catch-all route parameter (`{*path}`) is an ordinary path parameter in OpenAPI.
    registered = {
        (method, route.replace("{*", "{")) for method, route in registered_routes() if route.startswith("v1/")
    }
    assert registered - documented_routes() == set(), "routes missing from verbatim/api/openapi.py OPERATIONS"
    assert documented_routes() - registered == set(), "documented operations no trigger serves"


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


def test_every_documented_model_is_a_component_and_every_reference_resolves() -> None:
    document = openapi_document()
    components = document["components"]["schemas"]
    assert {model.__name__ for model in MODELS} <= set(components)
    missing = {
        ref.split("/")[-1]
        for ref in _refs(document)
        if ref.startswith("#/components/schemas/") and ref.split("/")[-1] not in components
    }
    assert missing == set()


def test_role_protected_operations_say_so_and_problems_are_problem_json() -> None:
    for op in OPERATIONS:
        operation = openapi_document()["paths"][op.path][op.method]
        if op.roles:
            assert operation["security"] == [{"entra": list(op.roles)}]
            assert {"401", "403"} <= set(operation["responses"])
        for status, answer in operation["responses"].items():
            if int(status) >= 400 and "content" in answer and int(status) not in op.also:
                assert "application/problem+json" in answer["content"], (op.operation_id, status)


def test_the_host_serves_the_document(stack: Stack) -> None:
    served = httpx.get(f"{stack.api}/v1/openapi.json", timeout=60)
    assert served.status_code == 200
    assert served.json() == openapi_document()


@pytest.mark.parametrize("key", sorted(READS), ids=lambda key: f"{key[0]} {key[1]}")
def test_every_read_route_answers_what_the_document_says(
    stack: Stack, made: dict[str, str], key: tuple[str, str]
) -> None:
    method, route = key
    response = _call_route(stack, made, key, f"contract-{uuid.uuid4().hex[:8]}")
    document = openapi_document()
    operation = document["paths"]["/" + route.removeprefix("v1/").replace("{*", "{")][method.lower()]
    answers = operation["responses"]
    assert str(response.status_code) in answers, (response.status_code, response.text[:300])
    kind = response.headers.get("Content-Type", "").split(";")[0]
    content = {
        name.split(";")[0].strip(): value
        for name, value in answers[str(response.status_code)].get("content", {}).items()
    }
    if not kind.endswith("json"):
        assert kind in content or not content, (kind, list(content))
        return
    schema = content[kind]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}"[:300] for e in errors[:5]]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
