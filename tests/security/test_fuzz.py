"""Every `/api/v1` operation of the OpenAPI document fuzzed against the local Functions host with Schemathesis
(property-based, on hypothesis): valid and invalid parameters, headers and bodies generated from the schemas,
sent with a token holding every app role. No answer may be a 5xx, and every answer must be one the document
lists, with the content type and the body schema it gives.

`make test` runs a short seeded subset (FUZZ_EXAMPLES, default 3 per operation); `make fuzz` the long run
(FUZZ_EXAMPLES=100, a fresh seed unless FUZZ_SEED is set).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import ADMIN, AUDITOR, OFFICER, Stack
from verbatim.api.openapi import openapi_document

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
SEED = int(os.environ.get("FUZZ_SEED", "1313")) if EXAMPLES <= 10 or "FUZZ_SEED" in os.environ else None
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def fuzz_token(stack: Stack) -> str:
    return stack.token(OFFICER, AUDITOR, ADMIN, subject="fuzzer")


def _seeded(test):  # type: ignore[no-untyped-def]
    return seed(SEED)(test) if SEED is not None else test


@_seeded
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_answers_a_5xx_or_off_its_schema(case: schemathesis.Case, stack: Stack, fuzz_token: str) -> None:
    token = fuzz_token
    case.call_and_validate(
        base_url=f"{stack.api}/v1", headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=120
    )
