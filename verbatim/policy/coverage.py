"""The coverage audit: everyone who must be recorded (transitive members of the must-record groups) against
everyone whose effective policy records them. Each run also refreshes the policy snapshots, and turns new
and resolved drift into ledger entries and alerts, once per episode rather than once per run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import JsonValue

from verbatim.contracts.policy import CoverageFinding, CoverageReport, EffectivePolicy, PolicyUser
from verbatim.graph import GraphError
from verbatim.ledger import LedgerWriter
from verbatim.policy.directory import Directory, DirectoryUser
from verbatim.policy.readers import EffectivePolicyReader
from verbatim.policy.snapshots import PolicySnapshotStore, observe
from verbatim.policy.state import key

log = logging.getLogger(__name__)

DRIFT = "policy.drift"
DRIFT_RESOLVED = "policy.drift.resolved"

# The audit timer also runs at start-up (the first calls after a deployment need snapshots), and on Flex
# Consumption a start-up happens at every scale-out and every wake-up: at most one audit starts in this
# interval across instances, and a claim keeps instances starting together from auditing side by side.
AUDIT_MIN_INTERVAL = timedelta(minutes=5)
AUDIT_CLAIM_TIMEOUT = timedelta(minutes=10)  # a claim older than this belongs to an instance that died


@dataclass
class CoverageState:
    """What the previous run left: its time and its open findings (by key); and a run under way, if any."""

    last_run: datetime | None = None
    open_findings: dict[str, CoverageFinding] = field(default_factory=dict)
    last_report: CoverageReport | None = None
    claimed_at: datetime | None = None  # an audit started then and has not finished (saving clears it)


def audit_due(
    state: CoverageState,
    now: datetime,
    min_interval: timedelta = AUDIT_MIN_INTERVAL,
    claim_timeout: timedelta = AUDIT_CLAIM_TIMEOUT,
) -> bool:
    """Whether an audit should start now: none finished in the last `min_interval` and none is under way."""
    if state.last_run is not None and now - state.last_run < min_interval:
        return False
    return state.claimed_at is None or now - state.claimed_at >= claim_timeout


class CoverageStateStore(Protocol):
    def load(self) -> CoverageState: ...

    def save(self, state: CoverageState) -> None:
        """Store the state of a finished run (its `claimed_at` is None: the claim ends with the run)."""

    def claim(self, now: datetime) -> bool:
        """Atomically mark an audit as started at `now` if one is due (`audit_due`); False when not."""

    def release(self, claimed_at: datetime) -> None:
        """Drop the claim made at `claimed_at` (the run failed), so the next start-up or tick may audit."""


class InMemoryCoverageStateStore:
    def __init__(self) -> None:
        self.state = CoverageState()
        self._lock = threading.Lock()

    def load(self) -> CoverageState:
        state = self.state
        return CoverageState(state.last_run, dict(state.open_findings), state.last_report, state.claimed_at)

    def save(self, state: CoverageState) -> None:
        self.state = state

    def claim(self, now: datetime) -> bool:
        with self._lock:
            if not audit_due(self.state, now):
                return False
            self.state = CoverageState(
                self.state.last_run, dict(self.state.open_findings), self.state.last_report, claimed_at=now
            )
            return True

    def release(self, claimed_at: datetime) -> None:
        with self._lock:
            if self.state.claimed_at == claimed_at:
                self.state.claimed_at = None


def audit_once(store: CoverageStateStore, now: datetime, audit: Callable[[], CoverageReport]) -> CoverageReport | None:
    """Run `audit` unless another run finished moments ago or is under way (then None): what makes the timer's
    start-up runs cheap and harmless on every scale-out. The audit itself is idempotent (snapshots are written
    on change only, drift once per episode); this keeps it from running N times for N instances."""
    if not store.claim(now):
        return None
    try:
        return audit()
    except BaseException:
        store.release(now)
        raise


def must_record_members(
    directory: Directory, groups: Iterable[str], problems: list[str]
) -> dict[str, tuple[DirectoryUser, list[str]]]:
    """user id → (user, must-record groups the user is in), following nested groups."""
    members: dict[str, tuple[DirectoryUser, list[str]]] = {}
    for group in groups:
        try:
            found = directory.transitive_members(group)
        except GraphError as error:
            problems.append(f"group {group}: {error}")
            continue
        for user in found:
            members.setdefault(user.id, (user, []))[1].append(group)
    return members


def audit_coverage(
    *,
    must_record_groups: list[str],
    directory: Directory,
    reader: EffectivePolicyReader,
    now: datetime,
    state_store: CoverageStateStore,
    snapshots: PolicySnapshotStore | None = None,
    ledger: LedgerWriter | None = None,
    exclusion_policy: str | None = None,
) -> CoverageReport:
    """Run one audit; returns its report (also kept as the state's `last_report`)."""
    previous = state_store.load()
    problems: list[str] = []
    groups = sorted({g.casefold(): g for g in must_record_groups}.values(), key=str.casefold)
    members = must_record_members(directory, groups, problems)
    effective = {policy.user_id: policy for policy in reader.effective()}

    written = 0
    if snapshots is not None:
        for policy in effective.values():
            if observe(snapshots, policy, now, previous_observation=previous.last_run) is not None:
                written += 1

    findings: list[CoverageFinding] = []
    users: list[PolicyUser] = []
    recorded = 0
    for user_id, (user, in_groups) in sorted(members.items(), key=lambda item: item[1][0].user_principal_name):
        policy = effective.get(user_id) or EffectivePolicy(
            user_id=user_id, user_principal_name=user.user_principal_name
        )
        users.append(_policy_user(policy, user.user_principal_name, sorted(in_groups), must_record=True))
        if policy.records:
            recorded += 1
            continue
        findings.append(_finding(user, sorted(in_groups), policy, exclusion_policy))
    # Recorded though no must-record group names them: policy users too, whose calls reconciliation checks.
    users.extend(
        _policy_user(policy, policy.user_principal_name, [], must_record=False)
        for user_id, policy in effective.items()
        if policy.records and user_id not in members
    )
    users.sort(key=lambda u: ((u.user_principal_name or u.user_id).casefold(), u.user_id))

    current = {f.key: f for f in findings}
    new = [k for k in current if k not in previous.open_findings]
    resolved = [k for k in previous.open_findings if k not in current]
    report = CoverageReport(
        audited_at=now,
        source=reader.source,
        must_record_groups=groups,
        must_record_users=len(members),
        recorded_users=recorded,
        findings=findings,
        new_findings=new,
        resolved_findings=resolved,
        snapshots_written=written,
        problems=problems,
        users=users,
    )
    for finding_key in new:
        finding = current[finding_key]
        if finding.severity == "alert":
            log.error("coverage drift: %s", finding.message, extra={"user_id": finding.user_id, "drift": finding.key})
        if ledger is not None:
            ledger.append(DRIFT, f"user:{finding.user_id}", _details(finding, report))
    for finding_key in resolved:
        old = previous.open_findings[finding_key]
        log.warning("coverage drift resolved", extra={"user_id": old.user_id, "drift": old.key})
        if ledger is not None:
            ledger.append(DRIFT_RESOLVED, f"user:{old.user_id}", {"key": old.key, "auditedAt": now.isoformat()})
    state_store.save(CoverageState(last_run=now, open_findings=current, last_report=report))
    return report


def _policy_user(policy: EffectivePolicy, upn: str | None, groups: list[str], *, must_record: bool) -> PolicyUser:
    return PolicyUser(
        user_id=policy.user_id,
        user_principal_name=upn or policy.user_principal_name,
        must_record=must_record,
        groups=groups,
        policy_name=policy.policy_name,
        source=policy.source,
        records=policy.records,
        strict=policy.strict,
    )


def _finding(
    user: DirectoryUser, groups: list[str], policy: EffectivePolicy, exclusion_policy: str | None
) -> CoverageFinding:
    label = user.user_principal_name
    severity: Literal["alert", "info"]
    in_groups = ", ".join(groups)
    if exclusion_policy and policy.policy_name and key(policy.policy_name) == key(exclusion_policy):
        severity, reason = "info", "excluded"
        message = f"{label} is in must-record group {in_groups} but excluded by jurisdiction ({policy.policy_name})"
    elif policy.policy_name is None:
        severity, reason = "alert", "no-policy"
        message = f"{label} is in must-record group {in_groups} but has no compliance recording policy"
    else:
        severity, reason = "alert", "not-recording"
        message = (
            f"{label} is in must-record group {in_groups} but the effective policy {policy.policy_name} "
            f"({policy.source}) does not record (disabled, no recorders, or not in the desired state)"
        )
    digest = hashlib.sha256(f"{policy.policy_name}|{policy.source}|{','.join(groups)}".encode()).hexdigest()[:12]
    return CoverageFinding(
        key=f"{user.id}:{reason}:{digest}",
        severity=severity,
        user_id=user.id,
        user_principal_name=user.user_principal_name,
        groups=groups,
        effective=policy,
        message=message,
    )


def _details(finding: CoverageFinding, report: CoverageReport) -> dict[str, JsonValue]:
    return {
        "key": finding.key,
        "severity": finding.severity,
        "groups": list(finding.groups),
        "policy": finding.effective.policy_name,
        "source": finding.effective.source,
        "message": finding.message,
        "auditedAt": report.audited_at.isoformat(),
        "readFrom": report.source,
    }
