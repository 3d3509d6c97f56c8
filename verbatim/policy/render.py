"""The plan as text a reviewer reads: one block per object, `+` add, `~` change, `-` remove, with values."""

from __future__ import annotations

import json

from verbatim.contracts.policy import ChangeKind, ParameterValue, PlanChange, PolicyPlan

KIND_TITLES: dict[ChangeKind, str] = {
    "application-instance": "application instance",
    "recording-policy": "recording policy",
    "recorder-application": "recorder application",
    "calling-policy": "calling policy",
    "global-assignment": "tenant-wide recording policy",
    "group-assignment": "group assignment (recording policy)",
    "user-assignment": "user assignment (recording policy)",
    "calling-group-assignment": "group assignment (calling policy)",
}
SIGNS = {"add": "+", "change": "~", "remove": "-"}


def value_text(value: ParameterValue) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def title(change: PlanChange) -> str:
    subject = change.subject
    if change.kind == "recorder-application":
        subject = f"{change.subject} in {change.policy}"
    if change.label:
        subject = f"{subject} ({change.label})"
    return f"{SIGNS[change.action]} {KIND_TITLES[change.kind]} {subject}"


def change_lines(change: PlanChange) -> list[str]:
    lines = [title(change)]
    if change.action == "add":
        values = change.after or {}
        names = [n for n in values if values[n] is not None] or list(values)
        width = max((len(n) for n in names), default=0)
        lines += [f"    {name.ljust(width)}  {value_text(values[name])}" for name in names]
    elif change.action == "change":
        before, after = change.before or {}, change.after or {}
        width = max((len(n) for n in change.changed), default=0)
        lines += [
            f"    {name.ljust(width)}  {value_text(before.get(name))} -> {value_text(after.get(name))}"
            for name in change.changed
        ]
    else:
        values = change.before or {}
        names = [n for n in values if values[n] is not None]
        width = max((len(n) for n in names), default=0)
        lines += [f"    {name.ljust(width)}  {value_text(values[name])}" for name in names]
    return lines


def summary(plan: PolicyPlan) -> str:
    if not plan.has_changes:
        return "No changes: the tenant matches the desired state."
    return f"Plan: {plan.count('add')} to add, {plan.count('change')} to change, {plan.count('remove')} to remove."


def render_plan(plan: PolicyPlan, source_name: str) -> str:
    """The whole plan as text, ending with a newline."""
    lines = [f"Desired state: {source_name} (sha256 {plan.desired_sha256[:12]})", f"Compared with: {plan.target}", ""]
    for change in plan.changes:
        lines += [*change_lines(change), ""]
    if plan.findings:
        lines.append("Findings:")
        lines += [
            f"  ! {finding.message}" if finding.severity == "warning" else f"  i {finding.message}"
            for finding in plan.findings
        ]
        lines.append("")
    lines.append(summary(plan))
    return "\n".join(lines) + "\n"
