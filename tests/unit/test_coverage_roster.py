"""The coverage list: every policy user of the last audit, with their state from the audit's finding and the
verdicts of their calls in the window — recorded, not recorded (by policy or with gaps), no calls, pending,
excluded — filtered and paged, with per-state counts over everyone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from verbatim.contracts.api import LastRecording
from verbatim.contracts.policy import CoverageFinding, CoverageReport, EffectivePolicy, PolicyUser
from verbatim.contracts.reconciliation import TimeSpan, Verdict, VerdictReason, VerdictState
from verbatim.reconciliation.roster import RosterQuery, roster_page, user_coverage
from verbatim.reconciliation.store import InMemoryVerdictStore

WINDOW = ("2025-03-01T00:00:00.000000Z", "2025-03-08T00:00:00.000000Z")


def user(user_id: str, *, records: bool = True, must_record: bool = True, policy: str | None = "Traders") -> PolicyUser:
    return PolicyUser(
        user_id=user_id,
        user_principal_name=f"{user_id}@contoso.com",
        must_record=must_record,
        groups=["g-traders"] if must_record else [],
        policy_name=policy,
        source="group" if policy else "none",
        records=records,
        strict=records,
    )


def finding(user_id: str, severity: str, message: str) -> CoverageFinding:
    return CoverageFinding.model_validate(
        {
            "key": f"{user_id}:x",
            "severity": severity,
            "userId": user_id,
            "groups": ["g-traders"],
            "effective": EffectivePolicy(user_id=user_id).model_dump(by_alias=True),
            "message": message,
        }
    )


def verdict(
    user_id: str,
    call: str,
    state: VerdictState,
    start: str = "2025-03-03T09:00:00.000000Z",
    *,
    reason: VerdictReason = "recorded",
    explained: bool = False,
    gap_seconds: float = 0.0,
) -> Verdict:
    gaps = [TimeSpan(start=start, end=start, seconds=gap_seconds)] if gap_seconds else []
    return Verdict(
        id=f"{call}:{user_id}",
        call_id=call,
        call_record_version=1,
        user_id=user_id,
        day=start[:10],
        call_start=start,
        verdict=state,
        coverage=1.0 if state == "recorded" else 0.5,
        gaps=gaps,
        recording_ids=[f"rec-{call}"] if state in ("recorded", "partial") else [],
        reason=reason,
        explained=explained,
        evaluated_at=start,
    )


def report(*users: PolicyUser, findings: tuple[CoverageFinding, ...] = ()) -> CoverageReport:
    return CoverageReport(
        audited_at=datetime(2025, 3, 7, 9, tzinfo=UTC),
        source="test",
        must_record_groups=["g-traders"],
        must_record_users=sum(u.must_record for u in users),
        recorded_users=sum(u.must_record and u.records for u in users),
        findings=list(findings),
        users=list(users),
    )


def no_recording(_: str) -> LastRecording | None:
    return None


def test_every_call_recorded_is_recorded_and_a_gap_is_not_recorded_with_its_seconds() -> None:
    alice = user_coverage(user("alice"), None, [verdict("alice", "c1", "recorded"), verdict("alice", "c2", "recorded")])
    bob = user_coverage(
        user("bob"),
        None,
        [
            verdict("bob", "c3", "recorded"),
            verdict("bob", "c4", "partial", "2025-03-04T09:00:00.000000Z", reason="recorder_crashed", gap_seconds=42),
            verdict("bob", "c5", "missing", "2025-03-05T09:00:00.000000Z", reason="no_invitation", gap_seconds=60),
        ],
    )

    assert (alice.state, alice.calls, alice.recorded_calls, alice.gap_calls) == ("recorded", 2, 2, 0)
    assert (bob.state, bob.calls, bob.recorded_calls, bob.gap_calls, bob.missing_seconds) == (
        "not_recorded",
        3,
        1,
        2,
        102.0,
    )
    assert [g.call_id for g in bob.gaps] == ["c5", "c4"]  # newest first
    assert bob.gaps[1].reason == "recorder_crashed" and bob.gaps[1].recording_ids == ["rec-c4"]
    assert "2 calls of 3 not fully recorded" in bob.why


def test_a_blocked_call_is_no_gap_and_pending_calls_are_pending_until_decided() -> None:
    blocked = verdict("carl", "c6", "missing", reason="call_blocked_by_policy", explained=True)
    carl = user_coverage(user("carl"), None, [verdict("carl", "c7", "recorded"), blocked])
    dora = user_coverage(user("dora"), None, [verdict("dora", "c8", "pending", reason="recording_pending")])

    assert (carl.state, carl.gap_calls, carl.explained_calls) == ("recorded", 0, 1)
    assert [g.call_id for g in carl.gaps] == ["c6"] and carl.gaps[0].explained
    assert (dora.state, dora.pending_calls) == ("pending", 1)


def test_a_policy_that_does_not_record_them_makes_them_not_recorded_whatever_their_calls() -> None:
    eve = user("eve", records=False, policy=None)
    said = finding("eve", "alert", "eve@contoso.com is in must-record group g-traders but has no policy")

    covered = user_coverage(eve, said, [])

    assert (covered.state, covered.why, covered.calls) == ("not_recorded", said.message, 0)


def test_an_exclusion_by_jurisdiction_is_excluded_and_no_calls_is_no_calls() -> None:
    erik = user("erik", records=False, policy="Not-Recorded")
    excluded = user_coverage(erik, finding("erik", "info", "excluded by jurisdiction (Not-Recorded)"), [])
    quiet = user_coverage(user("fay"), None, [])

    assert excluded.state == "excluded" and "jurisdiction" in excluded.why
    assert (quiet.state, quiet.why) == ("no_calls", "no call in the window")


@pytest.fixture
def store() -> InMemoryVerdictStore:
    verdicts = InMemoryVerdictStore()
    for item in (
        verdict("alice", "c1", "recorded"),
        verdict("bob", "c4", "partial", reason="recorder_crashed", gap_seconds=42),
        verdict("bob", "c0", "recorded", "2025-02-20T09:00:00.000000Z"),  # before the window: not counted
        verdict("dana", "c9", "recorded"),
    ):
        verdicts.save(item)
    return verdicts


def test_the_page_lists_everyone_by_upn_with_counts_and_filters_by_state_user_and_must_record(
    store: InMemoryVerdictStore,
) -> None:
    eve = user("eve", records=False, policy=None)
    the_report = report(
        user("alice"),
        user("bob"),
        user("dana", must_record=False, policy="Advisers"),
        eve,
        user("fay"),
        findings=(finding("eve", "alert", "no policy"),),
    )
    asked: list[str] = []

    def last(user_id: str) -> LastRecording | None:
        asked.append(user_id)
        return LastRecording(recording_id=f"rec-of-{user_id}", call_id="c", status="sealed")

    everyone = roster_page(the_report, RosterQuery(*WINDOW), store, last)
    missing = roster_page(the_report, RosterQuery(*WINDOW, state="not_recorded"), store, no_recording)
    by_upn = roster_page(the_report, RosterQuery(*WINDOW, user="DAN"), store, no_recording)
    members = roster_page(the_report, RosterQuery(*WINDOW, must_record=True, limit=2), store, no_recording)

    assert [(i.user_id, i.state) for i in everyone.items] == [
        ("alice", "recorded"),
        ("bob", "not_recorded"),
        ("dana", "recorded"),
        ("eve", "not_recorded"),
        ("fay", "no_calls"),
    ]
    assert everyone.counts == {"recorded": 2, "not_recorded": 2, "no_calls": 1, "pending": 0, "excluded": 0}
    assert everyone.items[1].calls == 1  # the February call is outside the window
    assert everyone.items[0].last_recording is not None and everyone.items[0].last_recording.recording_id == (
        "rec-of-alice"
    )
    assert asked == ["alice", "bob", "dana", "eve", "fay"] and everyone.listed
    assert [i.user_id for i in missing.items] == ["bob", "eve"] and missing.counts == everyone.counts
    assert [i.user_id for i in by_upn.items] == ["dana"]
    assert [i.user_id for i in members.items] == ["alice", "bob"] and members.continuation
    rest = roster_page(
        the_report, RosterQuery(*WINDOW, must_record=True, limit=2, continuation=members.continuation), store, last
    )
    assert [i.user_id for i in rest.items] == ["eve", "fay"] and rest.continuation is None


def test_a_report_of_a_version_1_audit_says_it_did_not_list_its_users(store: InMemoryVerdictStore) -> None:
    old = report(user("alice")).model_copy(update={"users": None})

    page = roster_page(old, RosterQuery(*WINDOW), store, no_recording)

    assert (page.listed, page.items) == (False, [])
