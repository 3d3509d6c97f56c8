"""The lifecycle orchestration passes contracts, never ad-hoc dicts: every activity parses its input into a
`verbatim.contracts.lifecycle` model and returns one, the orchestrator never reads or writes a payload by key,
and what it sends and receives round-trips through the contracts."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import functions.lifecycle as lifecycle
from verbatim.contracts import registered_contracts
from verbatim.contracts.lifecycle import (
    AccessChunk,
    AssembleAccessCopy,
    IndexRequest,
    LifecycleOutcome,
    LifecycleStatus,
    RecorderSignal,
    SealRequest,
)

SOURCE = ast.parse(inspect.getsource(lifecycle))


def decorated_with(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == name
        for d in node.decorator_list
    )


def functions_decorated_with(name: str) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(SOURCE) if isinstance(n, ast.FunctionDef) and decorated_with(n, name)]


def string_subscripts(node: ast.AST) -> list[str]:
    """`x["key"]` reads anywhere under `node`."""
    return [
        ast.unparse(n)
        for n in ast.walk(node)
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)
    ]


def dict_literals_with_string_keys(node: ast.AST) -> list[str]:
    return [
        ast.unparse(n)
        for n in ast.walk(node)
        if isinstance(n, ast.Dict) and any(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in n.keys)
    ]


def test_every_activity_parses_its_input_into_a_contract_and_reads_no_key() -> None:
    activities = functions_decorated_with("activity_trigger")
    assert len(activities) == 7
    for activity in activities:
        source = ast.unparse(activity)
        assert ".model_validate(" in source, f"{activity.name} does not parse its input into a contract"
        assert string_subscripts(activity) == [], activity.name
        assert dict_literals_with_string_keys(activity) == [], activity.name


def test_the_access_copies_trigger_parses_its_message_into_a_contract_and_reads_no_key() -> None:
    [trigger] = [n for n in ast.walk(SOURCE) if isinstance(n, ast.AsyncFunctionDef) and n.name == "access_copies"]
    assert decorated_with(trigger, "queue_trigger")
    assert "AccessCopyRequest.model_validate_json(" in ast.unparse(trigger)
    assert string_subscripts(trigger) == [] and dict_literals_with_string_keys(trigger) == []


def test_the_orchestrator_spells_no_payload() -> None:
    [orchestrator] = functions_decorated_with("orchestration_trigger")
    assert string_subscripts(orchestrator) == []
    assert dict_literals_with_string_keys(orchestrator) == []


def test_the_lifecycle_contracts_are_registered_with_a_schema() -> None:
    registered = registered_contracts()
    for name in (
        "lifecycle.recording-task.v1",
        "lifecycle.assemble-access-copy.v1",
        "lifecycle.seal-request.v1",
        "lifecycle.index-request.v1",
        "lifecycle.mark-not-recorded.v1",
        "lifecycle.recorder-signal.v1",
        "lifecycle.status.v1",
        "lifecycle.outcome.v1",
        "lifecycle.access-copy-request.v1",
        "lifecycle.access-copy-requested.v1",
    ):
        assert name in registered


def roundtrip(model: Any) -> Any:
    return type(model).model_validate_json(model.model_dump_json())


def test_status_and_outcome_keep_the_shape_operators_and_tests_read() -> None:
    status = lifecycle._status("sealed", "rec-1", 0, ledger_seq=4)
    assert status == {"stage": "sealed", "recording_id": "rec-1", "ledger_seq": 4}
    continuation = lifecycle._status("capturing", "rec-1", 2)
    assert continuation == {"stage": "capturing", "recording_id": "rec-1", "part": 2}
    assert LifecycleStatus.model_validate(status).stage == "sealed"
    outcome = LifecycleOutcome(recording_id="rec-1", status="not_recorded", reason="failed: no media")
    assert roundtrip(outcome) == outcome
    signal = RecorderSignal(sequence=3, type="recording.stopped")
    assert roundtrip(signal) == signal


def test_an_assemble_request_without_chunks_and_a_seal_without_access_copy_validate() -> None:
    assemble = AssembleAccessCopy(
        recording_id="r", finalised_blob="finalised/r.json", chunks=[AccessChunk(blob_name="c")]
    )
    assert roundtrip(assemble) == assemble
    request = SealRequest.model_validate({"recording_id": "r", "finalised_blob": "f", "access_copy": None})
    assert request.access_copy is None
    assert IndexRequest.model_fields["problems"].default_factory is not None
