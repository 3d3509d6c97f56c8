"""Validating a desired-state file: YAML, then the JSON Schema, then the rules that span fields (references,
duplicates, group ranks, resilience, jurisdictions). Every finding names the exact field, its line and
column when the file is YAML, and what is allowed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import ValidationError

from verbatim.platform.errors import InvalidInput
from verbatim.policy import model as m
from verbatim.policy.schema import desired_state_schema
from verbatim.policy.source import (
    Path,
    Position,
    SourceDocument,
    SourceError,
    SourceLimitExceeded,
    check_data,
    format_path,
    parse,
)

Severity = Literal["error", "warning"]

_PATTERN_TEXT = {
    m.GUID_PATTERN: "a GUID like 6f1c2a3b-0000-4000-8000-000000000001",
    m.UPN_PATTERN: "a user principal name like name@contoso.com",
    m.POLICY_NAME_PATTERN: (
        "a policy name: letters, digits, spaces, '.', '_' or '-', at most 64 characters, starting with a letter "
        "or digit, without the Tag: prefix"
    ),
    m.RETENTION_CLASS_PATTERN: (
        "a retention class name: lower-case letters, digits and '-', at most 64 characters, not starting or "
        "ending with '-'"
    ),
    m.COUNTRY_PATTERN: "an ISO 3166-1 alpha-2 country code in upper case, like DE",
}
_TYPE_TEXT = {
    "boolean": "true or false",
    "integer": "a whole number",
    "string": "a text string",
    "array": "a list",
    "object": "a mapping of fields",
    "null": "null",
    "number": "a number",
}


@dataclass(frozen=True)
class Issue:
    """One finding about a desired-state file."""

    severity: Severity
    path: Path
    message: str
    position: Position | None = None

    @property
    def location(self) -> str:
        return format_path(self.path)

    def render(self, source_name: str | None = None) -> str:
        where = source_name or ""
        if self.position is not None:
            where += (
                f":{self.position.line}:{self.position.column}"
                if where
                else (f"line {self.position.line}, column {self.position.column}")
            )
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.severity}: {self.location}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"severity": self.severity, "path": self.location, "message": self.message}
        if self.position is not None:
            entry["line"], entry["column"] = self.position.line, self.position.column
        return entry


class InvalidDesiredState(InvalidInput):
    """The desired state has errors; `issues` lists every finding (warnings too)."""

    title = "Invalid desired state"

    def __init__(self, issues: list[Issue], source_name: str | None = None) -> None:
        errors = [issue for issue in issues if issue.severity == "error"]
        super().__init__(
            f"{len(errors)} error(s) in the desired state" + (f" {source_name}" if source_name else ""),
            errors=[issue.as_dict() for issue in issues],
        )
        self.issues = issues
        self.source_name = source_name


@dataclass(frozen=True)
class Validated:
    """A desired state that passed validation, with its warnings."""

    desired: m.DesiredState
    warnings: list[Issue]


class UnreadableDesiredState(InvalidDesiredState):
    """A text refused before it is read: anchors and aliases, or beyond the size, depth or node limits.
    Unlike a document with findings, this is a bad request even for validation (HTTP 400)."""


def load_desired_state(text: str, source_name: str | None = None) -> Validated:
    """Parse and validate a desired-state YAML (or JSON) text; raise `InvalidDesiredState` on any error."""
    try:
        document = parse(text)
    except SourceLimitExceeded as error:
        raise UnreadableDesiredState([Issue("error", (), error.message, error.position)], source_name) from error
    except SourceError as error:
        raise InvalidDesiredState([Issue("error", (), error.message, error.position)], source_name) from error
    return validate_document(document, source_name)


def validate_data(data: Any, source_name: str | None = None) -> Validated:
    """Validate an already-parsed document (an HTTP JSON body); positions are unknown."""
    try:
        check_data(data)
    except SourceLimitExceeded as error:
        raise UnreadableDesiredState([Issue("error", (), error.message, None)], source_name) from error
    return validate_document(SourceDocument(data=data), source_name)


def validate_document(document: SourceDocument, source_name: str | None = None) -> Validated:
    issues = [
        Issue("error", path, "duplicate key: each field may appear once in a mapping", position)
        for path, position in document.duplicate_keys
    ]
    issues += sorted(_schema_issues(document), key=_order)
    if any(issue.severity == "error" for issue in issues):
        raise InvalidDesiredState(issues, source_name)
    try:
        desired = m.DesiredState.model_validate(document.data)
    except ValidationError as error:  # the schema should have caught it; never let it through silently
        issues += [
            Issue("error", tuple(e["loc"]), e["msg"], document.position(tuple(e["loc"])))
            for e in error.errors(include_url=False)
        ]
        raise InvalidDesiredState(issues, source_name) from error
    issues += [
        Issue(severity, path, message, document.key_position(path) or document.position(path))
        for severity, path, message in check_rules(desired)
    ]
    issues.sort(key=_order)
    if any(issue.severity == "error" for issue in issues):
        raise InvalidDesiredState(issues, source_name)
    return Validated(desired=desired, warnings=issues)


def _order(issue: Issue) -> tuple[int, int, str]:
    if issue.position is None:
        return (1 << 30, 0, issue.location)
    return (issue.position.line, issue.position.column, issue.location)


# --- JSON Schema findings, in words ---------------------------------------------------------------------


def _schema_issues(document: SourceDocument) -> Iterator[Issue]:
    validator = Draft202012Validator(desired_state_schema())
    seen: set[tuple[Path, str]] = set()
    for error in validator.iter_errors(document.data):
        for path, message in _explain(error):
            if (path, message) in seen:  # one "required" error per missing field repeats the whole list
                continue
            seen.add((path, message))
            position = document.key_position(path) or document.position(path)
            yield Issue("error", path, message, position)


def _explain(error: SchemaError, nullable: bool = False) -> Iterator[tuple[Path, str]]:
    path: Path = tuple(error.absolute_path)
    or_null = " or null" if nullable else ""
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, path)
    elif validator == "not":
        yield (
            path,
            str(schema.get("not", {}).get("x-verbatim-error") or schema.get("x-verbatim-error") or error.message),
        )
    elif validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        for name in missing:
            described = schema.get("properties", {}).get(name, {}).get("description")
            hint = f": {described}" if described else ""
            yield path, f"missing required field '{name}'{hint}"
    elif validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for name in sorted(set(error.instance) - set(allowed)):
            yield (*path, name), f"unknown field '{name}'; allowed fields here: {', '.join(allowed)}"
    elif validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_TYPE_TEXT.get(str(t), str(t)) for t in expected)
        if "pattern" in schema:
            wanted = _PATTERN_TEXT.get(str(schema["pattern"]), wanted)
        got = _json_type(error.instance)
        hint = ""
        if "boolean" in expected and isinstance(error.instance, str):
            hint = " (only true and false are booleans; yes/no/on/off are text)"
        yield path, f"must be {wanted}{or_null}, not {got} {_show(error.instance)}".rstrip() + hint
    elif validator == "enum":
        choices = ", ".join(_show(v) for v in error.validator_value)
        yield path, f"must be one of {choices}{or_null}, not {_show(error.instance)}"
    elif validator == "const":
        yield path, f"must be {_show(error.validator_value)}, not {_show(error.instance)}"
    elif validator == "pattern":
        wanted = _PATTERN_TEXT.get(str(error.validator_value), f"text matching {error.validator_value}")
        yield path, f"must be {wanted}{or_null}, not {_show(error.instance)}"
    elif validator == "minimum":
        yield path, f"must be at least {error.validator_value}, not {_show(error.instance)}"
    elif validator == "maximum":
        yield path, f"must be at most {error.validator_value}, not {_show(error.instance)}"
    elif validator == "minItems":
        yield path, f"must list at least {error.validator_value} item(s)"
    elif validator == "minLength":
        yield path, f"must not be empty (at least {error.validator_value} character(s))"
    elif validator == "maxLength":
        yield path, f"is too long: at most {error.validator_value} characters"
    else:
        yield path, error.message


def _explain_alternatives(error: SchemaError, path: Path) -> Iterator[tuple[Path, str]]:
    """`X | None` fields: when the value is not null, only the non-null branch can explain the problem."""
    branches: dict[int, list[SchemaError]] = {}
    for sub in error.context or []:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    alternatives = error.validator_value
    relevant = {
        index: subs
        for index, subs in branches.items()
        if not (error.instance is not None and alternatives[index] == {"type": "null"})
    }
    if len(relevant) == 1:
        nullable = isinstance(alternatives, list) and {"type": "null"} in alternatives
        for sub in next(iter(relevant.values())):
            yield from _explain(sub, nullable=nullable and tuple(sub.absolute_path) == path)
        return
    yield path, f"does not match any allowed form: {error.message}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dict | list):
        return ""
    return str(value)


# --- rules across fields ----------------------------------------------------------------------------------

Finding = tuple[Severity, Path, str]


def check_rules(desired: m.DesiredState) -> list[Finding]:
    """Every cross-field rule of a desired state; errors make the file invalid, warnings are reported."""
    findings: list[Finding] = []
    for rule in (_instances, _policies, _user_assignments, _group_assignments, _calling, _jurisdictions, _coverage):
        findings += rule(desired)
    return findings


def _duplicates(values: Iterable[str], path_of: Any, what: str) -> Iterator[Finding]:
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        key = value.casefold()
        if key in first:
            yield "error", path_of(index), f"{what} {value!r} is already declared at {format_path(path_of(first[key]))}"
        else:
            first[key] = index


def _instances(desired: m.DesiredState) -> Iterator[Finding]:
    yield from _duplicates(
        (i.user_principal_name for i in desired.application_instances),
        lambda i: ("applicationInstances", i, "userPrincipalName"),
        "application instance",
    )


def _capture(desired: m.DesiredState, policy: m.RecordingPolicy, base: Path) -> Iterator[Finding]:
    """`capture`: only in version 2 files, audio always, each modality once."""
    if "capture" not in policy.model_fields_set:
        return
    here: Path = (*base, "capture")
    if desired.version < m.CAPTURE_VERSION:
        yield (
            "error",
            here,
            f"capture needs 'version: {m.CAPTURE_VERSION}' at the top of the file (version {desired.version} files "
            "capture audio only)",
        )
    if "audio" not in policy.capture:
        yield (
            "error",
            here,
            "must include audio: a recording's evidence is the call's audio; add video or "
            "videoBasedScreenSharing beside it",
        )
    seen: set[str] = set()
    for index, modality in enumerate(policy.capture):
        if modality in seen:
            yield "error", (*here, index), f"{modality!r} is listed twice; list each modality once"
        seen.add(modality)


def _policies(desired: m.DesiredState) -> Iterator[Finding]:
    yield from _duplicates(
        (p.name for p in desired.recording_policies), lambda i: ("recordingPolicies", i, "name"), "recording policy"
    )
    declared = {i.user_principal_name.casefold() for i in desired.application_instances}
    declared_text = ", ".join(i.user_principal_name for i in desired.application_instances) or "none declared"
    for p_index, policy in enumerate(desired.recording_policies):
        base: Path = ("recordingPolicies", p_index)
        yield from _capture(desired, policy, base)
        seen: dict[str, int] = {}
        for r_index, recorder in enumerate(policy.recorders):
            here: Path = (*base, "recorders", r_index)
            if recorder.instance.casefold() not in declared:
                yield (
                    "error",
                    (*here, "instance"),
                    f"application instance {recorder.instance!r} is not declared in applicationInstances "
                    f"(declared: {declared_text})",
                )
            if recorder.instance.casefold() in seen:
                yield (
                    "error",
                    (*here, "instance"),
                    f"{recorder.instance!r} is already a recorder of policy {policy.name!r} at "
                    f"{format_path((*base, 'recorders', seen[recorder.instance.casefold()]))}",
                )
            seen.setdefault(recorder.instance.casefold(), r_index)
            if recorder.concurrent_invitation_count is not None and recorder.paired_with is not None:
                from verbatim.policy.schema import BOTH_RESILIENCE_ERROR

                yield "error", here, BOTH_RESILIENCE_ERROR
            if recorder.paired_with is not None:
                if recorder.paired_with.casefold() == recorder.instance.casefold():
                    yield (
                        "error",
                        (*here, "pairedWith"),
                        "a recorder cannot be paired with itself; name another instance",
                    )
                elif recorder.paired_with.casefold() not in declared:
                    yield (
                        "error",
                        (*here, "pairedWith"),
                        f"application instance {recorder.paired_with!r} is not declared in applicationInstances "
                        f"(declared: {declared_text})",
                    )
        if policy.enabled and not policy.recorders:
            yield (
                "warning",
                (*base, "recorders"),
                f"policy {policy.name!r} is enabled but has no recorders: it records nobody",
            )
        if policy.recorders and not any(r.strict for r in policy.recorders) and policy.enabled:
            yield (
                "warning",
                (*base, "recorders"),
                f"policy {policy.name!r} is not strict: calls go ahead unrecorded when no recorder answers",
            )


def _policy_reference(desired: m.DesiredState, name: str, path: Path, *, assignable: bool = True) -> Iterator[Finding]:
    if assignable and name.casefold() == m.GLOBAL_POLICY.casefold():
        yield (
            "error",
            path,
            "'Global' is the tenant default policy and cannot be assigned; declare a policy with its own name",
        )
    elif desired.policy(name) is None:
        names = ", ".join(p.name for p in desired.recording_policies) or "none declared"
        yield "error", path, f"recording policy {name!r} is not declared in recordingPolicies (declared: {names})"


def _user_assignments(desired: m.DesiredState) -> Iterator[Finding]:
    if desired.assignments.global_ is not None:
        yield from _policy_reference(desired, desired.assignments.global_, ("assignments", "global"), assignable=False)
    yield from _duplicates(
        (a.user for a in desired.assignments.users),
        lambda i: ("assignments", "users", i, "user"),
        "a direct assignment for user",
    )
    for index, assignment in enumerate(desired.assignments.users):
        yield from _policy_reference(desired, assignment.policy, ("assignments", "users", index, "policy"))


def _ranked(entries: Sequence[tuple[str, int, Path]], policy_type: str) -> Iterator[Finding]:
    """Group assignments of one policy type: a group once, each rank once, at most 64 groups."""
    by_group: dict[str, Path] = {}
    by_rank: dict[int, tuple[str, Path]] = {}
    for group, rank, path in entries:
        if group.casefold() in by_group:
            yield (
                "error",
                (*path, "group"),
                f"group {group} already has a {policy_type} assignment at {format_path(by_group[group.casefold()])}; "
                "a group gets one policy of each type",
            )
            continue
        by_group[group.casefold()] = path
        if rank in by_rank:
            other, other_path = by_rank[rank]
            used = sorted(by_rank)
            yield (
                "error",
                (*path, "rank"),
                f"rank {rank} is already used by group {other} at {format_path(other_path)}; each {policy_type} "
                f"group assignment needs its own rank (used: {', '.join(map(str, used))}; next free: {max(used) + 1})",
            )
        else:
            by_rank[rank] = (group, path)
    if len(by_group) > m.MAX_GROUP_ASSIGNMENTS_PER_POLICY_TYPE:
        yield (
            "error",
            entries[m.MAX_GROUP_ASSIGNMENTS_PER_POLICY_TYPE][2],
            f"Teams allows at most {m.MAX_GROUP_ASSIGNMENTS_PER_POLICY_TYPE} group assignments per policy type",
        )


def _group_assignments(desired: m.DesiredState) -> Iterator[Finding]:
    entries: list[tuple[str, int, Path]] = [
        (a.group, a.rank, ("assignments", "groups", i)) for i, a in enumerate(desired.assignments.groups)
    ]
    yield from _ranked(entries, "recording policy")
    for index, assignment in enumerate(desired.assignments.groups):
        yield from _policy_reference(desired, assignment.policy, ("assignments", "groups", index, "policy"))


def _calling(desired: m.DesiredState) -> Iterator[Finding]:
    yield from _duplicates(
        (p.name for p in desired.calling_policies), lambda i: ("callingPolicies", i, "name"), "calling policy"
    )
    entries: list[tuple[str, int, Path]] = [
        (g.group, g.rank, ("callingPolicies", p, "groups", i))
        for p, policy in enumerate(desired.calling_policies)
        for i, g in enumerate(policy.groups)
    ]
    yield from _ranked(entries, "calling policy")


def _jurisdictions(desired: m.DesiredState) -> Iterator[Finding]:
    jurisdictions = desired.jurisdictions
    first: dict[str, Path] = {}
    for r_index, rule in enumerate(jurisdictions.rules):
        for c_index, country in enumerate(rule.countries):
            path: Path = ("jurisdictions", "rules", r_index, "countries", c_index)
            if country in first:
                yield "error", path, f"country {country} already has a rule at {format_path(first[country])}"
            else:
                first[country] = path
    excludes = [i for i, rule in enumerate(jurisdictions.rules) if rule.action == "exclude"]
    if jurisdictions.exclusion_policy is None:
        for index in excludes:
            yield (
                "error",
                ("jurisdictions", "rules", index, "action"),
                "action 'exclude' needs jurisdictions.exclusionPolicy: a declared policy that records nobody "
                "(enabled: false or no recorders), assigned directly to the excluded users",
            )
        return
    path = ("jurisdictions", "exclusionPolicy")
    policy = desired.policy(jurisdictions.exclusion_policy)
    if policy is None or policy.name.casefold() == m.GLOBAL_POLICY.casefold():
        yield from _policy_reference(desired, jurisdictions.exclusion_policy, path)
    elif policy.records:
        yield (
            "error",
            path,
            f"exclusion policy {policy.name!r} records its users (enabled with recorders); "
            "set enabled: false or remove its recorders",
        )


def _coverage(desired: m.DesiredState) -> Iterator[Finding]:
    """Must-record groups: no duplicates, and never assigned a policy that records nobody. (Whether every
    member is covered is for the coverage audit to say: it depends on the directory, not the file.)"""
    groups = desired.must_record.groups
    yield from _duplicates(
        (g.group for g in groups), lambda i: ("mustRecord", "groups", i, "group"), "must-record group"
    )
    assigned = {a.group.casefold(): a.policy for a in desired.assignments.groups}
    for index, group in enumerate(groups):
        policy_name = assigned.get(group.group.casefold())
        policy = desired.policy(policy_name) if policy_name else None
        if policy is not None and not policy.records:
            label = f"{group.group} ({group.name})" if group.name else group.group
            yield (
                "warning",
                ("mustRecord", "groups", index, "group"),
                f"must-record group {label} is assigned {policy.name}, which records nobody",
            )
