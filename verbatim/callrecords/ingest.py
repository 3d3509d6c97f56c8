"""Ingest one call record named by a `callrecord.notification` message: fetch it from Graph, store it
if it is newer than what we hold, and hand each newly stored version to reconciliation.

Failures that time will fix do not poison the message: a 404 soon after we first heard of the record
("not yet published", up to 150 minutes) and throttling / 5xx beyond the client's own retries put a new
message on the queue with a visibility delay and complete the current one. Anything else raises, so
the host retries and finally moves the message to the poison queue.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from verbatim.callrecords.fetch import fetch_call_record
from verbatim.callrecords.normalise import normalise
from verbatim.callrecords.store import CallRecordStore, RecordState
from verbatim.contracts.callrecords import CallRecord, CallRecordNotification, CallRecordStored
from verbatim.graph import GraphClient, GraphError, GraphNotFound
from verbatim.platform.logging import correlation
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

IngestStatus = Literal["stored", "unchanged", "stale", "skipped", "not_yet", "gone", "retry_later"]


@dataclass(frozen=True)
class IngestPolicy:
    not_yet_grace: timedelta = timedelta(minutes=150)
    not_yet_retry_seconds: int = 600
    max_retry_attempts: int = 12
    retry_base_seconds: int = 30
    retry_max_seconds: int = 1800


@dataclass(frozen=True)
class IngestOutcome:
    status: IngestStatus
    call_record_id: str
    version: int | None = None
    retry_in_seconds: int | None = None
    handed_off: bool = False


class CallRecordIngestor:
    """The ingestion service the queue trigger calls (and the benchmarks drive directly)."""

    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        store: CallRecordStore,
        notifications: MessageQueue,
        reconciliation: MessageQueue,
        policy: IngestPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._store = store
        self._notifications = notifications
        self._reconciliation = reconciliation
        self._policy = policy or IngestPolicy()
        self._clock = clock

    def ingest(self, message: CallRecordNotification) -> IngestOutcome:
        with correlation(call_record_id=message.call_record_id, tenant_id=message.tenant_id):
            return self._ingest(message)

    def _ingest(self, message: CallRecordNotification) -> IngestOutcome:
        record_id = message.call_record_id
        state = self._store.state(record_id)
        if self._already_current(message, state):
            return IngestOutcome("skipped", record_id)
        fetched_at = self._clock()
        try:
            raw = fetch_call_record(self._graph_for(message.tenant_id), record_id)
        except GraphNotFound:
            return self._not_found(message)
        except GraphError as error:
            if not error.retryable:
                log.error("call record fetch failed", extra={"graph_status": error.status, "graph_code": error.code})
                raise
            return self._retry_later(message, error)
        record = normalise(raw, tenant_id=message.tenant_id or None, ingested_at=fetched_at, source=message.source)
        result = self._store.save_if_newer(record, raw, probably_new=state is None)
        log.info(
            "call record stored" if result.outcome in {"created", "replaced"} else "call record not newer",
            extra={"outcome": result.outcome, "version": record.version, "stored_version": result.stored_version},
        )
        handed_off = False
        if result.stored_version == record.version and result.needs_handoff:
            self._hand_off(
                record, previous=result.previous_version if result.outcome == "replaced" else None, etag=result.etag
            )
            handed_off = True
        status: IngestStatus = (
            "stored"
            if result.outcome in {"created", "replaced"}
            else "unchanged"
            if result.outcome == "unchanged"
            else "stale"
        )
        return IngestOutcome(status, record_id, version=record.version, handed_off=handed_off)

    def _already_current(self, message: CallRecordNotification, state: RecordState | None) -> bool:
        """True when what we hold is handed off and either at the version a back-fill message names, or
        was fetched after this message was created (so it is at least as new as what the message
        announces). Duplicate notifications then cost no Graph request."""
        if state is None or state.handed_off_version < state.version:
            return False
        if message.known_version is not None:
            return state.version >= message.known_version
        fetched, seen = parse_datetime(state.ingested_at), parse_datetime(message.first_seen_at)
        return fetched is not None and seen is not None and fetched > seen

    def _not_found(self, message: CallRecordNotification) -> IngestOutcome:
        first_seen = parse_datetime(message.first_seen_at) or self._clock()
        age = self._clock() - first_seen
        if age < self._policy.not_yet_grace:
            delay = self._policy.not_yet_retry_seconds
            self._requeue(message, delay)
            log.info("call record not published yet; retrying later", extra={"retry_in_s": delay})
            return IngestOutcome("not_yet", message.call_record_id, retry_in_seconds=delay)
        log.warning("call record not found after the grace period; giving up", extra={"age_s": age.total_seconds()})
        return IngestOutcome("gone", message.call_record_id)

    def _retry_later(self, message: CallRecordNotification, error: GraphError) -> IngestOutcome:
        if message.attempt >= self._policy.max_retry_attempts:
            log.error(
                "call record fetch kept failing; leaving it to the host's retries", extra={"status": error.status}
            )
            raise error
        backoff = min(self._policy.retry_max_seconds, self._policy.retry_base_seconds * 2**message.attempt)
        delay = int(max(error.retry_after or 0, random.uniform(backoff / 2, backoff)))  # noqa: S311 - jitter
        self._requeue(message, delay)
        log.warning("graph busy; call record retried later", extra={"status": error.status, "retry_in_s": delay})
        return IngestOutcome("retry_later", message.call_record_id, retry_in_seconds=delay)

    def _requeue(self, message: CallRecordNotification, delay: int) -> None:
        again = message.model_copy(update={"attempt": message.attempt + 1})
        self._notifications.send(again.model_dump_json(by_alias=True), delay_seconds=delay)

    def _hand_off(self, record: CallRecord, previous: int | None, etag: str | None) -> None:
        stored = CallRecordStored(
            call_record_id=record.id,
            tenant_id=record.tenant_id,
            version=record.version,
            previous_version=previous,
            type=record.type,
            start_date_time=record.start_date_time,
            end_date_time=record.end_date_time,
            organizer=record.organizer,
            participants=record.participants,
            stored_at=format_datetime(self._clock()),
        )
        self._reconciliation.send(stored.model_dump_json(by_alias=True))
        self._store.mark_handed_off(record.id, record.version, etag)
