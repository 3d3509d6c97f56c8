"""Deciding one verdict: which policy users a call had, which recordings cover each of them, for how long,
and — when not fully — the likely reason. Pure functions over the call record, the users' effective
policies and the recording records; no I/O.

Coverage is measured on wall-clock time: the user's presence (their sessions without a set-up failure, else
first join to last leave) against the recordings' captured spans (`started_at` + the duration measured when
sealing, so a salvaged recording covers only what survived).

What may go unrecorded and still count as recorded is narrow (`Tolerance`): the recorder joining a moment
after each of the user's joins, and its teardown at each leave — never after a recording that was
interrupted — plus gaps shorter than the measurement resolution. Any other unrecorded stretch makes the
verdict partial (or missing, when less than `EVIDENCE_FLOOR_SECONDS` was captured). A total allowance would
call a recording that lost most of a short call "recorded": a false negative, the worst error here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from verbatim.contracts.callrecords import CallRecord, Party, SessionSummary
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.policy import EffectivePolicyAt
from verbatim.contracts.reconciliation import PolicyAtCall, TimeSpan, Verdict, VerdictReason, VerdictState
from verbatim.platform.times import format_datetime, parse_datetime

Span = tuple[datetime, datetime]

# Recording states after which nothing more will be captured or sealed. A recording deleted at the end of its
# retention still counts for the call it recorded: it was recorded (the ledger holds its deletion certificate).
SEALED = frozenset({"sealed", "deleting", "deleted"})
FINAL = SEALED | {"not_recorded"}
# Failure stages where the recorder never captured media: it could not answer or start recording.
REJECTED_STAGES = frozenset({"answer", "recording_status"})
CRASH_STAGES = frozenset({"media", "capture", "storage", "shutdown"})
EXPLAINED_REASONS = frozenset({"call_blocked_by_policy", "policy_change_pending"})
# Below this, an unrecorded stretch is measurement noise, not a gap: audio frames are 20 ms, and the call
# record's times and the recorder's sample clock are rounded differently.
RESOLUTION_SECONDS = 0.1
# Less audio than this captured of the user's presence is no evidence of any conversation: missing, not partial.
EVIDENCE_FLOOR_SECONDS = 1.0
# How long after a call ended a recorder's report on it may still come (the production default of
# `RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS`, which says why): until then no report is not yet a miss.
RECORDER_REPORT_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class Tolerance:
    """What may go unrecorded at the edges of each stretch of the user's presence and still count as recorded.

    `join_seconds`: at the start of a stretch (the platform invites the recorder when the user joins, and it
    needs a moment to answer, connect and start recording). `end_seconds`: at the end of a stretch (teardown),
    and only after a recording that stopped normally — an interrupted one that ends before the user left
    lost the end of the conversation. Nothing is tolerated in the middle."""

    join_seconds: float = 3.0
    end_seconds: float = 1.0


@dataclass(frozen=True)
class PolicyUser:
    """A participant of the call whose recording was required, evidently attempted, or not known yet."""

    party: Party
    policy: EffectivePolicyAt

    @property
    def user_id(self) -> str:
        assert self.party.id is not None
        return self.party.id

    @property
    def awaiting_policy(self) -> bool:
        """The coverage audit has not observed this user at all yet: whether they had to be recorded is unknown."""
        return self.policy.snapshot is None and self.policy.pending is None


def must_record(policy: EffectivePolicyAt) -> bool | None:
    """Whether the user had to be recorded at call time: True/False, or None when not known.

    As the snapshot store answers, except for a call before the user's first observation: no change of the
    user's policy was ever seen, so that first observation is the best evidence there is (the verdict's
    `policy.certain` stays false). Without this, every call placed before the first audit after a deployment
    would be judged on a "change in flight" that never happened."""
    first = policy.pending
    if policy.snapshot is None and first is not None and first.changed_after is None:
        return first.effective.records
    return policy.must_record


def policy_users(
    call: CallRecord, policies: Mapping[str, EffectivePolicyAt], recorded_users: Iterable[str] = ()
) -> list[PolicyUser]:
    """The call's users who had to be recorded: their effective policy at call time records; or it is not known
    — a change in flight whose two values disagree, a recorder reported on them, or they are of the call's
    tenant and the coverage audit has not observed them yet (their verdict then waits for it)."""
    attempted = set(recorded_users)
    found: dict[str, PolicyUser] = {}
    for party in call.participants:
        if party.kind != "user" or not party.id or party.id in found:
            continue
        policy = policies.get(party.id)
        if policy is None:
            continue
        must = must_record(policy)
        if must is False:
            continue
        unobserved = policy.snapshot is None and policy.pending is None
        ours = party.tenant_id is not None and party.tenant_id == call.tenant_id
        if unobserved and party.id not in attempted and not ours:
            continue  # a user of no known tenant whom no audit will ever observe: not ours to wait for
        found[party.id] = PolicyUser(party, policy)
    return [found[key] for key in sorted(found)]


def _span(start: object, end: object) -> Span | None:
    begin, finish = parse_datetime(start), parse_datetime(end)
    if begin is None or finish is None or finish < begin:
        return None
    return begin, finish


def union(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """`spans` minus `holes` (both unions)."""
    left: list[Span] = []
    for start, end in spans:
        cursor = start
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                left.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < end:
            left.append((cursor, end))
    return left


def seconds(spans: Iterable[Span]) -> float:
    return sum((end - start).total_seconds() for start, end in spans)


def _involves(session: SessionSummary, user_id: str) -> bool:
    return any(
        endpoint is not None and endpoint.identity is not None and endpoint.identity.id == user_id
        for endpoint in (session.caller, session.callee)
    )


def _failed(session: SessionSummary) -> bool:
    return session.failure_info is not None or any(f.reason for f in session.segment_failures)


def presence(call: CallRecord, user: Party) -> tuple[list[Span], bool, str]:
    """The user's time in the call, whether their call/join was blocked at set-up, and the failure text."""
    assert user.id is not None
    sessions = [s for s in call.sessions if _involves(s, user.id)]
    if not sessions and call.type == "peerToPeer":
        sessions = list(call.sessions)  # a P2P call's sessions are the user's even when endpoints are unnamed
    failures = [s for s in sessions if _failed(s)]
    ok = [s for s in sessions if not _failed(s)]
    failure_text = next(
        (
            reason
            for s in failures
            for reason in [s.failure_info.reason if s.failure_info else None, *(f.reason for f in s.segment_failures)]
            if reason
        ),
        "",
    )
    if sessions and not ok:
        return [], True, failure_text
    spans = [span for s in ok if (span := _span(s.start_date_time, s.end_date_time)) is not None]
    if not spans:
        whole = _span(user.joined_at or call.start_date_time, user.left_at or call.end_date_time)
        spans = [whole] if whole else []
    return union(spans), False, failure_text


def captured_spans(record: RecordingRecord) -> list[tuple[Span, bool]]:
    """What a sealed recording covers on the wall clock, from its sealed evidence alone: each sealed part from
    where it starts in the recording for the duration measured by decoding it (never what the recorder said it
    captured), and whether that part was interrupted (salvaged)."""
    if record.status not in SEALED or record.seal is None or record.facts.started_at is None:
        return []
    start = record.facts.started_at
    seal = record.seal
    if not seal.parts:
        return [((start, start + timedelta(seconds=seal.duration_seconds)), _interrupted(record))]
    spans = []
    for part in seal.parts:
        begin = start + timedelta(seconds=part.first_sample / part.sample_rate)
        spans.append(((begin, begin + timedelta(seconds=part.duration_seconds)), part.interrupted))
    return spans


def recordings_for(user_id: str, call: CallRecord, records: Iterable[RecordingRecord]) -> list[RecordingRecord]:
    """The recordings of `user_id` in this call: those tied to it — the recorder kept the call chain id of the
    call it was invited to, and a call record's id is that call chain id (Graph, *Get callRecord*: "You can get
    the id of a callRecord in two ways: … Use the callChainId property of a call") — and, as a fallback, those
    that carry no chain id at all, by observed user and time overlap (the verdict then says so).

    A recording of another chain is never taken, however it overlaps the call: a person in two calls at once (a
    turret line, a call queue, a call on hold during a meeting) would have their unrecorded call judged recorded
    from the other's recording. Graph's call records FAQ says the chain id "can differ from the call record ID in
    certain scenarios, such as transfer calls"; nothing in such a recording ties it to this call, so it is not
    credited: at worst a `missing` verdict a reviewer clears, never a false `recorded`."""
    window = _span(call.start_date_time, call.end_date_time)
    chosen: dict[str, RecordingRecord] = {}
    for record in records:
        observed = record.facts.observed_user
        if observed is None or observed.id != user_id:
            continue
        chain = record.facts.call_chain_id
        if chain == call.id:
            chosen[record.id] = record
            continue
        start = record.facts.started_at
        if chain or window is None or start is None:
            continue
        end = record.facts.ended_at or start
        if start < window[1] and end > window[0]:
            chosen[record.id] = record
    return [chosen[key] for key in sorted(chosen)]


def _time_only_note(call: CallRecord, records: Iterable[RecordingRecord]) -> str:
    """What the verdict says of the recordings `recordings_for` took by the fallback, by time alone (empty when
    every recording is tied to the call by its chain id)."""
    loose = [r for r in records if r.facts.call_chain_id != call.id]
    if not loose:
        return ""
    ids = ", ".join(r.id for r in loose)
    what = f"recording {ids} carries" if len(loose) == 1 else f"recordings {ids} carry"
    return f"{what} no call chain id: matched to this call by observed user and time alone"


@dataclass(frozen=True)
class Assessment:
    verdict: VerdictState
    reason: VerdictReason
    detail: str
    coverage: float
    recorded: float
    gaps: list[Span]
    presence: list[Span]
    blocked: bool


@dataclass(frozen=True)
class Gap:
    """One unrecorded stretch of the user's presence, and where it sits in its stretch of presence."""

    span: Span
    at_join: bool  # starts when the user joined (the recorder was not there yet)
    at_leave: bool  # ends when the user left
    after_interruption: bool  # follows a recording that was interrupted

    @property
    def seconds(self) -> float:
        return seconds([self.span])

    def tolerated(self, tolerance: Tolerance) -> bool:
        if self.seconds < RESOLUTION_SECONDS:
            return True
        if self.at_join:
            return self.seconds <= tolerance.join_seconds
        if self.at_leave and not self.after_interruption:
            return self.seconds <= tolerance.end_seconds
        return False


def _continuing(record: RecordingRecord) -> bool:
    return any(c.status not in ("sealed", "not_recorded") for c in record.continuations)


def _interrupted(record: RecordingRecord) -> bool:
    return bool(record.seal and record.seal.interrupted) or record.status == "salvaged"


def classify(present: Sequence[Span], records: Sequence[RecordingRecord]) -> list[Gap]:
    """Every unrecorded stretch of `present`, placed: at a join, at a leave, after an interrupted recording."""
    spans = [(span, interrupted) for r in records for span, interrupted in captured_spans(r)]
    captured = union(span for span, _ in spans)
    gaps: list[Gap] = []
    for stretch in present:
        for gap in subtract([stretch], captured):
            before = [interrupted for (_, end), interrupted in spans if end == gap[0]]
            gaps.append(
                Gap(
                    span=gap,
                    at_join=gap[0] == stretch[0],
                    at_leave=gap[1] == stretch[1],
                    # a normal stop at the same moment explains the end as well as teardown does
                    after_interruption=bool(before) and all(before),
                )
            )
    return gaps


def report_due(call: CallRecord, grace: timedelta) -> datetime | None:
    """Until when a recorder's report on the call may still come: the call's end plus `grace` (None without a grace
    or an end time: judged at once)."""
    end = parse_datetime(call.end_date_time)
    if end is None or grace <= timedelta(0):
        return None
    return end + grace


def assess(
    call: CallRecord,
    user: PolicyUser,
    records: Sequence[RecordingRecord],
    tolerance: Tolerance,
    awaiting_report_until: datetime | None = None,
) -> Assessment:
    """`awaiting_report_until`: the grace for a recorder's report has not ended (see `report_due`)."""
    present, blocked, failure_text = presence(call, user.party)
    captured = union(span for r in records for span, _ in captured_spans(r))
    expected = seconds(present)
    classified = classify(present, records)
    gaps = [g.span for g in classified]
    missing = seconds(gaps)
    recorded = max(0.0, expected - missing)
    coverage = 1.0 if expected == 0 and captured else (recorded / expected if expected > 0 else 0.0)
    # A recording whose continuation (what its recorder captured after a salvage) is not sealed yet is not final.
    pending = [r for r in records if (r.status not in FINAL or _continuing(r)) and not _rejected(r)]
    untolerated = [g for g in classified if not g.tolerated(tolerance)]

    if user.awaiting_policy and not records:
        # No recorder reported on the user and their policy is not known: no verdict can be given yet, and
        # none must be lost. The next audit that writes snapshots (or the daily run) decides it.
        detail = "the coverage audit has not observed this user yet: whether the call had to be recorded is not known"
        return Assessment("pending", "policy_unknown", detail, coverage, recorded, gaps, present, blocked)

    if awaiting_report_until is not None and not records and not blocked:
        # No recorder has reported on the user yet, but its report may still be on its way: the call record can
        # come first (a queue backlog, a Functions host restarting). Judged when the grace ends; no alert until then.
        detail = (
            "no recorder has reported on this user's call yet; judged at "
            f"{format_datetime(awaiting_report_until)} if none has by then"
        )
        return Assessment("pending", "awaiting_recorder_report", detail, coverage, recorded, gaps, present, blocked)

    if expected > 0 and recorded > 0 and not untolerated:
        lacking = modalities_not_captured(call, user.policy, records)
        covered = 1.0 if missing == 0 else coverage
        if not lacking:
            return Assessment("recorded", "recorded", "", covered, recorded, [], present, False)
        if not pending:  # a recording still being sealed may hold what is lacking
            detail = _modality_detail(lacking, user.policy, records)
            return Assessment("partial", "modality_not_captured", detail, covered, recorded, [], present, False)
    if pending:
        ids = ", ".join(r.id for r in pending)
        return Assessment(
            "pending",
            "recording_pending",
            f"recording {ids} is {'being continued' if _continuing(pending[0]) else pending[0].status}",
            coverage,
            recorded,
            gaps,
            present, blocked,
        )  # fmt: skip
    state: VerdictState = "partial" if recorded >= EVIDENCE_FLOOR_SECONDS else "missing"
    reason, detail = _reason(records, blocked, failure_text, captured, untolerated, user)
    return Assessment(state, reason, detail, coverage, recorded, gaps, present, blocked)


# The modalities a capture policy can require beyond the audio, with the words a reviewer reads.
JUDGED_MODALITIES = {"video": "video (cameras)", "videoBasedScreenSharing": "screen sharing (videoBasedScreenSharing)"}


def required_modalities(policy: EffectivePolicyAt) -> list[str]:
    """What the user's policy at call time says their calls must capture (audio only when it says nothing)."""
    snapshot = policy.snapshot or policy.pending
    return list(snapshot.effective.capture) if snapshot is not None else ["audio"]


def call_modalities(call: CallRecord) -> set[str]:
    """The modalities the call record says the call had: the call's and every session's."""
    return {*call.modalities, *(modality for session in call.sessions for modality in session.modalities)}


def captured_modalities(records: Sequence[RecordingRecord]) -> set[str] | None:
    """The modalities the user's sealed recordings hold; None when a seal predates the record of them."""
    captured: set[str] = set()
    for record in records:
        if record.status not in SEALED or record.seal is None:
            continue
        if record.seal.modalities is None:
            return None
        captured.update(record.seal.modalities)
    return captured


def modalities_not_captured(
    call: CallRecord, policy: EffectivePolicyAt, records: Sequence[RecordingRecord]
) -> list[str]:
    """The video modalities the user's policy requires, the call had, and no sealed recording of the user holds.
    Judged only when the call record names the modality: a call without a screen share needs none."""
    captured = captured_modalities(records)
    if captured is None:
        return []
    had = call_modalities(call)
    return [m for m in required_modalities(policy) if m in JUDGED_MODALITIES and m in had and m not in captured]


def _modality_detail(lacking: Sequence[str], policy: EffectivePolicyAt, records: Sequence[RecordingRecord]) -> str:
    snapshot = policy.snapshot or policy.pending
    name = snapshot.effective.policy_name if snapshot is not None else None
    what = " and ".join(JUDGED_MODALITIES[m] for m in lacking)
    sealed = [r for r in records if r.status in SEALED and r.seal is not None]
    held = sorted(captured_modalities(sealed) or {"audio"})
    told = sorted({m for r in sealed if r.facts.capture is not None for m in r.facts.capture})
    text = (
        f"the call had {what}, which policy {name or '(unnamed)'} requires, and no sealed recording of the user "
        f"holds it: {', '.join(r.id for r in sealed)} captured {', '.join(held)}"
    )
    if told:
        text += f" (the recorder was told to capture {', '.join(told)})"
    return text


def _rejected(record: RecordingRecord) -> bool:
    return record.status in ("failed", "not_recorded") and (record.failure_stage in REJECTED_STAGES)


def _reason(
    records: Sequence[RecordingRecord],
    blocked: bool,
    failure_text: str,
    captured: Sequence[Span],
    untolerated: Sequence[Gap],
    user: PolicyUser,
) -> tuple[VerdictReason, str]:
    rejected = [r for r in records if _rejected(r) or (r.status == "not_recorded" and r.failure_stage is None)]
    if rejected:
        first = rejected[0]
        what = f"recorder {first.facts.recorder_instance} reported {first.failure_stage or first.status}"
        because = first.failure_reason or "; ".join(first.problems)
        blocked_text = " — the call was blocked at set-up" if blocked else ""
        return "recorder_rejected", f"{what}: {because}{blocked_text}".strip()
    if blocked:
        return "call_blocked_by_policy", failure_text or "the user's call failed at set-up with no recorder present"
    crashed = [r for r in records if _interrupted(r) or r.failure_stage in CRASH_STAGES]
    if crashed:
        first = crashed[0]
        because = first.failure_reason or (
            "the recorder went silent; staged audio was salvaged" if first.seal and first.seal.interrupted else ""
        )
        lost = sum(g.seconds for g in untolerated)
        return "recorder_crashed", f"recording {first.id} was interrupted: {because}".rstrip(": ") + (
            f"; {lost:.1f} s of the user's presence not recorded" if lost else ""
        )
    if captured and untolerated:
        late = sum(g.seconds for g in untolerated if g.at_join)
        early = sum(g.seconds for g in untolerated if g.at_leave and not g.at_join)
        middle = sum(g.seconds for g in untolerated if not g.at_join and not g.at_leave)
        if late and late >= early:
            return "recorder_joined_late", f"recording started {late:.1f} s after the user joined"
        if early:
            return "recording_ended_early", f"recording stopped {early:.1f} s before the user left"
        return "unknown", f"recordings do not cover {middle:.1f} s in the middle of the user's presence"
    if user.policy.pending is not None and must_record(user.policy) is None:
        return "policy_change_pending", "the call fell in the propagation window of a change of the user's policy"
    return "no_invitation", "no recorder reported on this call: the recorder was not invited (or never reported)"


def span_model(span: Span) -> TimeSpan:
    start, end = span
    return TimeSpan(start=format_datetime(start), end=format_datetime(end), seconds=round(seconds([span]), 3))


def verdict_id(call_id: str, user_id: str) -> str:
    return f"{call_id}:{user_id}"


def policy_at_call(policy: EffectivePolicyAt) -> PolicyAtCall:
    snapshot = policy.snapshot or policy.pending  # before the first observation: that observation (uncertain)
    effective = snapshot.effective if snapshot is not None else None
    return PolicyAtCall(
        policy_name=effective.policy_name if effective else None,
        strict=effective.strict if effective else False,
        source=effective.source if effective else None,
        certain=policy.known,
    )


def build_verdict(
    call: CallRecord,
    user: PolicyUser,
    records: Sequence[RecordingRecord],
    *,
    tolerance: Tolerance,
    evaluated_at: datetime,
    report_grace: timedelta = timedelta(0),
) -> Verdict:
    """The user's verdict on `records`, as of `evaluated_at`; with a `report_grace`, a user no recorder reported on
    is `pending` (`awaiting_recorder_report`) until the grace after the call's end has passed."""
    due = report_due(call, report_grace)
    assessment = assess(call, user, records, tolerance, due if due is not None and evaluated_at < due else None)
    start = parse_datetime(call.start_date_time)
    present = assessment.presence
    explained = assessment.verdict in ("partial", "missing") and (
        assessment.blocked or assessment.reason in EXPLAINED_REASONS
    )
    return Verdict(
        id=verdict_id(call.id, user.user_id),
        call_id=call.id,
        call_record_version=call.version,
        user_id=user.user_id,
        user_principal_name=user.party.user_principal_name
        or (
            observed.effective.user_principal_name
            if (observed := user.policy.snapshot or user.policy.pending)
            else None
        ),
        display_name=user.party.display_name,
        tenant_id=user.party.tenant_id or call.tenant_id,
        day=(start.date().isoformat() if start else (call.start_date_time or "unknown")[:10]),
        call_type=call.type,
        call_start=call.start_date_time,
        call_end=call.end_date_time,
        presence=span_model((present[0][0], present[-1][1])) if present else None,
        verdict=assessment.verdict,
        coverage=round(min(1.0, max(0.0, assessment.coverage)), 4),
        recorded_seconds=round(assessment.recorded, 3),
        gaps=[span_model(gap) for gap in assessment.gaps],
        recording_ids=[r.id for r in records],
        reason=assessment.reason,
        reason_detail="; ".join(part for part in (assessment.detail, _time_only_note(call, records)) if part),
        call_blocked=assessment.blocked,
        explained=explained,
        policy=policy_at_call(user.policy),
        evaluated_at=format_datetime(evaluated_at),
    )
