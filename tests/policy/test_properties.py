"""Properties of the parsers and the plan: any input gives a result or precise errors (never a crash), a
desired state planned against itself has no changes, and an export of a tenant reads back to that tenant."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.policy.test_cli import export_of
from verbatim.policy.compile import compile_desired
from verbatim.policy.export import export_state, parse_export
from verbatim.policy.model import DesiredState
from verbatim.policy.plan import diff
from verbatim.policy.validation import InvalidDesiredState, load_desired_state, validate_data

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["version", "applicationInstances", "recordingPolicies", "assignments", "callingPolicies", "jurisdictions"]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values)
def test_any_json_document_is_either_valid_or_rejected_with_located_errors(document: Any) -> None:
    try:
        validate_data(document)
    except InvalidDesiredState as invalid:
        assert invalid.issues and all(issue.message for issue in invalid.issues)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_either_valid_yaml_or_rejected_without_a_crash(text: str) -> None:
    try:
        load_desired_state(text, "fuzz.yaml")
    except InvalidDesiredState as invalid:
        assert all(issue.severity in ("error", "warning") for issue in invalid.issues)


guid = st.uuids().map(str)
upn = st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}@contoso\.com", fullmatch=True)
name = st.from_regex(r"[A-Z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(lambda n: n.casefold() != "global")


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    instances = draw(st.lists(upn, min_size=1, max_size=3, unique_by=str.casefold))
    policies = draw(st.lists(name, min_size=1, max_size=4, unique_by=str.casefold))
    recording = []
    for policy in policies:
        recorders = []
        for instance in draw(st.lists(st.sampled_from(instances), max_size=len(instances), unique=True)):
            recorder: dict[str, Any] = {"instance": instance, "requiredDuringCall": draw(st.booleans())}
            others = [i for i in instances if i != instance]
            if others and draw(st.booleans()):
                recorder["pairedWith"] = draw(st.sampled_from(others))
            elif draw(st.booleans()):
                recorder["concurrentInvitationCount"] = draw(st.sampled_from([1, 2]))
            recorders.append(recorder)
        recording.append({"name": policy, "enabled": draw(st.booleans()), "recorders": recorders})
    groups = draw(st.lists(guid, max_size=5, unique=True))
    ranks = draw(st.permutations(range(1, len(groups) + 1)))
    users = draw(st.lists(upn, max_size=4, unique_by=str.casefold))
    document = {
        "version": 1,
        "applicationInstances": [
            {"userPrincipalName": i, "displayName": i.split("@")[0], "applicationId": draw(guid)} for i in instances
        ],
        "recordingPolicies": recording,
        "assignments": {
            "users": [{"user": u, "policy": draw(st.sampled_from(policies))} for u in users],
            "groups": [
                {"group": g, "policy": draw(st.sampled_from(policies)), "rank": r * 10}
                for g, r in zip(groups, ranks, strict=True)
            ],
        },
    }
    return validate_data(json.loads(json.dumps(document))).desired


@settings(max_examples=50, deadline=None)
@given(desired_states())
def test_a_desired_state_planned_against_itself_has_no_changes(desired: DesiredState) -> None:
    state = compile_desired(desired, None).state

    assert list(diff(state, state)) == []


@settings(max_examples=50, deadline=None)
@given(desired_states())
def test_the_export_of_a_tenant_reads_back_to_that_tenant(desired: DesiredState) -> None:
    state = compile_desired(desired, None).state

    read_back = export_state(parse_export(json.dumps(export_of(state))))

    assert list(diff(state, read_back)) == []
