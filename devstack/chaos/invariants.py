"""The promises a chaos run checks once traffic has stopped and the stack has settled, each judged from what the
stack itself reports (the compliance API, storage, the Durable HTTP API, the queues) against what the traffic did
and what the fault log says happened:

- every placed call ended, and every policy user in it has a final verdict (not `pending`);
- a verdict other than `recorded` is explained by a fault on a recorder during the call, with a reason that fault
  can cause; a user the simulator blocked at set-up is `missing` with `call_blocked_by_policy`, explained by a
  recorder fault or a storage outage (the recorder is not ready without storage); no other fault (Cosmos, the
  Functions host, Graph errors, lost or doubled notifications) may cost any recording;
- users no policy records get no verdict;
- each verdict's coverage is the coverage of its sealed evidence, and `recorded` misses no more than the
  completeness rule tolerates at the presence's edges;
- `verbatim verify` passes for every recording a verdict names, and `verbatim ledger verify` for the ledger;
- every sample a recorder says it captured is sealed;
- no recording orchestration is still running or failed; no message sits in a poison queue but those a fault put
  on a queue as poison.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devstack.chaos.faults import FaultRecord
from devstack.chaos.traffic import PlacedCall
from devstack.demo import CallResult, DemoError, DemoStack
from devstack.funchost.state import load_or_create_keys
from devstack.testkit import evidence
from verbatim.platform import layout
from verbatim.reconciliation.evaluate import Tolerance

COVERAGE_TOLERANCE = 0.005
VERIFY_WORKERS = 3
EDGE_TOLERANCE = Tolerance()  # the production defaults, which the local stack runs with
# A fault on a recorder touches the calls up before it (media) and those ending shortly before (their teardown:
# the last blocks and the `stopped` event).
RECORDER_FAULT_REACH = timedelta(seconds=10)
# What a recorder killed or paused during a call may cost that call's verdicts, by verdict.
RECORDER_FAULT_REASONS: dict[str, frozenset[str]] = {
    "partial": frozenset({"recorder_crashed", "recorder_joined_late", "recording_ended_early", "unknown"}),
    "missing": frozenset({"recorder_crashed", "recorder_rejected", "call_blocked_by_policy", "no_invitation"}),
}


@dataclass
class InvariantResult:
    name: str
    promise: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "promise": self.promise,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.violations,
        }


# Server errors the run's own reads of the compliance API met (each read is retried): every one is a finding.
API_ERRORS: list[str] = []
# Reads that got no answer within the client's 30 s (a machine far over its cores): kept and reported, retried.
API_TIMEOUTS: list[str] = []


def read_verdicts(stack: DemoStack, result: CallResult, attempts: int = 3) -> list[dict[str, Any]]:
    """`GET /api/v1/verdicts?callId=` for the call, retried on an error answer (kept in `API_ERRORS`) or on no
    answer in time (kept in `API_TIMEOUTS`)."""
    for attempt in range(attempts):
        try:
            return stack.verdicts(result)
        except DemoError as error:
            API_ERRORS.append(f"{datetime.now(UTC):%H:%M:%S} {error}"[:400])
            if attempt == attempts - 1:
                raise
        except httpx.TransportError as error:
            API_TIMEOUTS.append(f"{datetime.now(UTC):%H:%M:%S} verdicts of {result.call_id}: {type(error).__name__}")
            if attempt == attempts - 1:
                raise
        time.sleep(1.0)
    return []


def check_api_errors() -> InvariantResult:
    result = InvariantResult(
        "no-server-error", "the compliance API answered every read of the run without a 5xx", checked=1
    )
    result.violations += API_ERRORS
    if API_TIMEOUTS:
        result.promise += f" ({len(API_TIMEOUTS)} read(s) not answered within 30 s, retried: {API_TIMEOUTS[:5]})"
    return result


def recorder_faults(log: Sequence[FaultRecord]) -> list[FaultRecord]:
    return [r for r in log if r.fault.kind in ("kill", "pause") and r.fault.target.startswith("recorder")]


def faults_during(
    call: PlacedCall, log: Sequence[FaultRecord], reach: timedelta = RECORDER_FAULT_REACH
) -> list[FaultRecord]:
    """The faults whose span overlaps the call's, from its placement to `reach` after it ended."""
    end = (call.ended_at or datetime.now(UTC)) + reach
    return [r for r in log if r.started_at <= end and (r.ended_at or r.started_at) >= call.placed_at]


# After storage returns, a recorder reports ready again at its next successful storage request: its storage
# health backs off up to 10 s (recorder_vm/capture/storage.py, StorageHealth max_backoff), so a storage outage
# keeps the recorders out of the load balancer's rotation up to that long after it ends.
STORAGE_RECOVERY = timedelta(seconds=10)


def storage_outages(call: PlacedCall, log: Sequence[FaultRecord]) -> list[FaultRecord]:
    """The storage pauses that overlap the call's span, each extended by the recorders' recovery after it."""
    end = (call.ended_at or datetime.now(UTC)) + RECORDER_FAULT_REACH
    return [
        r
        for r in log
        if r.fault.kind == "pause"
        and r.fault.target == "azurite"
        and r.started_at <= end
        and (r.ended_at or r.started_at) + STORAGE_RECOVERY >= call.placed_at
    ]


def blocked_users(state: dict[str, Any]) -> set[str]:
    """Tenant users the simulator kept out of the call at set-up (strict policy, no recorder)."""
    if state.get("outcome") == "blockedByPolicy":
        return {p["id"] for c in state.get("conversations", []) for p in c["participants"] if p.get("id")}
    return {p["id"] for c in state.get("conversations", []) for p in c["participants"] if p.get("state") == "blocked"}


def check_verdicts(
    stack: DemoStack, calls: Sequence[PlacedCall], log: Sequence[FaultRecord]
) -> tuple[InvariantResult, InvariantResult, InvariantResult, InvariantResult, list[str]]:
    """The verdict invariants; also returns every recording id the verdicts name."""
    final = InvariantResult("verdict-final", "every policy user of every placed call has a final verdict")
    explained = InvariantResult(
        "verdict-matches-faults",
        "a verdict other than `recorded` is explained by a recorder fault during the call, with a reason it can cause",
    )
    unrecorded = InvariantResult("no-verdict-for-unrecorded-users", "users no policy records get no verdict")
    ended = InvariantResult("calls-ended", "every placed call was placed and has ended")
    recording_ids: list[str] = []
    tenant_ids = {u["userPrincipalName"]: u["id"] for u in stack.sim("GET", "/sim/tenant")["users"]}
    for call in calls:
        key = call.planned.scenario.key
        ended.checked += 1
        if call.result is None:
            ended.violations.append(f"{key}: not placed ({call.error})")
            continue
        if call.state.get("state") != "ended":
            ended.violations.append(f"{key}: still {call.state.get('state')} after the run")
        try:
            verdicts = read_verdicts(stack, call.result)
        except (DemoError, httpx.TransportError) as error:
            final.violations.append(f"{key} ({call.result.call_id}): its verdicts could not be read: {error}"[:400])
            continue
        expected = set(call.planned.policy_users)
        blocked = blocked_users(call.state)
        nearby = faults_during(call, log)
        during = [r for r in nearby if r in recorder_faults(log)]
        storage_paused = storage_outages(call, log)
        if any(r.fault.kind == "spill-full" for r in log):
            # A recorder whose small disk buffer a storage pause fills reports its recording failed: that pause
            # may cost what a recorder fault may (bounded, never silent: `spill-bounded`).
            during = during + storage_paused
        # The recorder reports not ready while storage does not answer (docs/recorder.md: `/health`), so the load
        # balancer has no backend for invitations sent then: a strict user is blocked at set-up.
        unready = during + storage_paused
        for other in verdicts:
            upn = other.get("userPrincipalName")
            if upn not in expected and other.get("verdict") != "pending":
                unrecorded.violations.append(
                    f"{key} ({call.result.call_id}): {upn}, whom no policy records, has a verdict "
                    f"{other.get('verdict')} ({other.get('reason')})"
                )
        unrecorded.checked += 1
        for upn in sorted(expected):
            final.checked += 1
            verdict = call.result.verdict_of(upn)
            where = f"{key} ({call.result.call_id}) {upn}"
            if verdict is None or verdict.get("verdict") == "pending":
                final.violations.append(
                    f"{where}: {'no verdict' if verdict is None else 'pending, ' + str(verdict.get('reason'))}"
                )
                continue
            recording_ids += [rid for rid in verdict.get("recordingIds", []) if rid not in recording_ids]
            explained.checked += 1
            outcome, reason = verdict["verdict"], verdict.get("reason")
            if tenant_ids.get(upn) in blocked:
                if not unready:
                    explained.violations.append(
                        f"{where}: blocked at set-up with no recorder or storage fault during the call ({outcome}, "
                        f"{reason})"
                    )
                elif outcome != "missing" or reason not in ("call_blocked_by_policy", "recorder_rejected"):
                    explained.violations.append(
                        f"{where}: the simulator blocked the user at set-up, the verdict says {outcome} ({reason})"
                    )
                continue
            if outcome == "recorded":
                continue
            # Not strict (an adviser): every invitation failed while no recorder was ready; the call went on.
            if (outcome, reason) == ("missing", "no_invitation") and unready and _invitation_failed(call, upn):
                continue
            if not during:
                explained.violations.append(
                    f"{where}: {outcome} ({reason}, coverage {verdict.get('coverage')}) with no recorder fault during "
                    f"the call (faults then: {_names(faults_during(call, log)) or 'none'})"
                )
            elif reason not in RECORDER_FAULT_REASONS.get(outcome, frozenset()):
                explained.violations.append(f"{where}: {outcome} ({reason}) is not what {_names(during)} can cause")
    return final, explained, unrecorded, ended, recording_ids


def _invitation_failed(call: PlacedCall, upn: str) -> bool:
    """The simulator reports every recorder invitation for the user failed (no ready recorder behind the load
    balancer), so no recorder ever reported on the call."""
    keys = {p["key"] for p in call.planned.scenario.spec["participants"] if p.get("user") == upn}
    legs = [leg for leg in call.state.get("recorders", []) if leg.get("observedParticipant") in keys]
    return bool(legs) and all(leg.get("state") == "failed" for leg in legs)


def _names(records: Sequence[FaultRecord]) -> str:
    return ", ".join(f"{r.fault.kind} {r.fault.target} at +{r.offset:.0f} s" for r in records)


def check_evidence(
    stack: DemoStack, calls: Sequence[PlacedCall], recording_ids: Sequence[str]
) -> tuple[InvariantResult, InvariantResult]:
    """Each recording verifies; each verdict's coverage is its sealed evidence's."""
    verified = InvariantResult("recordings-verify", "`verbatim verify` passes for every recording a verdict names")
    matches = InvariantResult(
        "verdict-matches-evidence",
        "coverage equals the sealed evidence's; `recorded` misses only the tolerated edges of the presence",
    )
    # One `verbatim verify` process per recording, a few at a time (each spends most of its time starting up).
    with ThreadPoolExecutor(max_workers=VERIFY_WORKERS) as pool:
        results = pool.map(lambda r: evidence.verify(stack, r), recording_ids)
        for recording_id, checked in zip(recording_ids, results, strict=True):
            verified.checked += 1
            if checked.returncode != 0:
                verified.violations.append(f"{recording_id}: {checked.stdout[-1500:]} {checked.stderr[-400:]}".strip())
    for call in calls:
        if call.result is None:
            continue
        for upn in call.planned.policy_users:
            verdict = call.result.verdict_of(upn)
            if verdict is None or verdict.get("verdict") == "pending" or not verdict.get("presence"):
                continue
            matches.checked += 1
            where = f"{call.planned.scenario.key} ({call.result.call_id}) {upn}"
            try:
                parts = [p for rid in verdict.get("recordingIds", []) for p in evidence.sealed_parts(stack, rid)]
            except (AssertionError, KeyError, ValueError) as error:
                matches.violations.append(f"{where}: sealed evidence unreadable: {error}")
                continue
            expected = evidence.covered_fraction(parts, verdict["presence"])
            if abs(float(verdict.get("coverage") or 0.0) - expected) > COVERAGE_TOLERANCE:
                matches.violations.append(
                    f"{where}: verdict {verdict['verdict']} says coverage {verdict.get('coverage')}, the sealed "
                    f"evidence covers {expected:.4f}"
                )
            missing = (1 - expected) * evidence.presence_seconds(verdict["presence"])
            allowance = EDGE_TOLERANCE.join_seconds + EDGE_TOLERANCE.end_seconds
            if verdict["verdict"] == "recorded" and missing > allowance:
                matches.violations.append(
                    f"{where}: judged recorded with {expected:.2%} sealed ({missing:.2f} s missing, more than the "
                    f"{allowance:g} s the completeness rule tolerates)"
                )
    return verified, matches


def check_captured_audio(stack: DemoStack, recording_ids: Sequence[str]) -> InvariantResult:
    """Every sample a recorder says it captured is in the recording's sealed parts. Asked of each instance (its
    capture route, as the lifecycle asks before it salvages); a recording no instance remembers — its recorder
    was killed and restarted since — is counted as not answerable, its loss bounded by salvage instead."""
    result = InvariantResult(
        "captured-audio-sealed", "every sample a recorder says it captured is in the recording's sealed evidence"
    )
    token = evidence.lifecycle_token(stack)
    urls = [instance.url for instance in stack.config.recorder_instances()]
    unanswered = 0
    for recording_id in recording_ids:
        captured = None
        for url in urls:
            try:
                captured = evidence.recorder_captured_samples(stack, recording_id, token, url)
                break
            except AssertionError:
                continue
        if captured is None:
            unanswered += 1
            continue
        result.checked += 1
        sealed = sum(part.manifest.track().samples for part in evidence.sealed_parts(stack, recording_id))
        if sealed < captured:
            result.violations.append(
                f"{recording_id}: the recorder captured {captured / evidence.SAMPLE_RATE:.2f} s, "
                f"{sealed / evidence.SAMPLE_RATE:.2f} s are sealed"
            )
    if unanswered:
        result.promise += f" ({unanswered} recording(s) no running instance remembers: killed since)"
    return result


def check_ledger(stack: DemoStack) -> InvariantResult:
    result = InvariantResult("ledger-verifies", "`verbatim ledger verify` passes: the log end to end", checked=1)
    checked = evidence.verify_ledger(stack)
    if checked.returncode != 0:
        result.violations.append(f"{checked.stdout[-1500:]} {checked.stderr[-400:]}".strip())
    return result


def orchestrations(stack: DemoStack) -> list[dict[str, Any]]:
    """Every orchestration instance of the task hub, from the host's Durable HTTP API (paged)."""
    master = load_or_create_keys(stack.config.state_dir / "funchost").master
    url = f"{stack.config.functions_url}/runtime/webhooks/durabletask/instances"
    found: list[dict[str, Any]] = []
    continuation: str | None = None
    while True:
        headers = {"x-ms-continuation-token": continuation} if continuation else {}
        response = stack.http.get(url, params={"code": master, "top": "200", "showInput": "false"}, headers=headers)
        response.raise_for_status()
        found += response.json()
        continuation = response.headers.get("x-ms-continuation-token")
        if not continuation:
            return found


def check_orchestrations(stack: DemoStack, recording_ids: Sequence[str]) -> InvariantResult:
    result = InvariantResult(
        "no-stuck-orchestration", "every recording's orchestration has completed (none running, failed or terminated)"
    )
    for instance in orchestrations(stack):
        if not str(instance.get("instanceId", "")).startswith("recording-"):
            continue
        result.checked += 1
        if instance.get("runtimeStatus") != "Completed":
            custom = instance.get("customStatus")
            stage = custom.get("stage") if isinstance(custom, dict) else custom
            result.violations.append(
                f"{instance['instanceId']}: {instance.get('runtimeStatus')} (stage {stage}, last updated "
                f"{instance.get('lastUpdatedTime')})"
            )
    named = {f"recording-{rid}" for rid in recording_ids}
    seen = {i["instanceId"] for i in orchestrations(stack)} if named else set()
    for missing in sorted(named - seen):
        result.violations.append(f"{missing}: a verdict names the recording, no orchestration exists for it")
    return result


def check_poison(stack: DemoStack, log: Sequence[FaultRecord]) -> InvariantResult:
    """Every message in a poison queue is one a `poison-message` fault put on its queue."""
    result = InvariantResult(
        "no-poison-message", "every message in a poison queue is one the fault log put there (poison-message)"
    )
    injected = {r.note for r in log if r.fault.kind == "poison-message" and r.error is None}
    service = QueueServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    for name in layout.QUEUES:
        if not name.endswith("-poison"):
            continue
        queue = service.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )
        for message in queue.peek_messages(max_messages=32):
            result.checked += 1
            text = str(message.content)
            if not any(marker and marker in text for marker in injected):
                result.violations.append(f"{name}: an unexplained message: {text[:300]}")
    return result


SPILL_OVERFLOW = "local buffer full"


def check_spill_bounded(stack: DemoStack, log: Sequence[FaultRecord]) -> InvariantResult:
    """A recorder whose disk buffer filled stayed up, kept the buffer within its budget, and said so: each
    overflow is a failed recording (`recording.failed`, which reconciliation turns into an alert), not a crash."""
    result = InvariantResult(
        "spill-bounded", "a full disk buffer fails recordings openly: the recorder stays up, within its budget"
    )
    instances = {i.name: i for i in stack.config.recorder_instances()}
    for record in log:
        if record.fault.kind != "spill-full" or record.fault.target not in instances:
            continue
        result.checked += 1
        name, budget = record.fault.target, int(record.fault.count or 0)
        component = next((c for c in stack.components if c.name == name), None)
        process = component.process.process if component is not None else None
        if process is None or process.poll() is not None:
            result.violations.append(f"{name}: not running at the end of the run")
        spill = instances[name].state_dir / "spill"
        used = sum(p.stat().st_size for p in spill.glob("*/*.blk")) if spill.exists() else 0
        if used > budget:
            result.violations.append(f"{name}: {used} bytes in its disk buffer, over its {budget}-byte budget")
        log_path = stack.config.logs / f"{name}.log"
        text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        overflows = text.count(SPILL_OVERFLOW)
        result.promise += f" ({name}: {overflows} overflow(s) logged, {used} of {budget} bytes in use at the end)"
    return result


def check_all(stack: DemoStack, calls: Sequence[PlacedCall], log: Sequence[FaultRecord]) -> list[InvariantResult]:
    final, explained, unrecorded, ended, recording_ids = check_verdicts(stack, calls, log)
    verified, matches = check_evidence(stack, calls, recording_ids)
    return [
        ended,
        final,
        explained,
        unrecorded,
        matches,
        verified,
        check_captured_audio(stack, recording_ids),
        check_ledger(stack),
        check_orchestrations(stack, recording_ids),
        check_poison(stack, log),
        check_spill_bounded(stack, log),
        check_api_errors(),
    ]
