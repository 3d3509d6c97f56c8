"""The policy service layer: what the CLI and the HTTP triggers call. Each function takes what it needs
(texts, a current-state source, ports) and returns domain results; nothing here parses arguments or
shapes HTTP responses."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from verbatim.contracts.policy import PlanFinding, PolicyPlan
from verbatim.ledger import LedgerWriter
from verbatim.policy.compile import compile_desired
from verbatim.policy.directory import Directory
from verbatim.policy.export import export_directory, export_state, parse_export
from verbatim.policy.plan import desired_sha256, make_plan
from verbatim.policy.state import TenantState
from verbatim.policy.stores import DesiredStateStore, PublishedDesiredState
from verbatim.policy.validation import Validated, load_desired_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentState:
    """The tenant as it is now, where it was read from, and a directory to look users up (if any).

    `limits` say what the source could not show; they become findings of every plan made against it."""

    state: TenantState
    target: str
    directory: Directory | None = None
    limits: tuple[PlanFinding, ...] = ()


def current_from_export(path: Path) -> CurrentState:
    export = parse_export(path.read_text(encoding="utf-8-sig"))
    state = export_state(export)
    limits = [
        PlanFinding(
            severity="info",
            kind="export-jurisdiction",
            message="jurisdiction rules are checked for users with a direct assignment only: an export does not "
            "list group members (plan against Graph or the simulator to check them too)",
        )
    ]
    if not state.global_policy_known:
        limits.append(
            PlanFinding(
                severity="info",
                kind="export-global",
                message="an export cannot show the tenant-wide grant: a declared one is always granted again "
                "(idempotent), and an undeclared one is not removed",
            )
        )
    return CurrentState(
        state=state, target=f"export {path.name}", directory=export_directory(export), limits=tuple(limits)
    )


def plan(validated: Validated, current: CurrentState) -> PolicyPlan:
    """The plan from `current` to the desired state, with validation warnings and jurisdiction findings."""
    compiled = compile_desired(validated.desired, current.directory)
    findings = [
        PlanFinding(severity="warning", kind="validation", subject=w.location, message=f"{w.location}: {w.message}")
        for w in validated.warnings
    ]
    has_rules = bool(validated.desired.jurisdictions.rules)
    limits = [f for f in current.limits if f.kind != "export-jurisdiction" or has_rules]
    return make_plan(
        validated.desired,
        compiled.state,
        current.state,
        target=current.target,
        findings=findings + compiled.findings + limits,
    )


# --- publishing and auditing ------------------------------------------------------------------------------


def publish_desired_state(
    store: DesiredStateStore,
    text: str,
    *,
    actor: str | None,
    now: datetime,
    ledger: LedgerWriter | None = None,
    subject: str | None = None,
) -> tuple[PublishedDesiredState, Validated]:
    """Validate `text` (raising `InvalidDesiredState`) and make it the desired state the audit works with.
    `actor` is who published, as people read it; the ledger names `subject` (the token's object id) when given,
    as every other entry of a person does."""
    validated = load_desired_state(text, "desired state")
    published = PublishedDesiredState(
        text=text, sha256=desired_sha256(validated.desired), published_at=now, published_by=actor
    )
    store.save(published)
    if ledger is not None:
        ledger.append(
            "policy.published",
            f"policy:desired-state:{published.sha256}",
            {"sha256": published.sha256, "publishedAt": now.isoformat()},
            actor=subject or actor,
        )
    return published, validated


def must_record_groups(validated: Validated | None, extra: str) -> list[str]:
    """The published state's must-record groups plus the comma-separated ones of POLICY_MUST_RECORD_GROUPS."""
    groups = [g.group for g in validated.desired.must_record.groups] if validated else []
    groups += [g.strip() for g in extra.split(",") if g.strip()]
    return groups
