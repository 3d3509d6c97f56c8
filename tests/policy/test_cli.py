"""`verbatim policy ...` from the command line: exit codes 0 no changes, 2 changes, 1 invalid; messages on
stderr name file, line, column and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.policy import golden
from tests.policy.conftest import VALID, desired
from verbatim.cli import main
from verbatim.policy.compile import compile_desired
from verbatim.policy.state import TenantState

DATA = Path(__file__).parent / "data"


def export_of(state: TenantState) -> dict[str, object]:
    """What the export script would write for a tenant in `state` (object ids made up from UPNs)."""
    ids = {k: f"id-{i.user_principal_name}" for k, i in state.instances.items()}
    return {
        "schemaVersion": 1,
        "applicationInstances": [
            {
                "objectId": ids[k],
                "userPrincipalName": i.user_principal_name,
                "displayName": i.display_name,
                "applicationId": i.application_id,
            }
            for k, i in state.instances.items()
        ],
        "recordingPolicies": [
            {
                "name": p.name,
                "enabled": p.enabled,
                "description": p.description or "",
                "recordReroutedCalls": p.record_rerouted_calls,
                "disableComplianceRecordingAudioNotificationForCalls": (
                    p.disable_compliance_recording_audio_notification_for_calls
                ),
                "customBanner": p.custom_banner,
                "recorders": [
                    {
                        "instanceObjectId": ids[k],
                        "requiredBeforeCallEstablishment": r.required_before_call_establishment,
                        "requiredBeforeMeetingJoin": r.required_before_meeting_join,
                        "requiredDuringCall": r.required_during_call,
                        "requiredDuringMeeting": r.required_during_meeting,
                        "concurrentInvitationCount": r.concurrent_invitation_count,
                        "pairedInstanceObjectIds": [ids[r.paired_with.casefold()]] if r.paired_with else [],
                        "priority": 0,
                    }
                    for k, r in p.recorders.items()
                ],
            }
            for p in state.recording_policies.values()
        ],
        "groupAssignments": [
            {"groupId": a.group, "policy": a.policy, "rank": a.rank} for a in state.group_assignments.values()
        ],
        "callingPolicies": [
            {"name": c.name, "allowCloudRecordingForCalls": c.allow_cloud_recording_for_calls}
            for c in state.calling_policies.values()
        ],
        "callingGroupAssignments": [
            {"groupId": a.group, "policy": a.policy, "rank": a.rank} for a in state.calling_group_assignments.values()
        ],
        "users": [
            {"id": f"id-{u.user}", "userPrincipalName": u.user, "usageLocation": "GB", "recordingPolicy": u.policy}
            for u in state.user_assignments.values()
        ],
    }


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(VALID)
    return path


def test_validate_exits_zero_for_a_valid_file(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", str(policies)]) == 0
    assert capsys.readouterr().out == f"{policies}: valid\n"


def test_validate_exits_one_and_names_the_field_and_line(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies.write_text(VALID.replace("rank: 2", "rank: 1"))

    assert main(["policy", "validate", str(policies)]) == 1
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if ": error: " in line]
    assert len(errors) == 1
    assert errors[0].startswith(f"{policies}:41:7: error: assignments.groups[1].rank: rank 1 is already used by group")
    assert err[-1] == f"{policies}: invalid: 1 error(s)"


def test_plan_against_an_export_with_changes_exits_two(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "plan", str(policies), "--target", "export", str(DATA / "export-partial.json")])

    assert code == 2
    assert capsys.readouterr().out.endswith("Plan: 7 to add, 3 to change, 3 to remove.\n")


def test_plan_against_an_up_to_date_export_exits_zero(
    policies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.json"
    # Windows PowerShell writes UTF-8 with a byte-order mark.
    export.write_text(json.dumps(export_of(compile_desired(desired(), None).state)), encoding="utf-8-sig")

    code = main(["policy", "plan", str(policies), "--target", "export", str(export), "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []


def test_plan_of_an_invalid_file_exits_one_before_reading_the_target(
    policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies.write_text("version: 1\nrecordingPolicies:\n  - name: X\n    enabled: true\n    colour: red\n")

    assert main(["policy", "plan", str(policies), "--target", "export", "/nonexistent.json"]) == 1
    assert "recordingPolicies[0].colour: unknown field 'colour'" in capsys.readouterr().err


def test_an_unreadable_export_exits_one(policies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "export.json"
    broken.write_text("{not json")

    assert main(["policy", "plan", str(policies), "--target", "export", str(broken)]) == 1
    assert "cannot read the current state" in capsys.readouterr().err


def test_script_writes_the_golden_script(policies: Path, tmp_path: Path) -> None:
    out = tmp_path / "apply.ps1"

    code = main(
        ["policy", "script", str(policies), "--target", "export", str(DATA / "export-partial.json"), "-o", str(out)]
    )

    assert code == 2
    golden.check("script-from-export.ps1", out.read_text())


def test_export_script_prints_the_read_only_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "export-script"]) == 0
    golden.check("export.ps1", capsys.readouterr().out)


def test_apply_refuses_a_target_other_than_the_simulator(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "apply", str(policies), "--target", "export", str(DATA / "export-partial.json")]) == 1
    assert "apply works against the simulator only" in capsys.readouterr().err


def test_a_malformed_target_is_a_usage_error(policies: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["policy", "plan", str(policies), "--target", "export"])

    assert caught.value.code == 2  # argparse's usage error


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from verbatim.policy.schema import COMMITTED_SCHEMA

    assert main(["policy", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(COMMITTED_SCHEMA.read_text())
