"""Generated PowerShell and plan text: compared with golden files, parsed with tree-sitter-powershell (no
ERROR nodes), every tenant-changing command behind ShouldProcess (-WhatIf), the export script read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.policy import golden
from tests.policy.conftest import VALID
from tests.policy.ps_tree import commands, mutating, syntax_errors
from verbatim.contracts.policy import PolicyPlan
from verbatim.policy.powershell import change_script, export_script, quote
from verbatim.policy.render import render_plan
from verbatim.policy.service import CurrentState, current_from_export, plan
from verbatim.policy.state import TenantState
from verbatim.policy.validation import load_desired_state

DATA = Path(__file__).parent / "data"


def plan_against_export() -> PolicyPlan:
    return plan(load_desired_state(VALID, "policies.yaml"), current_from_export(DATA / "export-partial.json"))


def plan_against_empty_tenant() -> PolicyPlan:
    return plan(load_desired_state(VALID, "policies.yaml"), CurrentState(TenantState(), "an empty tenant"))


def plan_without_changes() -> PolicyPlan:
    validated = load_desired_state(VALID, "policies.yaml")
    from verbatim.policy.compile import compile_desired

    return plan(validated, CurrentState(compile_desired(validated.desired, None).state, "an up-to-date tenant"))


CASES = {
    "from-export": plan_against_export,
    "from-empty-tenant": plan_against_empty_tenant,
    "no-changes": plan_without_changes,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_change_script_matches_its_golden_file(case: str) -> None:
    golden.check(f"script-{case}.ps1", change_script(CASES[case](), "policies.yaml"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plan_text_matches_its_golden_file(case: str) -> None:
    golden.check(f"plan-{case}.txt", render_plan(CASES[case](), "policies.yaml"))


def test_the_export_script_matches_its_golden_file() -> None:
    golden.check("export.ps1", export_script())


@pytest.mark.parametrize(
    "name", ["script-from-export.ps1", "script-from-empty-tenant.ps1", "script-no-changes.ps1", "export.ps1"]
)
def test_every_golden_script_parses_without_errors(name: str) -> None:
    assert syntax_errors((golden.GOLDEN / name).read_text(encoding="utf-8")) == []


def test_the_parser_does_flag_broken_powershell() -> None:
    assert syntax_errors("if ($x) {\n  New-Thing -A 'b'\n") != []
    assert syntax_errors("$a = 'unterminated\n") != []


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_that_changes_the_tenant_is_behind_should_process(case: str) -> None:
    script = change_script(CASES[case](), "policies.yaml")

    unguarded = [f"{c.line}: {c.name}" for c in mutating(script) if not c.guarded]

    assert unguarded == []
    assert "[CmdletBinding(SupportsShouldProcess = $true" in script


def test_the_script_uses_the_cmdlets_of_each_kind_of_change() -> None:
    names = {c.name for c in commands(change_script(plan_against_export(), "policies.yaml"))}

    assert {
        "New-CsOnlineApplicationInstance",
        "Sync-CsOnlineApplicationInstance",
        "New-CsTeamsComplianceRecordingPolicy",
        "Set-CsTeamsComplianceRecordingPolicy",
        "New-CsTeamsComplianceRecordingApplication",
        "Set-CsTeamsComplianceRecordingApplication",
        "New-CsTeamsComplianceRecordingPairedApplication",
        "Grant-CsTeamsComplianceRecordingPolicy",
        "New-CsGroupPolicyAssignment",
        "Set-CsTeamsCallingPolicy",
        "Remove-CsGroupPolicyAssignment",
        "Remove-CsTeamsComplianceRecordingPolicy",
    } <= names


def test_a_group_assignment_is_created_with_its_rank() -> None:
    script = change_script(plan_against_empty_tenant(), "policies.yaml")

    created = [c for c in commands(script) if c.name == "New-CsGroupPolicyAssignment"]

    assert created[0].parameters == ("-GroupId", "-PolicyType", "-PolicyName", "-Rank")


def test_the_export_script_only_reads() -> None:
    script = export_script()

    assert mutating(script) == []
    assert {c.name for c in commands(script) if c.name.startswith("Get-")} >= {
        "Get-CsOnlineApplicationInstance",
        "Get-CsTeamsComplianceRecordingPolicy",
        "Get-CsGroupPolicyAssignment",
        "Get-CsTeamsCallingPolicy",
        "Get-CsOnlineUser",
    }


def test_scripts_carry_no_secrets_and_say_what_they_will_do() -> None:
    script = change_script(plan_against_export(), "policies.yaml")
    header = script.split("#>", 1)[0]

    assert "It will make these changes, in this order:" in header
    assert "+ application instance verbatim-recorder-2@contoso.onmicrosoft.com" in header
    assert "-WhatIf" in header
    for secret_word in ("password", "secret", "ConvertTo-SecureString", "-Credential", "CertificateThumbprint"):
        assert secret_word.lower() not in script.lower()


def test_text_in_quotes_cannot_break_out_of_the_string() -> None:
    tricky = "it's \u2018quoted\u2019 $(Remove-Item C:\\) `n"

    assert quote(tricky) == "'it''s \u2018\u2018quoted\u2019\u2019 $(Remove-Item C:\\) `n'"
    assert syntax_errors(f"$x = {quote(tricky)}\n") == []
    assert [c.name for c in commands(f"$x = {quote(tricky)}\n")] == []


def test_a_description_with_quotes_and_comment_markers_stays_inside_its_literal() -> None:
    text = VALID.replace(
        "description: MiFID II voice recording, fail-closed",
        'description: "Traders\' lines #> Remove-CsTeamsComplianceRecordingPolicy -Identity Global"',
    )
    result = plan(load_desired_state(text, "p.yaml"), CurrentState(TenantState(), "empty"))

    script = change_script(result, "p.yaml")

    assert syntax_errors(script) == []
    removes = [c for c in commands(script) if c.name == "Remove-CsTeamsComplianceRecordingPolicy"]
    assert removes == []
