"""A desired-state file is validated against its JSON Schema and the rules across fields; every error names
the exact field, where it is in the file, and what is allowed there."""

from __future__ import annotations

import json

import pytest

from tests.policy.conftest import RECORDER, RECORDER_2, SALES, TRADERS, VALID
from verbatim.policy.schema import COMMITTED_SCHEMA, schema_text
from verbatim.policy.validation import InvalidDesiredState, Issue, load_desired_state, validate_data


def errors_of(text: str) -> list[Issue]:
    with pytest.raises(InvalidDesiredState) as caught:
        load_desired_state(text, "policies.yaml")
    return [issue for issue in caught.value.issues if issue.severity == "error"]


def only_error(text: str) -> Issue:
    errors = errors_of(text)
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


def test_the_valid_example_loads_with_teams_defaults_filled_in() -> None:
    loaded = load_desired_state(VALID, "policies.yaml")

    strict = loaded.desired.recording_policies[0]
    assert strict.retention_class == "mifid-5y"
    assert loaded.desired.recording_policies[1].retention_class == "default"
    assert strict.recorders[0].required_during_call is True
    assert strict.recorders[0].concurrent_invitation_count is None
    assert loaded.desired.jurisdictions.rules[1].countries == ["NO"]  # not the YAML 1.1 boolean false
    assert [w.message for w in loaded.warnings] == [
        "policy 'Advisers-Relaxed' is not strict: calls go ahead unrecorded when no recorder answers"
    ]


def test_the_committed_schema_is_the_one_generated_from_the_model() -> None:
    assert COMMITTED_SCHEMA.read_text() == schema_text(), "run `python -m verbatim.policy.schema` and commit"


def test_concurrent_invitation_count_together_with_a_paired_application_is_an_error() -> None:
    text = VALID.replace(
        f"    pairedWith: {RECORDER_2}\n", f"    pairedWith: {RECORDER_2}\n        concurrentInvitationCount: 2\n"
    )

    error = only_error(text)

    assert error.location == "recordingPolicies[0].recorders[0]"
    assert error.position is not None and (error.position.line, error.position.column) == (16, 9)
    assert error.message.startswith("concurrentInvitationCount and pairedWith are both set; use one:")
    assert "1 or 2 invitations to the same recorder" in error.message


def test_concurrent_invitation_count_outside_one_or_two_says_what_is_allowed() -> None:
    error = only_error(VALID.replace("concurrentInvitationCount: 2", "concurrentInvitationCount: 3"))

    assert error.location == "recordingPolicies[1].recorders[0].concurrentInvitationCount"
    assert error.message == "must be one of 1, 2 or null, not 3"


def test_an_unknown_field_is_named_with_its_line_and_the_allowed_fields() -> None:
    error = only_error(VALID.replace("    recordReroutedCalls: true\n", "    recordReroutedCall: true\n"))

    assert error.render("policies.yaml") == (
        "policies.yaml:14:5: error: recordingPolicies[0].recordReroutedCall: unknown field 'recordReroutedCall'; "
        "allowed fields here: capture, customBanner, description, disableComplianceRecordingAudioNotificationForCalls, "
        "enabled, name, recordReroutedCalls, recorders, retentionClass"
    )


def test_yes_is_not_a_boolean() -> None:
    error = only_error(VALID.replace("recordReroutedCalls: true", "recordReroutedCalls: yes"))

    assert error.location == "recordingPolicies[0].recordReroutedCalls"
    assert error.message == (
        "must be true or false, not text 'yes' (only true and false are booleans; yes/no/on/off are text)"
    )


def test_a_missing_required_field_is_named_with_its_meaning() -> None:
    error = only_error(VALID.replace("  - name: Not-Recorded\n    enabled: false\n", "  - name: Not-Recorded\n"))

    assert error.location == "recordingPolicies[2]"
    assert error.message.startswith("missing required field 'enabled': whether the policy is active")


def test_a_malformed_guid_and_upn_say_what_form_is_expected() -> None:
    text = VALID.replace("applicationId: 6f1c2a3b-0000-4000-8000-000000000001", "applicationId: not-a-guid")
    text = text.replace("user: dana@contoso.com", "user: dana")

    errors = errors_of(text)

    assert [(e.location, e.message) for e in errors] == [
        (
            "applicationInstances[0].applicationId",
            "must be a GUID like 6f1c2a3b-0000-4000-8000-000000000001, not 'not-a-guid'",
        ),
        ("assignments.users[0].user", "must be a user principal name like name@contoso.com, not 'dana'"),
    ]


def test_a_retention_class_must_be_a_class_name() -> None:
    error = only_error(VALID.replace("retentionClass: mifid-5y", "retentionClass: MiFID 5y"))

    assert error.location == "recordingPolicies[0].retentionClass"
    assert error.message.startswith("must be a retention class name: lower-case letters, digits and '-'")


def test_two_groups_with_the_same_rank_conflict() -> None:
    error = only_error(
        VALID.replace("policy: Advisers-Relaxed\n      rank: 2", "policy: Advisers-Relaxed\n      rank: 1")
    )

    assert error.location == "assignments.groups[1].rank"
    assert error.message == (
        f"rank 1 is already used by group {TRADERS} at assignments.groups[0]; each recording policy group "
        "assignment needs its own rank (used: 1; next free: 2)"
    )
    assert error.position is not None and error.position.line == 41


def test_a_group_assigned_twice_for_the_same_policy_type_is_an_error() -> None:
    error = only_error(VALID.replace(f"group: {SALES}", f"group: {TRADERS}"))

    assert error.location == "assignments.groups[1].group"
    assert "already has a recording policy assignment at assignments.groups[0]" in error.message


def test_calling_policy_ranks_conflict_across_calling_policies() -> None:
    text = VALID.replace(
        "jurisdictions:\n",
        f"  - name: Convenience-Allowed\n    allowCloudRecordingForCalls: true\n    groups:\n"
        f"      - group: {SALES}\n        rank: 1\njurisdictions:\n",
    )

    error = only_error(text)

    assert error.location == "callingPolicies[1].groups[0].rank"
    assert "rank 1 is already used by group" in error.message and "calling policy" in error.message


def test_a_recorder_must_reference_a_declared_application_instance() -> None:
    error = only_error(
        VALID.replace(
            f"  - instance: {RECORDER}\n        pairedWith", "  - instance: x@contoso.com\n        pairedWith"
        )
    )

    assert error.location == "recordingPolicies[0].recorders[0].instance"
    assert error.message == (
        "application instance 'x@contoso.com' is not declared in applicationInstances "
        f"(declared: {RECORDER}, {RECORDER_2})"
    )


def test_a_recorder_cannot_be_paired_with_itself() -> None:
    error = only_error(VALID.replace(f"pairedWith: {RECORDER_2}", f"pairedWith: {RECORDER}"))

    assert error.location == "recordingPolicies[0].recorders[0].pairedWith"


def test_assignments_must_name_declared_policies_and_never_global() -> None:
    text = VALID.replace(
        "user: dana@contoso.com\n      policy: Advisers-Relaxed", "user: dana@contoso.com\n      policy: Advisors"
    )
    text = text.replace("policy: Traders-Strict\n      rank: 1", "policy: Global\n      rank: 1")

    errors = errors_of(text)

    assert [(e.location, e.message.split(";")[0]) for e in errors] == [
        (
            "assignments.users[0].policy",
            "recording policy 'Advisors' is not declared in recordingPolicies "
            "(declared: Traders-Strict, Advisers-Relaxed, Not-Recorded)",
        ),
        ("assignments.groups[0].policy", "'Global' is the tenant default policy and cannot be assigned"),
    ]


def test_excluding_a_jurisdiction_needs_an_exclusion_policy_that_records_nobody() -> None:
    missing = errors_of(VALID.replace("  exclusionPolicy: Not-Recorded\n", ""))
    recording = errors_of(VALID.replace("exclusionPolicy: Not-Recorded", "exclusionPolicy: Traders-Strict"))

    assert [e.location for e in missing] == ["jurisdictions.rules[1].action"]
    assert "needs jurisdictions.exclusionPolicy" in missing[0].message
    assert [e.location for e in recording] == ["jurisdictions.exclusionPolicy"]
    assert "records its users" in recording[0].message


def test_a_country_may_have_one_rule_only() -> None:
    error = only_error(VALID.replace("countries: [NO]", "countries: [NO, DE]"))

    assert error.location == "jurisdictions.rules[1].countries[1]"
    assert error.message == "country DE already has a rule at jurisdictions.rules[0].countries[0]"


def test_lower_case_country_codes_are_refused() -> None:
    error = only_error(VALID.replace("countries: [DE, AT]", "countries: [de, AT]"))

    assert error.location == "jurisdictions.rules[0].countries[0]"
    assert "ISO 3166-1 alpha-2 country code in upper case" in error.message


def test_duplicate_yaml_keys_are_errors_not_last_one_wins() -> None:
    error = only_error(VALID.replace("    enabled: false\n", "    enabled: false\n    enabled: true\n"))

    assert error.location == "recordingPolicies[2].enabled"
    assert error.message.startswith("duplicate key")


def test_broken_yaml_reports_where_the_parser_stopped() -> None:
    error = only_error(VALID.replace("  - name: Not-Recorded", "  - name: [Not-Recorded"))

    assert error.location == "(document)"
    assert error.message.startswith("not valid YAML")
    assert error.position is not None and (error.position.line, error.position.column) == (28, 12)


def test_a_json_body_is_validated_the_same_way_without_positions() -> None:
    with pytest.raises(InvalidDesiredState) as caught:
        validate_data(json.loads(json.dumps({"version": 3})))

    assert [(i.location, i.message, i.position) for i in caught.value.issues] == [
        ("version", "must be one of 1, 2, not 3", None)
    ]


def test_an_enabled_policy_without_recorders_is_a_warning() -> None:
    text = VALID.replace("  exclusionPolicy: Not-Recorded\n", "").replace("action: exclude", "action: warn")
    text = text.replace("    enabled: false\n", "    enabled: true\n")

    loaded = load_desired_state(text, "p.yaml")

    assert "policy 'Not-Recorded' is enabled but has no recorders: it records nobody" in [
        w.message for w in loaded.warnings
    ]


def test_a_must_record_group_assigned_a_policy_that_records_nobody_is_a_warning() -> None:
    text = VALID.replace("policy: Traders-Strict\n      rank: 1", "policy: Not-Recorded\n      rank: 1")

    loaded = load_desired_state(text, "p.yaml")

    assert [(w.location, w.message) for w in loaded.warnings if w.location.startswith("mustRecord")] == [
        (
            "mustRecord.groups[0].group",
            f"must-record group {TRADERS} (Traders) is assigned Not-Recorded, which records nobody",
        )
    ]


def test_a_control_character_is_an_error_not_a_crash() -> None:
    error = only_error("version: 1\x1f\n")

    assert error.message == "not valid YAML: special characters are not allowed (character #x001f)"
