"""Generated PowerShell and plan text: compared with golden files, parsed with tree-sitter-powershell (no
ERROR nodes), every tenant-changing command behind ShouldProcess (-WhatIf), the export script read-only, and
each fix of issue 15 ("Generated PowerShell") checked against what Microsoft documents."""

from __future__ import annotations

import re

import pytest

from tests.policy import golden
from tests.policy.cmdlet_table import table
from tests.policy.conftest import TRADERS, VALID
from tests.policy.corpus import (
    BANNER,
    PLANS,
    plan_against_empty_tenant,
    plan_against_export,
    plan_with_every_change,
)
from tests.policy.corpus import scripts as corpus_scripts
from tests.policy.ps_tree import Argument, Command, ParameterName, commands, member_reads, mutating, syntax_errors
from verbatim.policy.powershell import change_script, export_script, quote
from verbatim.policy.render import render_plan
from verbatim.policy.service import CurrentState, plan
from verbatim.policy.state import TenantState
from verbatim.policy.validation import load_desired_state

CASES = PLANS


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_change_script_matches_its_golden_file(case: str) -> None:
    golden.check(f"script-{case}.ps1", change_script(CASES[case](), "policies.yaml"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plan_text_matches_its_golden_file(case: str) -> None:
    golden.check(f"plan-{case}.txt", render_plan(CASES[case](), "policies.yaml"))


def test_the_export_script_matches_its_golden_file() -> None:
    golden.check("export.ps1", export_script())


@pytest.mark.parametrize("name", ["export.ps1", *(f"script-{case}.ps1" for case in sorted(CASES))])
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


# --- issue 15, "Generated PowerShell" ---------------------------------------------------------------------


def _steps(script: str) -> dict[str, str]:
    """Each step's code by its title ("~ group assignment (recording policy) <group> (<name>)")."""
    parts = re.split(r"^# --- step \d+: ", script, flags=re.MULTILINE)[1:]
    return dict(tuple(part.split("\n", 1)) for part in parts)  # type: ignore[misc]


def _values(command: Command) -> dict[str, Argument | None]:
    found: dict[str, Argument | None] = {}
    elements = list(command.elements)
    for index, element in enumerate(elements):
        if isinstance(element, ParameterName):
            following = elements[index + 1] if index + 1 < len(elements) else None
            found[element.name] = following if isinstance(following, Argument) else None
    return found


def test_a_changed_group_assignment_is_removed_and_added_again_with_its_rank() -> None:
    """Set-CsGroupPolicyAssignment never shipped: its page (office-docs-powershell
    teams/teams-ps/teams/Set-CsGroupPolicyAssignment.md, deleted in c583d40162, Aug 2025) said "to change a
    group policy assignment you can first remove the current policy assignment from the group and then add a
    new policy assignment"."""
    script = change_script(plan_with_every_change(), "policies.yaml")
    steps = _steps(script)

    changed = [steps[t] for t in steps if t.startswith(("~ group assignment (recording", "~ group assignment (call"))]

    assert "Set-CsGroupPolicyAssignment" not in {c.name for c in commands(script)}
    assert len(changed) == 3
    for step in changed:
        assignments = [c for c in commands(step) if c.name.endswith("-CsGroupPolicyAssignment")]
        assert [c.name for c in assignments] == [
            "Get-CsGroupPolicyAssignment",
            "New-CsGroupPolicyAssignment",  # not there yet: add it
            "Remove-CsGroupPolicyAssignment",  # there but different: remove it and add it again
            "New-CsGroupPolicyAssignment",
        ]
        remove, add = assignments[2:]
        assert remove.guarded and add.guarded
        assert _values(add)["Rank"] is not None and _values(add)["Rank"].kind == "int"  # type: ignore[union-attr]
    traders = steps[f"~ group assignment (recording policy) {TRADERS} (Traders)"]
    assert _values([c for c in commands(traders) if c.name == "New-CsGroupPolicyAssignment"][1])[
        "PolicyName"
    ] == Argument("string", "'Traders-Strict'", "Traders-Strict")


def test_the_export_lists_every_user_in_a_way_microsoftteams_4_accepts() -> None:
    """Get-CsOnlineUser.md: "Starting with Teams PowerShell Modules version 4.0 and later, "-ResultSize" type
    has been changed to uint32" ('Unlimited' no longer binds); Example 1, `Get-CsOnlineUser`, "returns
    information for all the users"."""
    listings = [c for c in commands(export_script()) if c.name == "Get-CsOnlineUser"]

    assert len(listings) == 1
    assert table().problems(listings[0]) == []
    assert "-ResultSize" not in listings[0].parameters  # any number would cap the listing


def test_the_header_says_which_steps_need_a_delegated_sign_in() -> None:
    """learn.microsoft.com/microsoftteams/teams-powershell-application-authentication lists
    Set-CsOnlineApplicationInstance as unsupported with application-based authentication, and
    [Get|New|Sync]-CsOnlineApplicationInstance as unsupported in GCC High and DoD."""
    script = change_script(plan_with_every_change(), "policies.yaml")
    header = script.split("#>", 1)[0]
    numbered = dict(enumerate(_steps(script).values(), start=1))

    every_cloud = [n for n, step in numbered.items() if "Set-CsOnlineApplicationInstance" in step]
    government = [
        n for n, step in numbered.items() if re.search(r"CsOnlineApplicationInstance|VerbatimInstanceId", step)
    ]

    assert "or with app-only certificate authentication" not in header
    assert every_cloud == [1, 2] and len(government) > len(every_cloud)
    flat = " ".join(header.split())
    assert f"Set-CsOnlineApplicationInstance (steps {', '.join(map(str, every_cloud))})" in flat
    assert f"in GCC High and DoD (steps {', '.join(map(str, government))})" in flat
    recorder_only = " ".join(change_script(PLANS["one-recorder"](), "policies.yaml").split("#>", 1)[0].split())
    assert "outside GCC High and DoD: there Microsoft does not support it for Get-, New- and" in recorder_only
    nothing = " ".join(change_script(PLANS["tenant-wide-removal"](), "policies.yaml").split("#>", 1)[0].split())
    assert "CsOnlineApplicationInstance" not in nothing
    assert "Sign in as a Teams Administrator, or with application-based (app-only) authentication." in nothing


def test_a_custom_banner_is_passed_only_with_a_guid() -> None:
    """New-/Set-CsTeamsComplianceRecordingPolicy.md: -CustomBanner <Guid>; $null does not bind to a Guid."""
    script = change_script(plan_with_every_change(), "policies.yaml")
    steps = _steps(script)

    banners = [
        _values(c)["CustomBanner"]
        for c in commands(script)
        if c.name.endswith("-CsTeamsComplianceRecordingPolicy") and "-CustomBanner" in c.parameters
    ]
    cleared = steps["~ recording policy Traders-Strict"]

    assert banners and all(b is not None and b.value == BANNER for b in banners)
    assert "-CustomBanner" not in {p for c in commands(cleared) for p in c.parameters}
    assert "Write-Warning" in {c.name for c in commands(cleared)}
    assert "cannot clear the custom banner of policy Traders-Strict" in " ".join(script.split("#>", 1)[0].split())


def test_read_only_probes_still_read_under_whatif() -> None:
    """Get-CsOnlineApplicationInstance.md lists -WhatIf: a cmdlet that honours it reads $WhatIfPreference, so
    under `./apply.ps1 -WhatIf` a probe without -WhatIf:$false would return nothing and read as "absent"."""
    script = change_script(plan_with_every_change(), "policies.yaml")
    documented = table()

    probes = [c for c in commands(script) if c.name.startswith("Get-Cs")]
    honouring = [c for c in probes if "whatif" in next(iter(documented.pages[c.name.casefold()].values()))]

    assert {c.name for c in honouring} == {"Get-CsOnlineApplicationInstance"}
    assert all(_values(c).get("WhatIf") == Argument("bool", "$false", False, colon=True) for c in honouring)
    # It honours -Confirm too: under `./apply.ps1 -Confirm` every read would otherwise ask first.
    assert all(_values(c).get("Confirm") == Argument("bool", "$false", False, colon=True) for c in honouring)


@pytest.mark.parametrize("case", ["every-change", "export"])
def test_a_script_stops_first_when_the_session_is_not_connected(case: str) -> None:
    """Get-Command only shows the module is loaded; Get-CsTenant fails without Connect-MicrosoftTeams."""
    script = export_script() if case == "export" else change_script(plan_with_every_change(), "policies.yaml")

    teams = [
        c
        for c in commands(script)
        if "-Cs" in c.name and c.name.startswith(("Get-", "New-", "Set-", "Remove-", "Grant-", "Sync-"))
    ]
    first = min(teams, key=lambda c: c.line)

    assert first.name == "Get-CsTenant"
    assert _values(first)["ErrorAction"] == Argument("bareword", "Stop", "Stop")
    assert "Not connected to Microsoft Teams" in script


@pytest.mark.parametrize("name", ["export.ps1", *(f"script-{case}.ps1" for case in sorted(CASES))])
def test_output_properties_are_read_by_name_and_may_be_missing(name: str) -> None:
    """Under Set-StrictMode -Version 3.0 reading a property an object lacks throws. Microsoft documents few
    output properties (OUTPUT_PROPERTIES says which, and where), so every one is read through
    Get-VerbatimProperty, which returns $null for a missing one."""
    script = corpus_scripts()[name]

    direct = [
        f"{n}: .{member}" for n, member in member_reads(script) if member not in ("PSObject", "Properties", "Value")
    ]
    assert direct == []

    from verbatim.policy.powershell import OUTPUT_PROPERTIES

    read = {
        property_name
        for c in commands(script)
        if c.name == "Get-VerbatimProperty"
        for argument in c.elements[1:2]
        if isinstance(argument, Argument)
        for property_name in re.findall(r"'([^']+)'", argument.text)
    }
    assert read and read <= {p.name for p in OUTPUT_PROPERTIES}
