"""Is the recorder that holds a capture still capturing it? Asked of the recorder instance itself, not of the store
whose silence raised the question.

The recorder writes a heartbeat to a table every `RECORDER_HEARTBEAT_SECONDS`; when heartbeats stop, either the
recorder is gone or the store (or the path to it) is stalled — a live recorder keeps capturing through a storage
stall, spilling blocks to disk. So the lifecycle salvages only on evidence that does not come from that store:

1. heartbeats silent for `suspect_after` (3 intervals): ask the recorder instance that reported the recording,
   at its control route (`GET <control url>/api/captures/<recording id>`, a bearer token of the tenant with the
   `Recorder.Lifecycle` app role; only URLs on the hosts the settings allow are asked);
2. it answers that it holds the capture (capturing, or ending and committing): not silent, wait again;
3. it answers that it does not hold it (it was restarted: the process that captured is gone): salvage now;
4. it does not answer ("unreachable" is not "silent": a partition, a paused process, a full backlog): wait
   until the heartbeats have been silent for the silence threshold, then salvage. The threshold is what a
   live recorder's heartbeat can take through a slow store: the write may run for the Table service's server
   timeout (30 s: "the maximum timeout interval for Table service operations is 30 seconds ... also the
   default interval for all insert, update, and delete operations", Setting timeouts for Table service
   operations, learn.microsoft.com/rest/api/storageservices/setting-timeouts-for-table-service-operations),
   the recorder does not retry a failed one (retry_total=0) but writes the next one an interval later, and
   that one may be as slow: 2 intervals + 30 s (40 s with Azure's 5 s heartbeat).

Every decision and what it rests on (heartbeat age, the answer or why there was none, the threshold and its
basis) is returned as evidence, and the salvage puts it in its ledger entry.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import quote, urlsplit

import httpx
from pydantic import JsonValue

from verbatim.contracts.lifecycle import RecordingRecord

log = logging.getLogger(__name__)

# The app role a token must carry to ask a recorder (defined on our API's app registration, assigned to the
# Function App's identity only).
LIFECYCLE_ROLE = "Recorder.Lifecycle"
# "the maximum timeout interval for Table service operations is 30 seconds" (see the module docstring)
TABLE_SERVER_TIMEOUT_SECONDS = 30.0
SUSPECT_AFTER_INTERVALS = 3

Answer = Literal["capturing", "ending", "not_held", "unreachable", "not_asked"]


def silence_threshold(heartbeat_seconds: float, server_timeout_seconds: float = TABLE_SERVER_TIMEOUT_SECONDS) -> float:
    """How long a live recorder's heartbeats can be missing because the store is slow."""
    return 2 * heartbeat_seconds + server_timeout_seconds


def suspect_after(heartbeat_seconds: float) -> float:
    """How long heartbeats may be missing before the recorder is asked."""
    return SUSPECT_AFTER_INTERVALS * heartbeat_seconds


@dataclass(frozen=True)
class LivenessAnswer:
    """What the recorder instance said about one capture (or why it said nothing)."""

    answer: Answer
    detail: str
    asked_at: datetime | None = None
    url: str | None = None
    generation: int | None = None  # the capture generation the recorder is writing, when it holds the capture

    def evidence(self) -> dict[str, JsonValue]:
        return {
            "answer": self.answer,
            "detail": self.detail,
            "asked_at": self.asked_at.isoformat() if self.asked_at else None,
            "url": self.url,
            "generation": self.generation,
        }


class CaptureLiveness(Protocol):
    """Asks the recorder instance that reported a recording whether it still holds its capture."""

    def ask(self, record: RecordingRecord) -> LivenessAnswer: ...


class NoLiveness:
    """Nobody to ask (not configured): the heartbeat alone decides, after the silence threshold."""

    def ask(self, record: RecordingRecord) -> LivenessAnswer:
        return LivenessAnswer("not_asked", "no recorder control route is configured")


def control_url_allowed(url: str, allowed_hosts: frozenset[str]) -> bool:
    """Only https URLs on an allowed host (the recorders' service FQDN), or http on a loopback address when the
    loopback is allowed (the local stack): a recorder's event cannot make the Function App call anywhere else."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # a malformed port raises here
    except ValueError:
        return False
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        return False
    if host not in allowed_hosts:
        return False
    if parts.scheme == "https":
        return True
    try:
        return parts.scheme == "http" and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpCaptureLiveness:
    """`CaptureLiveness` over the recorder's control route, with a bearer token of the tenant."""

    def __init__(
        self,
        *,
        allowed_hosts: frozenset[str],
        token: Callable[[], str],
        clock: Callable[[], datetime],
        timeout_seconds: float = 3.0,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._allowed = frozenset(host.lower() for host in allowed_hosts)
        self._token = token
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_seconds, verify=verify, transport=transport)

    def ask(self, record: RecordingRecord) -> LivenessAnswer:
        base = record.recorder_control_url
        if not base:
            return LivenessAnswer("not_asked", "the recorder reported no control route for this recording")
        if not control_url_allowed(base, self._allowed):
            log.warning("recorder control url not allowed", extra={"recording_id": record.id, "url": base[:200]})
            return LivenessAnswer("not_asked", "the recorder's control route is not on an allowed host", url=base[:200])
        url = f"{base.rstrip('/')}/api/captures/{quote(record.id, safe='')}"
        asked_at = self._clock()
        try:
            token = self._token()
        except Exception as error:  # no token: we could not ask, which says nothing about the recorder
            return LivenessAnswer("not_asked", f"no token for the recorder: {type(error).__name__}", asked_at, url)
        try:
            response = self._client.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            return LivenessAnswer("unreachable", f"{type(error).__name__}", asked_at, url)
        if response.status_code == 404:
            return LivenessAnswer("not_held", "the recorder instance answered that it does not hold it", asked_at, url)
        if response.status_code != 200:
            return LivenessAnswer("unreachable", f"the recorder answered {response.status_code}", asked_at, url)
        try:
            body = response.json()
            state = str(body.get("state"))
            generation = body.get("generation")
        except (ValueError, AttributeError):
            return LivenessAnswer("unreachable", "the recorder's answer is not JSON", asked_at, url)
        answer: Answer = "ending" if state in ("ending", "ended", "failed") else "capturing"
        return LivenessAnswer(
            answer,
            f"the recorder instance holds the capture ({state[:40]})",
            asked_at,
            url,
            generation if isinstance(generation, int) else None,
        )


def _ms(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)


@dataclass(frozen=True)
class Judgement:
    """The lifecycle's view of one capture at one moment: keep waiting (and for how long), or salvage."""

    salvage: bool
    wait_seconds: float
    reason: str
    evidence: dict[str, JsonValue]


def judge(
    *,
    now: datetime,
    last_heard: datetime | None,
    heartbeat_seconds: float,
    server_timeout_seconds: float,
    ask: Callable[[], LivenessAnswer],
) -> Judgement:
    """Decide from the heartbeat's age and, once it is suspect, the recorder's own answer."""
    suspect = timedelta(seconds=suspect_after(heartbeat_seconds))
    threshold = timedelta(seconds=silence_threshold(heartbeat_seconds, server_timeout_seconds))
    age = now - last_heard if last_heard else threshold
    # Milliseconds as integers: the evidence goes into a ledger entry, whose canonical JSON has no floats.
    evidence: dict[str, JsonValue] = {
        "heartbeat_age_ms": _ms(age),
        "last_heard": last_heard.isoformat() if last_heard else None,
        "heartbeat_ms": _ms(timedelta(seconds=heartbeat_seconds)),
        "suspect_after_ms": _ms(suspect),
        "silence_threshold_ms": _ms(threshold),
        "threshold_basis": (
            f"2 heartbeat intervals + the Table service's {server_timeout_seconds:g} s server timeout for writes"
        ),
    }
    if age < suspect:
        return Judgement(False, (suspect - age).total_seconds() + 1, "heartbeat fresh", evidence)
    answer = ask()
    evidence["recorder"] = answer.evidence()
    seconds = age.total_seconds()
    if answer.answer in ("capturing", "ending"):
        # The store is what is slow (or the heartbeat path): the recorder says it is alive. Ask again later.
        reason = f"no heartbeat for {seconds:.0f} s, but the recorder holds the capture: {answer.detail}"
        return Judgement(False, suspect.total_seconds(), reason, evidence)
    if answer.answer == "not_held":
        return Judgement(True, 0.0, f"no heartbeat for {seconds:.0f} s and {answer.detail}", evidence)
    if age >= threshold:
        why = "unreachable" if answer.answer == "unreachable" else "not asked"
        return Judgement(
            True,
            0.0,
            f"no heartbeat for {seconds:.0f} s (threshold {threshold.total_seconds():.0f} s) and the recorder was "
            f"{why}: {answer.detail}",
            evidence,
        )
    return Judgement(
        False,
        min(suspect.total_seconds(), (threshold - age).total_seconds() + 1),
        f"no heartbeat for {seconds:.0f} s; the recorder is {answer.answer}, not yet silent for "
        f"{threshold.total_seconds():.0f} s",
        evidence,
    )
