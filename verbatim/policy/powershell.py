"""PowerShell that an admin runs with the MicrosoftTeams module: the change script for a plan, and a
read-only script that exports the current configuration as JSON for `verbatim policy plan --target export`.

Generated scripts carry no secrets (the admin connects first with Connect-MicrosoftTeams), say in their
header what they will do, support `-WhatIf` (every change is behind `$PSCmdlet.ShouldProcess`), and are
idempotent: each step reads the current value first and only acts when it differs, so running a script
twice, or after it stopped half way, is safe. Output is deterministic (no dates), so it can be reviewed
and compared with golden files.

Every cmdlet and parameter they use is on Microsoft's cmdlet reference (checked by
`tests/policy/test_cmdlet_table.py` against a table built from it); the output properties they read are
listed in `OUTPUT_PROPERTIES` with what documents them, and read by name, so a missing one reads as $null
instead of stopping the script under Set-StrictMode.

Over 500 lines on purpose: most of it is the PowerShell text itself, and the change script and the
export script share its quoting and step helpers, which are safer kept beside the text they produce.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

from verbatim.contracts.policy import ParameterValue, PlanChange, PolicyPlan
from verbatim.policy.render import change_lines, summary


@dataclass(frozen=True)
class OutputProperty:
    cmdlet: str
    name: str
    documented_by: str | None  # where Microsoft shows it; None: assumed from the parameter of that name


_DOCS = "MicrosoftDocs/office-docs-powershell teams/teams-ps/MicrosoftTeams/"
OUTPUT_PROPERTIES = (
    OutputProperty(
        "Get-CsOnlineApplicationInstance",
        "ObjectId",
        _DOCS + "New-CsCallingLineIdentity.md: (Get-CsOnlineApplicationInstance -Identity ...).ObjectId",
    ),
    OutputProperty("Get-CsOnlineApplicationInstance", "UserPrincipalName", None),
    OutputProperty("Get-CsOnlineApplicationInstance", "DisplayName", None),
    OutputProperty("Get-CsOnlineApplicationInstance", "ApplicationId", None),
    OutputProperty(
        "Get-CsTenant",
        "TenantId",
        _DOCS + "Grant-CsTeamsComplianceRecordingPolicy.md: Get-CsTenant | Select-Object DisplayName, TenantID",
    ),
    OutputProperty(
        "Get-CsOnlineUser",
        "Identity",
        _DOCS + "Get-CsOnlineUser.md: Identity, UserPrincipalName, ... will always be present in the output",
    ),
    OutputProperty(
        "Get-CsOnlineUser",
        "UserPrincipalName",
        _DOCS + "Get-CsOnlineUser.md: Identity, UserPrincipalName, ... will always be present in the output",
    ),
    OutputProperty(
        "Get-CsOnlineUser",
        "TeamsComplianceRecordingPolicy",
        "microsoftgraph/microsoft-graph-comms-samples PolicyRecordingBot/README.md: "
        "Get-CsOnlineUser <user> | ft sipaddress, tenantid, TeamsComplianceRecordingPolicy",
    ),
    OutputProperty("Get-CsOnlineUser", "UsageLocation", None),
    OutputProperty(
        "Get-CsTeamsComplianceRecordingPolicy",
        "Identity",
        _DOCS + "Get-CsTeamsComplianceRecordingPolicy.md, example 3: policies that have an Identity that begins "
        'with "Tag:"',
    ),
    *(
        OutputProperty("Get-CsTeamsComplianceRecordingPolicy", name, None)
        for name in (
            "Enabled",
            "Description",
            "DisableComplianceRecordingAudioNotificationForCalls",
            "RecordReroutedCalls",
            "CustomBanner",
            "ComplianceRecordingApplications",
        )
    ),
    OutputProperty(
        "Get-CsTeamsComplianceRecordingApplication",
        "Identity",
        _DOCS + "Get-CsTeamsComplianceRecordingApplication.md: the Identity of these application instances "
        "becomes <Identity of the associated Teams recording policy>/<ObjectId of the application instance>",
    ),
    *(
        OutputProperty("Get-CsTeamsComplianceRecordingApplication", name, None)
        for name in (
            "Id",
            "RequiredBeforeCallEstablishment",
            "RequiredBeforeMeetingJoin",
            "RequiredDuringCall",
            "RequiredDuringMeeting",
            "ConcurrentInvitationCount",
            "ComplianceRecordingPairedApplications",
            "Priority",
        )
    ),
    OutputProperty(
        "Get-CsGroupPolicyAssignment",
        "GroupId",
        _DOCS + "Get-CsGroupPolicyAssignment.md, examples: columns GroupId PolicyType PolicyName Rank",
    ),
    OutputProperty(
        "Get-CsGroupPolicyAssignment",
        "PolicyName",
        _DOCS + "Get-CsGroupPolicyAssignment.md, examples: columns GroupId PolicyType PolicyName Rank",
    ),
    OutputProperty(
        "Get-CsGroupPolicyAssignment",
        "Rank",
        _DOCS + "Get-CsGroupPolicyAssignment.md, examples: columns GroupId PolicyType PolicyName Rank",
    ),
    # The 2019 revision of the same page showed the column as Priority; read when Rank is missing.
    OutputProperty("Get-CsGroupPolicyAssignment", "Priority", None),
    OutputProperty(
        "Get-CsTeamsCallingPolicy",
        "Identity",
        _DOCS + "Get-CsTeamsCallingPolicy.md, example 2: calling policies with Identity starting with Sales",
    ),
    OutputProperty("Get-CsTeamsCallingPolicy", "AllowCloudRecordingForCalls", None),
)

# learn.microsoft.com/microsoftteams/teams-powershell-application-authentication ("Cmdlets Supported"): with
# application-based authentication Set-CsOnlineApplicationInstance is not supported, and
# [Get|New|Sync]-CsOnlineApplicationInstance are not supported in GCC High and DoD.
APP_ONLY_UNSUPPORTED = ("Set-CsOnlineApplicationInstance",)
APP_ONLY_UNSUPPORTED_IN_GOVERNMENT_CLOUDS = (
    "Get-CsOnlineApplicationInstance",
    "New-CsOnlineApplicationInstance",
    "Sync-CsOnlineApplicationInstance",
    "Get-VerbatimInstanceId",  # calls Get-CsOnlineApplicationInstance
)

PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell treats all of these as single quotes


def quote(text: str) -> str:
    """A single-quoted PowerShell string literal: no expansion, quotes doubled."""
    return "'" + "".join(ch * 2 if ch in _QUOTES else ch for ch in text) + "'"


def literal(value: ParameterValue) -> str:
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    return quote(value)


def policy_identity(name: str) -> str:
    """Per-user (tag) policies are addressed as `Tag:<name>`; the built-in one is just `Global`."""
    return name if name.casefold() == "global" else f"Tag:{name}"


def _comment_block(lines: list[str]) -> list[str]:
    """`<# ... #>` around `lines`; a "#>" inside would end the block early, so it is defused."""
    return ["<#", *(line.replace("#>", "# >") for line in lines), "#>"]


# --- what both scripts start with ------------------------------------------------------------------------

_CONNECTED = """\
if (-not (Get-Command -Name Get-CsTeamsComplianceRecordingPolicy -ErrorAction SilentlyContinue)) {
    throw 'The MicrosoftTeams module is not loaded: run Import-Module MicrosoftTeams; Connect-MicrosoftTeams'
}
try {
    # Fails without a session, so that "not connected" is never read as "not there" by a later step.
    $null = Get-CsTenant -ErrorAction Stop
} catch {
    throw "Not connected to Microsoft Teams (Get-CsTenant failed: $_): run Connect-MicrosoftTeams first"
}

function Get-VerbatimProperty {
    # Microsoft documents few output properties of these cmdlets, and under Set-StrictMode reading one an
    # object lacks throws: each is read by name, the first present of $Name wins, a missing one is $null.
    param($InputObject, [Parameter(Mandatory = $true)] [string[]] $Name)
    if ($null -eq $InputObject) {
        return $null
    }
    foreach ($candidate in $Name) {
        $property = $InputObject.PSObject.Properties[$candidate]
        if ($null -ne $property) {
            return $property.Value
        }
    }
    return $null
}

function ConvertTo-VerbatimPolicyName {
    param([string] $Identity)
    if ($Identity.StartsWith('Tag:')) {
        return $Identity.Substring(4)
    }
    return $Identity
}
"""

# --- the change script ------------------------------------------------------------------------------------

_PROLOGUE = (
    """\
[CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
param()

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

"""
    + _CONNECTED
    + """
function Get-VerbatimInstanceId {
    param([Parameter(Mandatory = $true)] [string] $UserPrincipalName)
    # The cmdlet honours -WhatIf and -Confirm: without these it would read nothing under -WhatIf, and ask
    # before reading under -Confirm.
    $instance = Get-CsOnlineApplicationInstance -Identity $UserPrincipalName -WhatIf:$false -Confirm:$false `
        -ErrorAction SilentlyContinue
    if ($instance) {
        return [string] (Get-VerbatimProperty $instance 'ObjectId')
    }
    if ($WhatIfPreference) {
        # Under -WhatIf the instance was not created by an earlier step; later steps only report.
        return '00000000-0000-0000-0000-000000000000'
    }
    throw "Application instance $UserPrincipalName does not exist"
}

function Get-VerbatimDirectPolicy {
    param([Parameter(Mandatory = $true)] [string] $Identity)
    $user = Get-CsOnlineUser -Identity $Identity
    return ConvertTo-VerbatimPolicyName ([string] (Get-VerbatimProperty $user 'TeamsComplianceRecordingPolicy'))
}
"""
)


def change_script(plan: PolicyPlan, source_name: str) -> str:
    """An idempotent script that makes the changes of `plan`, ending with a newline."""
    steps = [_step(change) for change in plan.changes]
    header = [
        ".SYNOPSIS",
        "    Verbatim: apply compliance recording policy changes (generated; review, do not edit).",
        ".DESCRIPTION",
        f"    Generated by `verbatim policy script` from {source_name}",
        f"    (desired state sha256 {plan.desired_sha256}),",
        f"    compared with {plan.target}.",
        "",
        "    It will make these changes, in this order:",
        "",
    ]
    for change in plan.changes:
        header += ["      " + line for line in change_lines(change)]
    if not plan.changes:
        header.append("      nothing: the tenant already matches the desired state.")
    header += [
        "",
        f"    {summary(plan)}",
    ]
    warnings = [f for f in plan.findings if f.severity == "warning"]
    if warnings:
        header += ["", "    Review these findings first:"] + [f"      ! {f.message}" for f in warnings]
    notes = list(_notes(plan.changes))
    if notes:
        header += ["", "    What this script cannot do as planned:", *notes]
    header += [
        "",
        "    Every step reads the current value first and acts only when it differs, so the script can be run",
        "    again safely. Run it with -WhatIf to see what it would change without changing anything.",
        "    Removals come last, after the replacements are in place. Policy changes reach new calls and",
        "    meetings only; group assignments can take hours to reach every member.",
        "    The script contains no credentials: connect first with Connect-MicrosoftTeams.",
        *_sign_in(steps),
        ".NOTES",
        "    Requires the MicrosoftTeams PowerShell module.",
    ]
    body: list[str] = []
    for number, (change, step) in enumerate(zip(plan.changes, steps, strict=True), start=1):
        body += ["", f"# --- step {number}: {change_lines(change)[0]}", *step]
    footer = ["", "Write-Host 'Verbatim: all steps done.'"]
    return "\n".join([*_comment_block(header), _PROLOGUE.rstrip("\n"), *body, *footer]) + "\n"


def _sign_in(steps: list[list[str]]) -> list[str]:
    """Who can run the script: which steps application-based (app-only) authentication cannot run, by
    Microsoft's list."""

    def using(cmdlets: tuple[str, ...]) -> str:
        return _numbers(
            [n for n, step in enumerate(steps, start=1) if any(c in line for line in step for c in cmdlets)]
        )

    everywhere = using(APP_ONLY_UNSUPPORTED)
    government = using(APP_ONLY_UNSUPPORTED + APP_ONLY_UNSUPPORTED_IN_GOVERNMENT_CLOUDS)
    source = "(learn.microsoft.com/microsoftteams/teams-powershell-application-authentication)."
    if everywhere:
        text = (
            "Sign in as a Teams Administrator (delegated): Microsoft does not support application-based "
            f"(app-only) authentication for Set-CsOnlineApplicationInstance (steps {everywhere}), nor for Get-, "
            f"New- and Sync-CsOnlineApplicationInstance in GCC High and DoD (steps {government}) {source}"
        )
    elif government:
        text = (
            "Sign in as a Teams Administrator, or with application-based (app-only) authentication outside GCC "
            "High and DoD: there Microsoft does not support it for Get-, New- and Sync-CsOnlineApplicationInstance "
            f"(steps {government}) {source}"
        )
    else:
        text = "Sign in as a Teams Administrator, or with application-based (app-only) authentication."
    return textwrap.wrap(text, width=104, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False)


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _notes(changes: list[PlanChange]) -> Iterator[str]:
    """What Microsoft's cmdlets cannot do the way the plan says, one note per affected step."""
    for number, change in enumerate(changes, start=1):
        if change.kind == "recording-policy" and _clears_banner(change):
            yield f"      ! step {number} cannot clear the custom banner of policy {change.subject}: -CustomBanner"
            yield "        takes a Guid, and Microsoft documents no way to remove one; the banner stays."
        if change.kind in ("group-assignment", "calling-group-assignment") and change.action == "change":
            yield f"      ! step {number} removes the assignment of group {change.subject} and adds it again: there is"
            yield "        no Set-CsGroupPolicyAssignment. Until the new assignment has propagated (Microsoft: 24 hours"
            yield "        or more for large groups) members get their next assignment's policy, or none."


def _clears_banner(change: PlanChange) -> bool:
    return (
        change.action == "change" and "customBanner" in change.changed and not (change.after or {}).get("customBanner")
    )


def _step(change: PlanChange) -> list[str]:
    kind = change.kind
    if kind == "application-instance":
        return list(_instance_step(change))
    if kind == "recording-policy":
        return list(_policy_step(change))
    if kind == "recorder-application":
        return list(_recorder_step(change))
    if kind == "calling-policy":
        return list(_calling_policy_step(change))
    if kind == "global-assignment":
        return list(_global_step(change))
    if kind in ("group-assignment", "calling-group-assignment"):
        return list(_group_step(change))
    return list(_user_step(change))


def _guarded(target: str, action: str, command: list[str], indent: str = "") -> Iterator[str]:
    yield f"{indent}if ($PSCmdlet.ShouldProcess({quote(target)}, {quote(action)})) {{"
    for line in command:
        yield f"{indent}    {line}"
    yield f"{indent}}}"


def _read(variable: str, *names: str) -> str:
    """A property of a cmdlet's output, read by name (see Get-VerbatimProperty)."""
    return f"(Get-VerbatimProperty {variable} {', '.join(quote(n) for n in names)})"


def _instance_step(change: PlanChange) -> Iterator[str]:
    upn = change.subject
    after = change.after or {}
    display, app_id = str(after["displayName"]), str(after["applicationId"])
    # Get-CsOnlineApplicationInstance honours -WhatIf and -Confirm: without these it would read nothing under
    # -WhatIf, and ask before reading under -Confirm.
    yield (
        f"$instance = Get-CsOnlineApplicationInstance -Identity {quote(upn)} -WhatIf:$false -Confirm:$false "
        "-ErrorAction SilentlyContinue"
    )
    yield "if (-not $instance) {"
    yield from _guarded(
        upn,
        "New-CsOnlineApplicationInstance",
        [
            f"$null = New-CsOnlineApplicationInstance -UserPrincipalName {quote(upn)} "
            f"-DisplayName {quote(display)} -ApplicationId {quote(app_id)}"
        ],
        "    ",
    )
    yield "} else {"
    yield f"    if ([string] {_read('$instance', 'DisplayName')} -ne {quote(display)}) {{"
    yield from _guarded(
        upn,
        "Set-CsOnlineApplicationInstance -DisplayName",
        [f"$null = Set-CsOnlineApplicationInstance -Identity {quote(upn)} -DisplayName {quote(display)}"],
        "        ",
    )
    yield "    }"
    yield f"    if ([string] {_read('$instance', 'ApplicationId')} -ne {quote(app_id)}) {{"
    yield f"        $objectId = [string] {_read('$instance', 'ObjectId')}"
    yield from _guarded(
        upn,
        "Sync-CsOnlineApplicationInstance -ApplicationId",
        [
            "# A mapping changes by clearing it first (else: 'An item with the same key has already been added').",
            f"Sync-CsOnlineApplicationInstance -ObjectId $objectId -ApplicationId {quote(PLACEHOLDER_ID)}",
            f"Sync-CsOnlineApplicationInstance -ObjectId $objectId -ApplicationId {quote(app_id)}",
        ],
        "        ",
    )
    yield "    }"
    yield "}"


# (desired-state name, parameter name, whether $null binds: not to value types such as Guid)
_POLICY_PARAMETERS = (
    ("enabled", "Enabled", False),
    ("description", "Description", True),
    (
        "disableComplianceRecordingAudioNotificationForCalls",
        "DisableComplianceRecordingAudioNotificationForCalls",
        False,
    ),
    ("recordReroutedCalls", "RecordReroutedCalls", False),
    ("customBanner", "CustomBanner", False),
)


def _arguments(values: dict[str, ParameterValue], names: tuple[tuple[str, str, bool], ...], *, skip_none: bool) -> str:
    return " ".join(
        f"-{ps} {literal(values.get(name))}"
        for name, ps, nullable in names
        if values.get(name) is not None or (nullable and not skip_none)
    )


def _policy_step(change: PlanChange) -> Iterator[str]:
    name = change.subject
    identity = policy_identity(name)
    if change.action == "remove":
        yield f"if (Get-CsTeamsComplianceRecordingPolicy -Identity {quote(identity)} -ErrorAction SilentlyContinue) {{"
        yield from _guarded(
            identity,
            "Remove-CsTeamsComplianceRecordingPolicy",
            [f"Remove-CsTeamsComplianceRecordingPolicy -Identity {quote(identity)}"],
            "    ",
        )
        yield "}"
        return
    after = change.after or {}
    new_args = _arguments(after, _POLICY_PARAMETERS, skip_none=True)
    set_args = _arguments(after, _POLICY_PARAMETERS, skip_none=False)
    # A banner is compared only when the file sets one: -CustomBanner cannot clear one.
    compared = tuple(p for p in _POLICY_PARAMETERS if p[0] != "customBanner" or after.get("customBanner"))
    yield f"$policy = Get-CsTeamsComplianceRecordingPolicy -Identity {quote(identity)} -ErrorAction SilentlyContinue"
    yield "if (-not $policy) {"
    yield from _guarded(
        identity,
        "New-CsTeamsComplianceRecordingPolicy",
        [f"$null = New-CsTeamsComplianceRecordingPolicy -Identity {quote(name)} {new_args}"],
        "    ",
    )
    yield f"}} elseif ({_differs('$policy', after, compared)}) {{"
    yield from _guarded(
        identity,
        "Set-CsTeamsComplianceRecordingPolicy",
        [f"Set-CsTeamsComplianceRecordingPolicy -Identity {quote(identity)} {set_args}"],
        "    ",
    )
    yield "}"
    if _clears_banner(change):
        yield f"if ($policy -and [string] {_read('$policy', 'CustomBanner')}) {{"
        yield (
            f"    Write-Warning {quote(f'Verbatim: policy {name} keeps its custom banner: -CustomBanner takes a Guid')}"
        )
        yield "}"


def _differs(variable: str, values: dict[str, ParameterValue], names: tuple[tuple[str, str, bool], ...]) -> str:
    """A condition that is true when any property of `variable` differs from its declared value."""
    tests = []
    for name, ps, _nullable in names:
        value = values.get(name)
        read = _read(variable, ps)
        if isinstance(value, bool):
            tests.append(f"[bool] {read} -ne {literal(value)}")
        elif isinstance(value, int):
            tests.append(f"[int] {read} -ne {value}")
        else:  # text, GUIDs and unset values compare as strings ([string] $null is '')
            tests.append(f"[string] {read} -ne {quote(value) if value is not None else chr(39) * 2}")
    return " -or\n        ".join(tests)


_RECORDER_PARAMETERS = (
    ("requiredBeforeCallEstablishment", "RequiredBeforeCallEstablishment", False),
    ("requiredBeforeMeetingJoin", "RequiredBeforeMeetingJoin", False),
    ("requiredDuringCall", "RequiredDuringCall", False),
    ("requiredDuringMeeting", "RequiredDuringMeeting", False),
    ("concurrentInvitationCount", "ConcurrentInvitationCount", False),
)


def _recorder_step(change: PlanChange) -> Iterator[str]:
    policy = str(change.policy)
    parent = policy_identity(policy)
    yield f"$instanceId = Get-VerbatimInstanceId -UserPrincipalName {quote(change.subject)}"
    yield f'$identity = "{parent}/$instanceId"'
    if change.action == "remove":
        yield "if (Get-CsTeamsComplianceRecordingApplication -Identity $identity -ErrorAction SilentlyContinue) {"
        yield "    if ($PSCmdlet.ShouldProcess($identity, 'Remove-CsTeamsComplianceRecordingApplication')) {"
        yield "        Remove-CsTeamsComplianceRecordingApplication -Identity $identity"
        yield "    }"
        yield "}"
        return
    after = change.after or {}
    arguments = _arguments(after, _RECORDER_PARAMETERS, skip_none=False)
    if after.get("priority") is not None:
        arguments += f" -Priority {literal(after['priority'])}"
    paired = after.get("pairedWith")
    if paired is not None:
        yield f"$pairedId = Get-VerbatimInstanceId -UserPrincipalName {quote(str(paired))}"
        pairing = (
            "-ComplianceRecordingPairedApplications @(New-CsTeamsComplianceRecordingPairedApplication -Id $pairedId)"
        )
    else:
        pairing = "-ComplianceRecordingPairedApplications $null"
    yield "$application = Get-CsTeamsComplianceRecordingApplication -Identity $identity -ErrorAction SilentlyContinue"
    yield "if (-not $application) {"
    yield "    if ($PSCmdlet.ShouldProcess($identity, 'New-CsTeamsComplianceRecordingApplication')) {"
    new_pairing = f" {pairing}" if paired is not None else ""
    yield (
        f"        $null = New-CsTeamsComplianceRecordingApplication -Parent {quote(parent)} -Id $instanceId "
        f"{arguments}{new_pairing}"
    )
    yield "    }"
    current_pairing = (
        f"(@({_read('$application', 'ComplianceRecordingPairedApplications')} | Where-Object {{ $_ }} | "
        f"ForEach-Object {{ [string] {_read('$_', 'Id')} }}) -join ',')"
    )
    wanted_pairing = "$pairedId" if paired is not None else "''"
    checks = _differs("$application", after, _RECORDER_PARAMETERS)
    if after.get("priority") is not None:
        checks += f" -or\n        [int] {_read('$application', 'Priority')} -ne {literal(after['priority'])}"
    yield f"}} elseif ({checks} -or\n        {current_pairing} -ne {wanted_pairing}) {{"
    yield "    if ($PSCmdlet.ShouldProcess($identity, 'Set-CsTeamsComplianceRecordingApplication')) {"
    yield f"        Set-CsTeamsComplianceRecordingApplication -Identity $identity {arguments} {pairing}"
    yield "    }"
    yield "}"


def _calling_policy_step(change: PlanChange) -> Iterator[str]:
    name = change.subject
    identity = policy_identity(name)
    allow = literal((change.after or {}).get("allowCloudRecordingForCalls"))
    yield f"$calling = Get-CsTeamsCallingPolicy -Identity {quote(identity)} -ErrorAction SilentlyContinue"
    yield "if (-not $calling) {"
    yield from _guarded(
        identity,
        "New-CsTeamsCallingPolicy",
        [f"$null = New-CsTeamsCallingPolicy -Identity {quote(name)} -AllowCloudRecordingForCalls {allow}"],
        "    ",
    )
    yield f"}} elseif ([bool] {_read('$calling', 'AllowCloudRecordingForCalls')} -ne {allow}) {{"
    yield from _guarded(
        identity,
        "Set-CsTeamsCallingPolicy -AllowCloudRecordingForCalls",
        [f"Set-CsTeamsCallingPolicy -Identity {quote(identity)} -AllowCloudRecordingForCalls {allow}"],
        "    ",
    )
    yield "}"


def _global_step(change: PlanChange) -> Iterator[str]:
    policy = (change.after or {}).get("policy")
    # Granting is idempotent: repeating it with the same policy changes nothing.
    yield from _guarded(
        "tenant",
        "Grant-CsTeamsComplianceRecordingPolicy -Global",
        [f"Grant-CsTeamsComplianceRecordingPolicy -Global -PolicyName {literal(policy)}"],
    )


def _group_step(change: PlanChange) -> Iterator[str]:
    policy_type = (
        "TeamsCallingPolicy" if change.kind == "calling-group-assignment" else "TeamsComplianceRecordingPolicy"
    )
    group = change.subject
    yield (
        f"$assignment = Get-CsGroupPolicyAssignment -GroupId {quote(group)} -PolicyType {policy_type} "
        "-ErrorAction SilentlyContinue"
    )
    remove = f"Remove-CsGroupPolicyAssignment -GroupId {quote(group)} -PolicyType {policy_type}"
    if change.action == "remove":
        yield "if ($assignment) {"
        yield from _guarded(group, f"Remove-CsGroupPolicyAssignment -PolicyType {policy_type}", [remove], "    ")
        yield "}"
        return
    after = change.after or {}
    policy, rank = quote(str(after["policy"])), literal(after["rank"])
    add = (
        f"New-CsGroupPolicyAssignment -GroupId {quote(group)} -PolicyType {policy_type} -PolicyName {policy} "
        f"-Rank {rank}"
    )
    current_policy = f"(ConvertTo-VerbatimPolicyName ([string] {_read('$assignment', 'PolicyName')}))"
    # Microsoft's pages show the rank as Rank; the page's first revision showed Priority.
    current_rank = f"[int] {_read('$assignment', 'Rank', 'Priority')}"
    yield "if (-not $assignment) {"
    yield from _guarded(group, f"New-CsGroupPolicyAssignment -PolicyType {policy_type}", [add], "    ")
    yield f"}} elseif ({current_policy} -ne {policy} -or {current_rank} -ne {rank}) {{"
    yield (
        "    # There is no Set-CsGroupPolicyAssignment; Microsoft's way to change an assignment is to remove it "
        "and add it again."
    )
    yield from _guarded(
        group,
        f"Remove-CsGroupPolicyAssignment and New-CsGroupPolicyAssignment -PolicyType {policy_type}",
        [remove, add],
        "    ",
    )
    yield "}"


def _user_step(change: PlanChange) -> Iterator[str]:
    user = change.subject
    policy = (change.after or {}).get("policy") if change.action != "remove" else None
    wanted = quote(str(policy)) if policy is not None else "''"
    yield f"if ((Get-VerbatimDirectPolicy -Identity {quote(user)}) -ne {wanted}) {{"
    yield from _guarded(
        user,
        "Grant-CsTeamsComplianceRecordingPolicy",
        [f"Grant-CsTeamsComplianceRecordingPolicy -Identity {quote(user)} -PolicyName {literal(policy)}"],
        "    ",
    )
    yield "}"


# --- the read-only export script -------------------------------------------------------------------------

EXPORT_SCRIPT = (
    """\
<#
.SYNOPSIS
    Verbatim: export the current compliance recording configuration as JSON (read-only).
.DESCRIPTION
    Generated by `verbatim policy export-script`. It only reads (Get-* cmdlets) and writes one JSON
    file, the input of `verbatim policy plan FILE --target export EXPORT.json`:
      - application instances (Get-CsOnlineApplicationInstance)
      - compliance recording policies with their recorder applications and pairings
        (Get-CsTeamsComplianceRecordingPolicy)
      - group assignments of recording and calling policies (Get-CsGroupPolicyAssignment)
      - calling policies with AllowCloudRecordingForCalls (Get-CsTeamsCallingPolicy)
      - users with a direct recording policy, with their usage location (Get-CsOnlineUser)
    It contains no credentials: connect first with Connect-MicrosoftTeams (a Teams Reader or Global
    Reader role is enough). Application-based (app-only) authentication can run it, except in GCC High
    and DoD, where Microsoft does not support Get-CsOnlineApplicationInstance with it
    (learn.microsoft.com/microsoftteams/teams-powershell-application-authentication).
.PARAMETER OutFile
    Where to write the JSON export.
.NOTES
    Requires the MicrosoftTeams PowerShell module. Listing every user to find direct assignments takes
    a while in large tenants. Properties Microsoft does not document are read by name; one a module
    version lacks is exported as empty.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $OutFile
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

"""
    + _CONNECTED
    + """
$instances = @(Get-CsOnlineApplicationInstance | ForEach-Object {
    [ordered] @{
        objectId          = [string] (Get-VerbatimProperty $_ 'ObjectId')
        userPrincipalName = [string] (Get-VerbatimProperty $_ 'UserPrincipalName')
        displayName       = [string] (Get-VerbatimProperty $_ 'DisplayName')
        applicationId     = [string] (Get-VerbatimProperty $_ 'ApplicationId')
    }
})

function ConvertTo-VerbatimRecorder {
    param($Application)
    $priority = Get-VerbatimProperty $Application 'Priority'
    $paired = @(@(Get-VerbatimProperty $Application 'ComplianceRecordingPairedApplications') | Where-Object { $_ } |
        ForEach-Object { [string] (Get-VerbatimProperty $_ 'Id') })
    # The instance's object id: Id, or the end of the documented Identity "<policy identity>/<ObjectId>".
    $instanceId = [string] (Get-VerbatimProperty $Application 'Id')
    if (-not $instanceId) {
        $instanceId = ([string] (Get-VerbatimProperty $Application 'Identity')).Split('/')[-1]
    }
    [ordered] @{
        instanceObjectId                = $instanceId
        requiredBeforeCallEstablishment = [bool] (Get-VerbatimProperty $Application 'RequiredBeforeCallEstablishment')
        requiredBeforeMeetingJoin       = [bool] (Get-VerbatimProperty $Application 'RequiredBeforeMeetingJoin')
        requiredDuringCall              = [bool] (Get-VerbatimProperty $Application 'RequiredDuringCall')
        requiredDuringMeeting           = [bool] (Get-VerbatimProperty $Application 'RequiredDuringMeeting')
        concurrentInvitationCount       = [int] (Get-VerbatimProperty $Application 'ConcurrentInvitationCount')
        pairedInstanceObjectIds         = $paired
        priority                        = if ($null -ne $priority) { [int] $priority } else { $null }
    }
}

$recordingPolicies = @(Get-CsTeamsComplianceRecordingPolicy | ForEach-Object {
    $policy = $_
    $recorders = @(@(Get-VerbatimProperty $policy 'ComplianceRecordingApplications') | Where-Object { $_ } |
        ForEach-Object { ConvertTo-VerbatimRecorder $_ })
    $banner = [string] (Get-VerbatimProperty $policy 'CustomBanner')
    [ordered] @{
        name                = ConvertTo-VerbatimPolicyName ([string] (Get-VerbatimProperty $policy 'Identity'))
        enabled             = [bool] (Get-VerbatimProperty $policy 'Enabled')
        description         = [string] (Get-VerbatimProperty $policy 'Description')
        recordReroutedCalls = [bool] (Get-VerbatimProperty $policy 'RecordReroutedCalls')
        customBanner        = if ($banner) { $banner } else { $null }
        recorders           = $recorders
        disableComplianceRecordingAudioNotificationForCalls = [bool] (
            Get-VerbatimProperty $policy 'DisableComplianceRecordingAudioNotificationForCalls'
        )
    }
})

function Get-VerbatimGroupAssignments {
    param([string] $PolicyType)
    @(Get-CsGroupPolicyAssignment -PolicyType $PolicyType | ForEach-Object {
        [ordered] @{
            groupId = [string] (Get-VerbatimProperty $_ 'GroupId')
            policy  = ConvertTo-VerbatimPolicyName ([string] (Get-VerbatimProperty $_ 'PolicyName'))
            # Microsoft's pages show the rank as Rank; the page's first revision showed Priority.
            rank    = [int] (Get-VerbatimProperty $_ 'Rank', 'Priority')
        }
    })
}

$callingPolicies = @(Get-CsTeamsCallingPolicy | ForEach-Object {
    [ordered] @{
        name                        = ConvertTo-VerbatimPolicyName ([string] (Get-VerbatimProperty $_ 'Identity'))
        allowCloudRecordingForCalls = [bool] (Get-VerbatimProperty $_ 'AllowCloudRecordingForCalls')
    }
})

# No -ResultSize: without it Get-CsOnlineUser returns every user (its page, example 1), and since
# MicrosoftTeams 4.0 the parameter is a uint32 that no longer takes 'Unlimited'.
$direct = Get-CsOnlineUser | Where-Object { Get-VerbatimProperty $_ 'TeamsComplianceRecordingPolicy' }
$users = @($direct | ForEach-Object {
    [ordered] @{
        id                = [string] (Get-VerbatimProperty $_ 'Identity')
        userPrincipalName = [string] (Get-VerbatimProperty $_ 'UserPrincipalName')
        usageLocation     = [string] (Get-VerbatimProperty $_ 'UsageLocation')
        recordingPolicy   = ConvertTo-VerbatimPolicyName (
            [string] (Get-VerbatimProperty $_ 'TeamsComplianceRecordingPolicy')
        )
    }
})

$export = [ordered] @{
    schemaVersion             = 1
    exportedAt                = (Get-Date).ToUniversalTime().ToString('o')
    tenantId                  = [string] (Get-VerbatimProperty (Get-CsTenant) 'TenantId')
    applicationInstances      = $instances
    recordingPolicies         = $recordingPolicies
    groupAssignments          = Get-VerbatimGroupAssignments -PolicyType 'TeamsComplianceRecordingPolicy'
    callingPolicies           = $callingPolicies
    callingGroupAssignments   = Get-VerbatimGroupAssignments -PolicyType 'TeamsCallingPolicy'
    users                     = $users
}

$export | ConvertTo-Json -Depth 10 | Set-Content -Path $OutFile -Encoding utf8
Write-Host "Verbatim: exported the compliance recording configuration to $OutFile"
"""
)


def export_script() -> str:
    return EXPORT_SCRIPT
