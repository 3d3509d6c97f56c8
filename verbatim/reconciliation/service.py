"""The reconciliation service: what the `reconciliation-requests` queue trigger calls.

`callrecord.stored` (a new call-record version) re-evaluates that call; `recording.indexed` (a recording
sealed or given up) re-evaluates every call the recording may belong to, so a late recording updates the
verdict it completes; `policies.observed` (the coverage audit wrote policy snapshots) re-evaluates the calls
with a verdict waiting for a user's policy — a user the audit had not observed when the call was evaluated
gets a `pending` verdict (`policy_unknown`), never none, and it is decided or withdrawn (not a policy user
after all) once the policy is known; `recorder-report.grace-ended` re-evaluates a call whose verdict waited
for a recorder's report — a user no recorder has reported on is `pending` (`awaiting_recorder_report`), not
`missing`, until the grace after the call's end has passed (the report may be in a queue backlog), and the
evaluation that decides so puts that message on the queue, visible when the grace ends. All of them read the
newest call record, recording records and snapshots, so messages may come twice and in any order: the
verdicts converge. Each evaluation also refreshes the search entries of the call's recordings, with the UPNs
the recorder could not report (from the call record, else the policy snapshots). A verdict that becomes
missing or partial raises an alert (an `alert` record in the Cosmos `audit` container and a WARNING log
line); one that becomes recorded again raises a `reconciliation.resolved` record.

One event is one batch (`EventReads`): the calls it re-evaluates share their reads — each user's policy
snapshots are read once (the history, answered in memory for every moment), each user's recordings once for
a window covering all its calls — and every recording's search entry is written once, after the last call,
with what that call decided. So an event costs store operations linear in the calls it concerns: a trader
with n overlapping calls no longer costs n² index writes per late recording. Within a call, the participants'
policy histories are one read, their recordings and the call chain's one read, and the call's verdicts one
read whose etags the verdict writes use: a stored version of a meeting costs four reads whatever its size,
and writes only what changed.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from verbatim.callrecords.store import CallRecordStore
from verbatim.contracts.api import ReevaluationSummary
from verbatim.contracts.callrecords import CallRecord, CallRecordStored
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.policy import EffectivePolicyAt, PolicySnapshot
from verbatim.contracts.reconciliation import PoliciesObserved, RecorderReportGraceEnded, RecordingIndexed, Verdict
from verbatim.ledger.access import AccessLog
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import Conflict, InvalidInput
from verbatim.platform.logging import correlation
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime, parse_datetime, utcnow
from verbatim.policy.snapshots import PolicySnapshotStore, answer
from verbatim.reconciliation.evaluate import (
    RECORDER_REPORT_GRACE,
    Tolerance,
    build_verdict,
    policy_users,
    recordings_for,
    report_due,
)
from verbatim.reconciliation.store import (
    CallVerdicts,
    RecordingFinder,
    SavedVerdict,
    StaleEvaluation,
    VerdictQuery,
    VerdictStore,
)

log = logging.getLogger(__name__)

ReconciliationRequest = CallRecordStored | RecordingIndexed | PoliciesObserved | RecorderReportGraceEnded
# Call records live 30 days: a verdict still waiting for a policy after that cannot be re-evaluated anyway.
AWAITING_POLICY_DAYS = 30
# How many times a call is evaluated again when another evaluation wrote one of its verdicts meanwhile.
STALE_ATTEMPTS = 5
# Calls (and users) read together by one prefetch: one ARRAY_CONTAINS parameter each.
_IDS_PER_READ = 100
# `recorder-report.grace-ended` becomes visible this long after the grace ends, so that the evaluation it asks for
# comes after it (one that still comes early, on a storage clock ahead of ours, only schedules another).
DUE_MARGIN_SECONDS = 5
# The `pending` verdicts withdrawn when their user turns out not to be a policy user (none of them ever alerted).
_WITHDRAWABLE = frozenset({"policy_unknown", "awaiting_recorder_report"})


class SearchIndexer(Protocol):
    """The search index reconciliation keeps current (verbatim.search.index.RecordingIndex)."""

    def put(
        self,
        record: RecordingRecord,
        verdicts: Sequence[Verdict] | None = None,
        upns: Mapping[str, str] | None = None,
    ) -> object: ...


def parse_request(body: str | bytes) -> ReconciliationRequest:
    """A `reconciliation-requests` message: `callrecord.stored`, `recording.indexed`, `policies.observed` or
    `recorder-report.grace-ended`, told apart by `schema`."""
    try:
        data: Any = json.loads(body)
    except ValueError as error:
        raise InvalidInput("a reconciliation request must be JSON") from error
    schema = data.get("schema") if isinstance(data, dict) else None
    try:
        if schema == "recording.indexed":
            return RecordingIndexed.model_validate(data)
        if schema == "callrecord.stored":
            return CallRecordStored.model_validate(data)
        if schema == "policies.observed":
            return PoliciesObserved.model_validate(data)
        if schema == "recorder-report.grace-ended":
            return RecorderReportGraceEnded.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"invalid {schema} message: {error.error_count()} errors") from error
    raise InvalidInput(f"unknown reconciliation request schema {schema!r}")


class EventReads:
    """What the calls of one event share: policy snapshots and recordings read once, and the search entries to
    write once the last call is decided (the entry a later call gives a recording replaces an earlier one)."""

    def __init__(self, snapshots: PolicySnapshotStore, recordings: RecordingFinder) -> None:
        self._snapshots = snapshots
        self._recordings = recordings
        self._history: dict[str, list[PolicySnapshot]] = {}
        self._windows: dict[str, tuple[datetime, datetime, list[RecordingRecord]]] = {}
        self._chains: dict[str, list[RecordingRecord]] = {}
        self._calls: dict[str, CallRecord | None] = {}
        self._known: dict[str, CallVerdicts] = {}
        self.index: dict[str, tuple[RecordingRecord, list[Verdict] | None, dict[str, str]]] = {}

    def prefetch(self, calls: CallRecordStore, verdicts: VerdictStore, call_ids: Sequence[str]) -> None:
        """Read what evaluating `call_ids` needs in one request per kind, whatever their number: the call records,
        their verdicts, their participants' policy histories, and their chains' and participants' recordings
        (a window covering every call). The evaluations then read only what this could not cover."""
        ids = sorted(set(call_ids))
        records = calls.get_many(ids)
        self._calls.update({call_id: records.get(call_id) for call_id in ids})
        self._known.update(verdicts.read_calls(sorted(records)))
        users = sorted({p.id for record in records.values() for p in record.participants if p.kind == "user" and p.id})
        self.read_policies(users)
        spans = [
            (record.id, start, end)
            for record in records.values()
            if (start := parse_datetime(record.start_date_time)) is not None
            and (end := parse_datetime(record.end_date_time)) is not None
        ]
        if not spans or len(spans) > _IDS_PER_READ or len(users) > _IDS_PER_READ:
            return  # each evaluation reads its own (a batch this large is rare: a few very large meetings)
        low, high = self._window(min(s for _, s, _ in spans), max(e for _, _, e in spans), users)
        found = self._recordings.for_calls([chain for chain, _, _ in spans], users, low, high)
        for user in users:
            self._windows[user] = (low, high, [r for r in found if _observed(r) == user])
        for chain, _, _ in spans:
            self._chains[chain] = [r for r in found if r.facts.call_chain_id == chain]

    def prefetched_call(self, call_id: str) -> tuple[bool, CallRecord | None]:
        """(True, the record or None when absent) if `prefetch` read `call_id`; (False, None) otherwise."""
        if call_id in self._calls:
            return True, self._calls[call_id]
        return False, None

    def take_known(self, call_id: str) -> CallVerdicts | None:
        """The call's verdicts as `prefetch` read them, once: a second evaluation of the call in the same event
        reads them afresh (the first may have written since)."""
        return self._known.pop(call_id, None)

    def _snapshots_of(self, user_id: str) -> list[PolicySnapshot]:
        history = self._history.get(user_id)
        if history is None:
            history = self._history[user_id] = self._snapshots.history(user_id)
        return history

    def read_policies(self, user_ids: Sequence[str]) -> None:
        """Read the policy histories of every user not read yet, in one request (a call's participants)."""
        missing = sorted({user_id for user_id in user_ids if user_id not in self._history})
        if len(missing) > 1:
            self._history.update(self._snapshots.histories(missing))

    def effective_at(self, user_id: str, at: datetime) -> EffectivePolicyAt:
        """As `PolicySnapshotStore.effective_at`, from the user's history read once."""
        history = self._snapshots_of(user_id)
        position = bisect.bisect_right([snapshot.valid_from for snapshot in history], at)
        before = history[position - 1] if position > 0 else None
        after = history[position] if position < len(history) else None
        return answer(user_id, at, before, after)

    def latest(self, user_id: str) -> PolicySnapshot | None:
        history = self._snapshots_of(user_id)
        return history[-1] if history else None

    def for_observed_user(self, user_id: str, start: datetime, end: datetime) -> list[RecordingRecord]:
        """A superset of the user's recordings that may overlap [start, end]: one read covers the windows of
        every call of the event that falls inside it (a day either side), the callers filter exactly."""
        cached = self._windows.get(user_id)
        if cached is not None and cached[0] <= start and end <= cached[1]:
            return cached[2]
        low, high = self._window(start, end, [user_id])
        records = self._recordings.for_observed_user(user_id, low, high)
        self._windows[user_id] = (low, high, records)
        return records

    def for_call(
        self, call_chain_id: str, user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[RecordingRecord]:
        """The recordings of the call chain and of each user's that may overlap [start, end], in one read for
        the users whose window is not read yet (and the chain)."""
        users = sorted(set(user_ids))
        missing = [
            user
            for user in users
            if (cached := self._windows.get(user)) is None or not (cached[0] <= start and end <= cached[1])
        ]
        found: dict[str, RecordingRecord] = {}
        chain = self._chains.get(call_chain_id)
        if chain is not None and not missing:
            found.update((r.id, r) for r in chain)
        elif missing:
            low, high = self._window(start, end, missing)
            records = self._recordings.for_call(call_chain_id, missing, low, high)
            for user in missing:
                self._windows[user] = (low, high, [r for r in records if _observed(r) == user])
            found.update((r.id, r) for r in records if r.facts.call_chain_id == call_chain_id)
        else:
            found.update((r.id, r) for r in self._recordings.for_call_chain(call_chain_id))
        for user in users:
            found.update((r.id, r) for r in self._windows[user][2])
        return [found[key] for key in sorted(found)]

    def _window(self, start: datetime, end: datetime, users: Sequence[str]) -> tuple[datetime, datetime]:
        """[start, end] a day either side, widened to what was read before for these users."""
        low, high = start - timedelta(days=1), end + timedelta(days=1)
        for user in users:
            cached = self._windows.get(user)
            if cached is not None:
                low, high = min(low, cached[0]), max(high, cached[1])
        return low, high

    def index_later(
        self, record: RecordingRecord, verdicts: list[Verdict] | None, upns: dict[str, str], *, keep: bool = False
    ) -> None:
        """Index `record` at the end of the event; with `keep`, only if nothing else indexes it."""
        if keep and record.id in self.index:
            return
        self.index[record.id] = (record, verdicts, upns)


@dataclass(frozen=True)
class CallOutcome:
    call_id: str
    verdicts: list[Verdict] = field(default_factory=list)
    changed: int = 0
    alerts: int = 0
    found: bool = True


class Reconciler:
    def __init__(
        self,
        *,
        calls: CallRecordStore,
        snapshots: PolicySnapshotStore,
        recordings: RecordingFinder,
        verdicts: VerdictStore,
        alerts: AuditLog,
        index: SearchIndexer | None = None,
        tolerance: Tolerance | None = None,
        clock: Callable[[], datetime] = utcnow,
        requests: MessageQueue | None = None,
        report_grace: timedelta = RECORDER_REPORT_GRACE,
    ) -> None:
        """`requests`: the `reconciliation-requests` queue, on which a call whose verdict waits for a recorder's
        report asks for its re-evaluation when `report_grace` ends (without it, the daily report re-evaluates it)."""
        self.calls = calls
        self.snapshots = snapshots
        self.recordings = recordings
        self.verdicts = verdicts
        self.alerts = alerts
        self.index = index
        self.tolerance = tolerance or Tolerance()
        self.clock = clock
        self.requests = requests
        self.report_grace = report_grace

    def handle(self, request: ReconciliationRequest) -> list[CallOutcome]:
        if isinstance(request, CallRecordStored | RecorderReportGraceEnded):
            return [self.reconcile_call(request.call_record_id)]
        if isinstance(request, PoliciesObserved):
            return self.reevaluate_awaiting_policy()
        return self.recording_indexed(request.recording_id)

    def handle_many(self, requests: Sequence[ReconciliationRequest]) -> list[list[CallOutcome] | Exception]:
        """Handle several requests (the messages of concurrent trigger invocations), each answer in its place: an
        outcome list, or the exception that request raised. The `callrecord.stored` ones (and
        `recorder-report.grace-ended`: each names a call too) are one event — their
        calls' records, verdicts, policies and recordings read together (`EventReads.prefetch`), a call named
        twice evaluated once, every search entry written once — and the others are handled one by one. If the
        batch fails, each of its requests is handled again alone, so a request that cannot be handled fails
        alone and the others succeed (re-evaluating is idempotent: whatever the batch wrote is found unchanged)."""
        answers: list[list[CallOutcome] | Exception | None] = [None] * len(requests)
        stored = [(n, r) for n, r in enumerate(requests) if isinstance(r, CallRecordStored | RecorderReportGraceEnded)]
        if len(stored) > 1:
            try:
                event = self._event()
                ids = sorted({r.call_record_id for _, r in stored})
                event.prefetch(self.calls, self.verdicts, ids)
                outcomes = {call_id: self._reconcile_call(call_id, event) for call_id in ids}
                self._write_index(event)
            except Exception:
                log.warning("a batch of reconciliation requests failed; handling them one by one", exc_info=True)
            else:
                for n, request in stored:
                    answers[n] = [outcomes[request.call_record_id]]
        for n, alone in enumerate(requests):
            if answers[n] is None:
                answers[n] = self._attempt(alone)
        return [answer for answer in answers if answer is not None]

    def _attempt(self, request: ReconciliationRequest) -> list[CallOutcome] | Exception:
        try:
            return self.handle(request)
        except Exception as error:  # the caller raises it in the invocation whose message this is
            return error

    def _event(self) -> EventReads:
        return EventReads(self.snapshots, self.recordings)

    def _write_index(self, event: EventReads) -> None:
        if self.index is None:
            return
        for record, verdicts, upns in event.index.values():
            self.index.put(record, verdicts, upns)
        event.index.clear()

    # --- one call ---------------------------------------------------------------------------------------

    def reconcile_call(self, call_id: str) -> CallOutcome:
        event = self._event()
        outcome = self._reconcile_call(call_id, event)
        self._write_index(event)
        return outcome

    def _reconcile_call(self, call_id: str, event: EventReads) -> CallOutcome:
        with correlation(call_id=call_id):
            prefetched, call = event.prefetched_call(call_id)
            if not prefetched:
                call = self.calls.get(call_id)
            reads = event
            for _ in range(STALE_ATTEMPTS):
                if call is None:
                    log.warning("reconciliation: no stored call record", extra={"call_record_id": call_id})
                    return CallOutcome(call_id, found=False)
                try:
                    outcome = self._reconcile(call, reads)
                except StaleEvaluation as stale:
                    # Another evaluation wrote one of the call's verdicts after this one read them, maybe on
                    # newer facts (a recording sealed meanwhile): decide again, every read afresh.
                    log.info(
                        "a verdict changed while its call was evaluated; evaluating it again",
                        extra={"verdict_id": stale.verdict.id},
                    )
                    reads = self._event()
                    call = self.calls.get(call_id)
                    continue
                if reads is not event:
                    event.index.update(reads.index)  # written with the event's other search entries
                return outcome
            raise Conflict(f"call {call_id}: its verdicts changed during each of {STALE_ATTEMPTS} evaluations")

    def _reconcile(self, call: CallRecord, event: EventReads) -> CallOutcome:
        # The verdicts first, then what they are decided on: a write then fails (StaleEvaluation) if another
        # evaluation wrote one since, whose facts may be newer than the recordings read here.
        known = event.take_known(call.id) or self.verdicts.read_call(call.id)
        candidates = self._candidate_recordings(call, event)
        attempted = {r.facts.observed_user.id for r in candidates if r.facts.observed_user and r.facts.observed_user.id}
        event.read_policies([party.id for party in call.participants if party.kind == "user" and party.id])
        policies: dict[str, EffectivePolicyAt] = {}
        for party in call.participants:
            if party.kind != "user" or not party.id or party.id in policies:
                continue
            if party.tenant_id and call.tenant_id and party.tenant_id != call.tenant_id:
                continue  # another tenant's user: our policies do not apply to them
            at = parse_datetime(party.joined_at or call.start_date_time)
            if at is None:
                continue
            policies[party.id] = event.effective_at(party.id, at)
        users = policy_users(call, policies, attempted)
        now = self.clock()
        saved: list[SavedVerdict] = []
        for user in users:
            matched = recordings_for(user.user_id, call, candidates)
            verdict = build_verdict(
                call, user, matched, tolerance=self.tolerance, evaluated_at=now, report_grace=self.report_grace
            )
            result = self.verdicts.save(verdict, known)
            saved.append(result)
            if result.changed:
                self._alert(result)
        self._withdraw_unneeded(known, {u.user_id for u in users})
        verdicts = [s.verdict for s in saved]
        if any(v.reason == "awaiting_recorder_report" for v in verdicts):
            self._reevaluate_when_grace_ends(call, now)
        if self.index is not None:
            upns = call_upns(call, policies)
            for record in candidates:
                if any(record.id in v.recording_ids for v in verdicts) or record.facts.call_chain_id == call.id:
                    event.index_later(record, verdicts, {**self._observed_upn(record, event), **upns})
        changed = sum(1 for s in saved if s.changed)
        alerts = sum(1 for s in saved if s.changed and s.verdict.verdict in ("missing", "partial"))
        log.info(
            "call reconciled",
            extra={"version": call.version, "policy_users": len(users), "changed": changed, "alerts": alerts},
        )
        return CallOutcome(call.id, verdicts, changed, alerts)

    def _reevaluate_when_grace_ends(self, call: CallRecord, now: datetime) -> None:
        """Put `recorder-report.grace-ended` on the queue, visible when the grace for a recorder's report on `call`
        ends. Sent by every evaluation that leaves a verdict waiting (a redelivery too: re-evaluating is
        idempotent, so a second message costs one evaluation), and a failure to send raises, so the message that
        asked for this evaluation is retried rather than the re-evaluation lost. Should it be lost all the same
        (poisoned), the daily report re-evaluates every verdict that is not `recorded`."""
        due = report_due(call, self.report_grace)
        if due is None:
            return
        if self.requests is None:
            log.warning("no queue to re-evaluate the call when the grace for the recorder's report ends: the daily "
                        "report will", extra={"due_at": format_datetime(due)})  # fmt: skip
            return
        delay = max(0, math.ceil((due - now).total_seconds())) + DUE_MARGIN_SECONDS
        message = RecorderReportGraceEnded(call_record_id=call.id, due_at=format_datetime(due), at=format_datetime(now))
        self.requests.send(message.model_dump_json(by_alias=True), delay_seconds=delay)
        log.info("awaiting a recorder's report on the call", extra={"due_at": message.due_at, "delay_s": delay})

    def _withdraw_unneeded(self, known: CallVerdicts, policy_users: set[str]) -> None:
        """Withdraw the `pending` verdicts of users who, their policy now known, did not have to be recorded (one that
        waited for a recorder's report too: a policy change in flight at call time may resolve to not recording)."""
        for stale in known.ordered():
            if stale.user_id in policy_users or stale.verdict != "pending" or stale.reason not in _WITHDRAWABLE:
                continue
            if self.verdicts.withdraw(stale, known):
                log.info(
                    "verdict withdrawn: the user's policy did not record at call time", extra={"user_id": stale.user_id}
                )

    def reevaluate_awaiting_policy(self) -> list[CallOutcome]:
        """Re-evaluate every call with a verdict waiting for a user's policy (`pending`, `policy_unknown`)."""
        since = format_datetime(self.clock() - timedelta(days=AWAITING_POLICY_DAYS))
        calls: set[str] = set()
        continuation: str | None = None
        while True:
            page, continuation = self.verdicts.query(
                VerdictQuery(start_from=since, verdict="pending", limit=200, continuation=continuation)
            )
            calls.update(v.call_id for v in page if v.reason == "policy_unknown")
            if not continuation or not page:
                break
        log.info("re-evaluating calls waiting for a policy", extra={"calls": len(calls)})
        event = self._event()
        for start in range(0, len(calls), _IDS_PER_READ):
            event.prefetch(self.calls, self.verdicts, sorted(calls)[start : start + _IDS_PER_READ])
        outcomes = [self._reconcile_call(call_id, event) for call_id in sorted(calls)]
        self._write_index(event)
        return outcomes

    def _candidate_recordings(self, call: CallRecord, event: EventReads) -> list[RecordingRecord]:
        start, end = parse_datetime(call.start_date_time), parse_datetime(call.end_date_time)
        if start is None or end is None:
            return sorted(self.recordings.for_call_chain(call.id), key=lambda r: r.id)
        users = [party.id for party in call.participants if party.kind == "user" and party.id]
        return event.for_call(call.id, users, start, end)

    # --- a recording reached a final state ----------------------------------------------------------------

    def recording_indexed(self, recording_id: str) -> list[CallOutcome]:
        """Re-evaluate the calls `recording_id` may belong to; index it even when no call record is known yet."""
        with correlation(recording_id=recording_id):
            record = self.recordings.get(recording_id)
            if record is None:
                log.warning("reconciliation: recording.indexed for an unknown recording")
                return []
            calls = self._calls_of(record)
            event = self._event()
            for start in range(0, len(calls), _IDS_PER_READ):
                event.prefetch(self.calls, self.verdicts, sorted(calls)[start : start + _IDS_PER_READ])
            outcomes = [self._reconcile_call(call_id, event) for call_id in sorted(calls)]
            if self.index is not None and not any(
                recording_id in v.recording_ids for o in outcomes for v in o.verdicts
            ):
                # No call record yet (it comes up to 150 min later): the policy snapshots know the observed
                # user's UPN, so searching by it works from the moment the recording is sealed.
                event.index_later(record, None, self._observed_upn(record, event), keep=True)
            self._write_index(event)
            return outcomes

    def _observed_upn(self, record: RecordingRecord, event: EventReads) -> dict[str, str]:
        """The observed user's UPN from the newest policy snapshot, when the recorder did not report it."""
        observed = record.facts.observed_user
        if observed is None or not observed.id or observed.upn:
            return {}
        latest = event.latest(observed.id)
        upn = latest.effective.user_principal_name if latest is not None else None
        return {observed.id: upn} if upn else {}

    def _calls_of(self, record: RecordingRecord) -> set[str]:
        calls: set[str] = set()
        chain = record.facts.call_chain_id
        if chain and self.calls.state(chain) is not None:
            calls.add(chain)
        observed = record.facts.observed_user.id if record.facts.observed_user else None
        start = record.facts.started_at
        if observed and start is not None:
            end = record.facts.ended_at or start
            window = (format_datetime(start - timedelta(hours=24)), format_datetime(end + timedelta(minutes=1)))
            for verdict in self.verdicts.for_user(observed, *window):
                call_start, call_end = parse_datetime(verdict.call_start), parse_datetime(verdict.call_end)
                if call_start is not None and call_start <= end and (call_end is None or call_end >= start):
                    calls.add(verdict.call_id)
        return calls

    # --- alerts -------------------------------------------------------------------------------------------

    def _alert(self, saved: SavedVerdict) -> None:
        verdict, previous = saved.verdict, saved.previous
        if verdict.verdict in ("missing", "partial"):
            action = f"reconciliation.{verdict.verdict}"
            level = logging.WARNING
        elif verdict.verdict == "recorded" and previous is not None and previous.verdict in ("missing", "partial"):
            action = "reconciliation.resolved"
            level = logging.INFO
        else:
            return
        detail = {
            "callId": verdict.call_id,
            "userId": verdict.user_id,
            "userPrincipalName": verdict.user_principal_name,
            "verdict": verdict.verdict,
            "previousVerdict": previous.verdict if previous else None,
            "reason": verdict.reason,
            "reasonDetail": verdict.reason_detail,
            "explained": verdict.explained,
            "coverage": verdict.coverage,
            "callRecordVersion": verdict.call_record_version,
            "recordingIds": verdict.recording_ids,
            "callStart": verdict.call_start,
        }
        self.alerts.record(
            AuditEvent(
                category="alert",
                action=action,
                actor="system",
                target=f"verdict:{verdict.id}",
                detail=detail,
                at=self.clock(),
                event_id=_alert_id(verdict, action),
            )
        )
        # The operators' alert (infra/modules/alerts.bicep) looks for the first message.
        message = (
            "policy user's call not fully recorded"
            if action != "reconciliation.resolved"
            else "policy user's call now recorded"
        )
        log.log(
            level, message, extra={"alert": action, **{k: v for k, v in detail.items() if k not in ("recordingIds",)}}
        )


def call_upns(call: CallRecord, policies: Mapping[str, EffectivePolicyAt]) -> dict[str, str]:
    """Object id → UPN of the call's users: as the call record names them, else as the policy snapshots do."""
    found: dict[str, str] = {}
    for user_id, policy in policies.items():
        snapshot = policy.snapshot or policy.pending
        if snapshot is not None and snapshot.effective.user_principal_name:
            found[user_id] = snapshot.effective.user_principal_name
    for party in call.participants:
        if party.kind == "user" and party.id and party.user_principal_name:
            found[party.id] = party.user_principal_name
    return found


def _observed(record: RecordingRecord) -> str | None:
    return record.facts.observed_user.id if record.facts.observed_user is not None else None


def _alert_id(verdict: Verdict, action: str) -> str:
    # Deterministic: the same alert raised again by a redelivered message is stored once.
    return f"{action}:{verdict.id}:{verdict.reason}:v{verdict.call_record_version}".replace("/", "_")


def reevaluate_for_admin(
    reconciler: Reconciler, access: AccessLog, principal: Principal, call_id: str
) -> ReevaluationSummary:
    """`POST /v1/admin/reconciliation/calls/{id}` for Recorder.Admin, who operates the system but never sees
    who was in a call: the number of verdicts and how many are in each state, and the read is recorded."""
    outcome = reconciler.reconcile_call(call_id)
    states: dict[str, int] = {}
    for verdict in outcome.verdicts:
        states[verdict.verdict] = states.get(verdict.verdict, 0) + 1
    access.record(
        principal,
        "reconciliation.reevaluate",
        f"call:{call_id[:256]}",
        None,
        {"found": outcome.found, "changed": outcome.changed, "verdicts": len(outcome.verdicts)},
    )
    return ReevaluationSummary(
        call_id=outcome.call_id,
        found=outcome.found,
        changed=outcome.changed,
        verdicts=len(outcome.verdicts),
        states=states,
    )
