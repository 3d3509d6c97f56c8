"""Who must be recorded, and were they: every policy user of the last coverage audit beside reconciliation's
verdicts of their calls over a window and their newest recording — the list the coverage page shows, so an
officer sees who should be recorded and is not.

The audit says whether a user's effective policy records them (and why not); the verdicts say whether the calls
they had were recorded. A user is `not_recorded` when either says no.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import get_args

from verbatim.contracts.api import (
    CallGap,
    CoverageUserPage,
    LastRecording,
    UserCoverage,
    UserCoverageState,
)
from verbatim.contracts.policy import CoverageFinding, CoverageReport, PolicyUser
from verbatim.contracts.reconciliation import Verdict
from verbatim.platform.paging import offset_page
from verbatim.reconciliation.store import VerdictQuery, VerdictStore

STATES: tuple[UserCoverageState, ...] = get_args(UserCoverageState)
MAX_GAPS = 5
WINDOW_PAGE = 500  # verdicts read per Cosmos page while grouping the window's verdicts by user


@dataclass(frozen=True)
class RosterQuery:
    """The window (canonical UTC, [window_from, window_to)) and the filters of one page of the list."""

    window_from: str
    window_to: str
    state: UserCoverageState | None = None
    user: str | None = None  # an object id, or part of a UPN (case-insensitive)
    must_record: bool | None = None
    limit: int = 50
    continuation: str | None = None


def _missing_seconds(verdict: Verdict) -> float:
    if verdict.gaps:
        return sum(gap.seconds for gap in verdict.gaps)
    if verdict.verdict == "missing" and verdict.presence is not None:
        return verdict.presence.seconds
    return 0.0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def user_coverage(user: PolicyUser, finding: CoverageFinding | None, verdicts: Iterable[Verdict]) -> UserCoverage:
    """One user's state: the audit's finding first (a policy that does not record them), then their calls."""
    mine = sorted(verdicts, key=lambda v: (v.call_start or "", v.call_id), reverse=True)
    recorded = [v for v in mine if v.verdict == "recorded"]
    pending = [v for v in mine if v.verdict == "pending"]
    short = [v for v in mine if v.verdict in ("partial", "missing")]
    gaps = [v for v in short if not v.explained]
    explained = [v for v in short if v.explained]
    missing = round(sum(_missing_seconds(v) for v in gaps), 3)

    state: UserCoverageState
    if finding is not None and finding.severity == "info":
        state, why = "excluded", finding.message
    elif not user.records:
        state = "not_recorded"
        why = finding.message if finding else f"the effective policy {user.policy_name or '(none)'} does not record"
    elif gaps:
        state = "not_recorded"
        why = f"{_plural(len(gaps), 'call')} of {len(mine)} not fully recorded ({missing:g} s unrecorded)"
    elif recorded or explained:
        state = "recorded"
        why = f"{_plural(len(recorded), 'call')} recorded"
        if explained:
            why += f"; {_plural(len(explained), 'call')} blocked before anyone spoke"
        if pending:
            why += f"; {len(pending)} pending"
    elif pending:
        state, why = "pending", f"{_plural(len(pending), 'call')} not decided yet"
    else:
        state, why = "no_calls", "no call in the window"
    return UserCoverage(
        user_id=user.user_id,
        user_principal_name=user.user_principal_name,
        must_record=user.must_record,
        groups=list(user.groups),
        policy_name=user.policy_name,
        policy_source=user.source,
        policy_records=user.records,
        strict=user.strict,
        state=state,
        why=why,
        calls=len(mine),
        recorded_calls=len(recorded),
        gap_calls=len(gaps),
        explained_calls=len(explained),
        pending_calls=len(pending),
        missing_seconds=missing,
        gaps=[
            CallGap(
                call_id=v.call_id,
                call_start=v.call_start,
                verdict=v.verdict,
                reason=v.reason,
                explained=v.explained,
                missing_seconds=round(_missing_seconds(v), 3),
                recording_ids=list(v.recording_ids),
            )
            for v in short[:MAX_GAPS]
        ],
    )


def window_verdicts(store: VerdictStore, window_from: str, window_to: str) -> dict[str, list[Verdict]]:
    """The verdicts of calls that started in the window, by user id (one paged query over the window)."""
    by_user: dict[str, list[Verdict]] = {}
    continuation: str | None = None
    while True:
        query = VerdictQuery(start_from=window_from, start_to=window_to, limit=WINDOW_PAGE, continuation=continuation)
        items, continuation = store.query(query)
        for verdict in items:
            by_user.setdefault(verdict.user_id, []).append(verdict)
        if not continuation:
            return by_user


def _matches(item: UserCoverage, query: RosterQuery) -> bool:
    if query.state is not None and item.state != query.state:
        return False
    if query.must_record is not None and item.must_record != query.must_record:
        return False
    if query.user:
        wanted = query.user.strip().casefold()
        return item.user_id.casefold() == wanted or wanted in (item.user_principal_name or "").casefold()
    return True


def roster_page(
    report: CoverageReport,
    query: RosterQuery,
    verdicts: VerdictStore,
    last_recording: Callable[[str], LastRecording | None],
) -> CoverageUserPage:
    """One page of the policy users, by UPN, with their state; `last_recording` is asked for the page's users."""
    users: Sequence[PolicyUser] = report.users or []
    findings = {f.user_id: f for f in report.findings}
    by_user = window_verdicts(verdicts, query.window_from, query.window_to) if users else {}
    everyone = [user_coverage(u, findings.get(u.user_id), by_user.get(u.user_id, [])) for u in users]
    counts = {state: sum(1 for item in everyone if item.state == state) for state in STATES}
    page, continuation = offset_page([i for i in everyone if _matches(i, query)], query.continuation, query.limit)
    items = [item.model_copy(update={"last_recording": last_recording(item.user_id)}) for item in page]
    return CoverageUserPage(
        audited_at=report.audited_at.isoformat(),
        window_from=query.window_from,
        window_to=query.window_to,
        listed=report.users is not None,
        counts=counts,
        items=items,
        continuation=continuation,
    )
