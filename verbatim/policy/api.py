"""What the policy HTTP triggers do, without azure.functions: read a desired state from a request body
(YAML, or JSON), validate it, plan it, publish it, and answer "which policy applied to user U at time T".

A body is YAML when its content type says so (application/yaml, text/yaml, their x- forms, text/plain);
JSON bodies are either the desired state itself or a `PolicyPlanRequest` wrapping it with the current
state exported by the generated PowerShell script.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from verbatim.contracts.policy import (
    CoverageReport,
    EffectivePolicyAt,
    PolicyExport,
    PolicyPlan,
    PolicyPlanRequest,
    PolicyValidationReport,
    PublishedDesiredStateInfo,
    PublishedDesiredStateView,
)
from verbatim.ledger import LedgerWriter
from verbatim.ledger.access import AccessLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from verbatim.policy.coverage import CoverageStateStore
from verbatim.policy.export import export_directory, export_state
from verbatim.policy.service import CurrentState, plan, publish_desired_state
from verbatim.policy.snapshots import PolicySnapshotStore
from verbatim.policy.source import MAX_DEPTH
from verbatim.policy.stores import DesiredStateStore
from verbatim.policy.validation import (
    InvalidDesiredState,
    UnreadableDesiredState,
    Validated,
    load_desired_state,
    validate_data,
)

MAX_BODY = 1024 * 1024
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _checked(content_type: str | None, body: bytes) -> str:
    kind = media_type(content_type)
    if kind != "application/json" and kind not in YAML_TYPES:
        raise UnsupportedMediaType(
            f"expected a YAML (application/yaml) or JSON (application/json) body, got {kind or 'none'}"
        )
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds the limit of {MAX_BODY}")
    return kind


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput("the body is not UTF-8 text") from error


def read_request(content_type: str | None, body: bytes) -> tuple[Validated, PolicyExport | None]:
    """The validated desired state of a request, and the current state it carries (if any)."""
    kind = _checked(content_type, body)
    if kind in YAML_TYPES:
        return load_desired_state(_text(body), "request body"), None
    try:
        data: Any = json.loads(_text(body))
    except json.JSONDecodeError as error:
        raise InvalidInput(f"the body is not JSON: {error.msg} at line {error.lineno}") from error
    except RecursionError as error:  # nested beyond what the parser can follow; far beyond check_data's limit
        raise InvalidInput(f"the body is nested deeper than {MAX_DEPTH} levels") from error
    if isinstance(data, dict) and "desiredState" in data:
        try:
            request = PolicyPlanRequest.model_validate(data)
        except ValidationError as error:
            errors = [{"path": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
            raise InvalidInput("the body does not match policy-plan-request.v1", errors=errors) from error
        desired = request.desired_state
        validated = load_desired_state(desired, "desiredState") if isinstance(desired, str) else validate_data(desired)
        return validated, request.current_state
    return validate_data(data, "request body"), None


def validate_request(content_type: str | None, body: bytes) -> PolicyValidationReport:
    """Valid or not, with every finding; only a body we cannot read at all is an error."""
    try:
        validated, _ = read_request(content_type, body)
    except UnreadableDesiredState:
        raise  # not a document with findings: a bad request
    except InvalidDesiredState as invalid:
        return PolicyValidationReport(valid=False, issues=[issue.as_dict() for issue in invalid.issues])
    return PolicyValidationReport(valid=True, issues=[issue.as_dict() for issue in validated.warnings])


def plan_request(content_type: str | None, body: bytes, simulator_url: str | None) -> PolicyPlan:
    """The plan of a request's desired state against its exported current state, or the simulator's."""
    validated, export = read_request(content_type, body)
    if export is not None:
        current = CurrentState(export_state(export), "export in the request", export_directory(export))
    elif simulator_url:
        from verbatim.policy.simulator import current_from_simulator

        current = current_from_simulator(simulator_url)
    else:
        raise InvalidInput(
            'no current state to compare with: post JSON {"desiredState": ..., "currentState": ...} where '
            "currentState is the file written by the script of `verbatim policy export-script`"
        )
    return plan(validated, current)


def publish_request(
    content_type: str | None,
    body: bytes,
    store: DesiredStateStore,
    *,
    actor: str | None,
    now: datetime,
    ledger: LedgerWriter | None,
    subject: str | None = None,
) -> PublishedDesiredStateInfo:
    _checked(content_type, body)
    # A JSON document is YAML too; the text is kept as posted, so the published copy is what was reviewed.
    text = _text(body)
    published, validated = publish_desired_state(store, text, actor=actor, now=now, ledger=ledger, subject=subject)
    return PublishedDesiredStateInfo(
        sha256=published.sha256,
        published_at=published.published_at,
        published_by=actor,
        must_record_groups=[g.group for g in validated.desired.must_record.groups],
        warnings=[issue.render() for issue in validated.warnings],
    )


def published_request(store: DesiredStateStore) -> PublishedDesiredStateView:
    """The published desired state (404 until an admin publishes one)."""
    published = store.load()
    if published is None:
        raise NotFound("no desired state has been published yet (PUT /api/v1/policy/desired-state)")
    return PublishedDesiredStateView(
        text=published.text,
        sha256=published.sha256,
        published_at=published.published_at,
        published_by=published.published_by,
    )


def effective_at_request(store: PolicySnapshotStore, user_id: str, at: str | None, now: datetime) -> EffectivePolicyAt:
    if at is None:
        moment = now
    else:
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError as error:
            raise InvalidInput(
                f"'at' must be an ISO 8601 time with a zone, like 2026-03-02T09:30:00Z; got {at!r}"
            ) from error
        if moment.tzinfo is None:
            raise InvalidInput("'at' needs a time zone (Z or +hh:mm)")
    return store.effective_at(user_id, moment)


def coverage_report(states: CoverageStateStore, access: AccessLog, principal: Principal) -> CoverageReport:
    """`GET /v1/policy/coverage`: the last coverage audit (who must be recorded and is not), a recorded read."""
    access.record(principal, "policy.coverage.read", "policy:coverage", None)
    state = states.load()
    if state.last_report is None:
        raise NotFound("no coverage audit has run yet")
    return state.last_report


def effective_policy(
    store: PolicySnapshotStore, access: AccessLog, principal: Principal, user_id: str, at: str | None, now: datetime
) -> EffectivePolicyAt:
    """`GET /v1/policy/effective/{userId}`: which recording policy applied to a user at a time, a recorded read."""
    access.record(principal, "policy.effective.read", f"user:{user_id[:256]}", None, {"at": at})
    return effective_at_request(store, user_id, at, now)
