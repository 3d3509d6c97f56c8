"""Legal holds: placed by a compliance officer, applied to every matching recording now and at seal time, and
released only when a second, different officer approves the release (four-eyes).

A hold is in force from the moment its document is stored as active: the sweep checks active holds itself
right before it deletes anything, so a hold protects recordings even before it has been applied to them.
Applying a hold adds its id to the recording record (etag-guarded, so it serialises with the sweep's claim)
and then sets the blob legal hold on every version of every object of the recording. Releasing removes the id
and clears the blob legal hold only where no other active hold applies. The ledger gets the hold's placement,
the release request and the release (with both officers), and one entry per recording held or lifted.

A hold selects recordings by people (custodians or query participants, in a time range, narrowed by the query),
by id (`recording_ids`, held as listed), or both. A hold that lists recordings and names no people covers
exactly those.

The ledger keeps no personal data of custodians: it records a SHA-256 of the hold's scope (custodians, time
range, query, description, and the recording ids when there are some), which the hold document can be checked
against.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError

from verbatim.contracts.evidence import EntryKind, RecordingFacts
from verbatim.contracts.lifecycle import DELETION_BEGUN, RecordingRecord
from verbatim.contracts.retention import (
    HeldRecording,
    HoldApplication,
    HoldRelease,
    HoldRequest,
    HoldResult,
    HoldStatus,
    LegalHold,
    Officer,
    ReleaseRequest,
)
from verbatim.evidence.worm import Enforcement
from verbatim.ledger.canonical import canonical_sha256
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.errors import Conflict, DependencyUnavailable, Forbidden, InvalidInput, NotFound
from verbatim.retention.common import Clock, hold_subject, instant, recording_subject, utc_now
from verbatim.retention.people import PersonKeys, hold_scope_matches, keys_of_value
from verbatim.retention.recordings import RetentionRecordings
from verbatim.retention.storage import RecordingBlobs

log = logging.getLogger(__name__)

HOLD_RELEASE_REQUESTED = "hold.release_requested"
HOLD_APPLIED = "hold.applied"
HOLD_LIFTED = "hold.lifted"
MAX_ATTEMPTS = 50


def matches(hold: LegalHold, facts: RecordingFacts) -> bool:
    """Whether an active hold covers a recording: listed by id, or selected by its people, time range and query.
    A hold that lists recordings and names no people covers those recordings only."""
    if hold.status != "active":
        return False
    if facts.recording_id in hold.recording_ids:
        return True
    return hold.selects_people and hold_scope_matches(hold.custodians, hold.from_, hold.until, hold.query, facts)


def scope_sha256(hold: LegalHold) -> str:
    """What the ledger commits to instead of the custodians' identities. The recording ids join the hashed scope
    only when the hold lists some, so the scope of every hold placed before holds by id hashes as it did."""
    scope: dict[str, Any] = {
        "matter_id": hold.matter_id,
        "description": hold.description,
        "custodians": sorted(c.strip().lower() for c in hold.custodians),
        "from": instant(hold.from_) if hold.from_ else None,
        "until": instant(hold.until) if hold.until else None,
        "query": hold.query.model_dump(mode="json", by_alias=True) if hold.query else None,
    }
    if hold.recording_ids:
        scope["recording_ids"] = sorted(hold.recording_ids)
    return canonical_sha256(scope)


@dataclass(frozen=True)
class VersionedHold:
    hold: LegalHold
    etag: str


class HoldStore(Protocol):
    def create(self, hold: LegalHold) -> None: ...

    def get(self, hold_id: str) -> VersionedHold | None: ...

    def replace(self, hold: LegalHold, etag: str) -> bool: ...

    def find(self, status: HoldStatus | None = None) -> list[LegalHold]: ...


class CosmosHoldStore:
    """Holds in Cosmos `holds` (partition /id). The fields `status`, `custodians`, `from` and `until` are also
    what the lifecycle's own fallback matcher reads."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def create(self, hold: LegalHold) -> None:
        self._container.create_item(hold.model_dump(mode="json", by_alias=True))

    def get(self, hold_id: str) -> VersionedHold | None:
        docs = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": hold_id}],
                partition_key=hold_id,
            )
        )
        return VersionedHold(LegalHold.model_validate(docs[0]), str(docs[0]["_etag"])) if docs else None

    def replace(self, hold: LegalHold, etag: str) -> bool:
        try:
            self._container.replace_item(
                hold.id,
                hold.model_dump(mode="json", by_alias=True),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True

    def find(self, status: HoldStatus | None = None) -> list[LegalHold]:
        sql = "SELECT * FROM c WHERE c.docType = 'legalHold'"
        params: list[dict[str, object]] = []
        if status is not None:
            sql += " AND c.status = @status"
            params.append({"name": "@status", "value": status})
        docs: list[dict[str, Any]] = list(
            self._container.query_items(sql, parameters=params, enable_cross_partition_query=True)
        )
        return sorted((LegalHold.model_validate(d) for d in docs), key=lambda h: (h.created_at, h.id))


class InMemoryHoldStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[str, VersionedHold] = {}

    def create(self, hold: LegalHold) -> None:
        with self._lock:
            if hold.id in self._docs:
                raise Conflict(f"hold {hold.id} exists")
            self._docs[hold.id] = VersionedHold(hold.model_copy(deep=True), uuid.uuid4().hex)

    def get(self, hold_id: str) -> VersionedHold | None:
        with self._lock:
            found = self._docs.get(hold_id)
            return VersionedHold(found.hold.model_copy(deep=True), found.etag) if found else None

    def replace(self, hold: LegalHold, etag: str) -> bool:
        with self._lock:
            current = self._docs.get(hold.id)
            if current is None or current.etag != etag:
                return False
            self._docs[hold.id] = VersionedHold(hold.model_copy(deep=True), uuid.uuid4().hex)
            return True

    def find(self, status: HoldStatus | None = None) -> list[LegalHold]:
        with self._lock:
            holds = [v.hold.model_copy(deep=True) for v in self._docs.values()]
        return sorted((h for h in holds if status is None or h.status == status), key=lambda h: (h.created_at, h.id))


class SealHoldMatcher:
    """The lifecycle's `HoldMatcher` port: the ids of the active holds that cover a recording being sealed."""

    def __init__(self, store: HoldStore) -> None:
        self._store = store

    def holds_for(self, facts: RecordingFacts) -> list[str]:
        return sorted(h.id for h in self._store.find("active") if matches(h, facts))


def _combine(outcomes: Sequence[Enforcement | None]) -> Enforcement | None:
    seen = [o for o in outcomes if o is not None]
    if not seen:
        return None
    return "emulator-not-enforced" if "emulator-not-enforced" in seen else "azure"


class HoldService:
    def __init__(
        self,
        store: HoldStore,
        recordings: RetentionRecordings,
        blobs: RecordingBlobs,
        ledger: LedgerWriter,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = lambda: f"hold-{uuid.uuid4().hex[:12]}",
    ) -> None:
        self._store = store
        self._recordings = recordings
        self._blobs = blobs
        self._ledger = ledger
        self._clock = clock
        self._new_id = new_id

    # --- reading ---

    def get(self, hold_id: str) -> LegalHold:
        found = self._store.get(hold_id)
        if found is None:
            raise NotFound(f"no legal hold {hold_id}", hold_id=hold_id)
        return found.hold

    def find(self, status: HoldStatus | None = None) -> list[LegalHold]:
        return self._store.find(status)

    def active(self) -> list[LegalHold]:
        return self._store.find("active")

    def recordings(self, hold_id: str) -> list[HeldRecording]:
        self.get(hold_id)
        return [
            HeldRecording(
                recording_id=r.id,
                call_id=r.facts.call_id,
                started_at=r.facts.started_at,
                ended_at=r.facts.ended_at,
                status=r.status,
                retention_class=r.seal.retention_class if r.seal else None,
                retention_until=r.seal.retention_until if r.seal else None,
                legal_holds=list(r.seal.legal_holds) if r.seal else [],
            )
            for r in sorted(self._recordings.with_hold(hold_id), key=lambda r: r.id)
        ]

    # --- placing ---

    def create(self, request: HoldRequest, officer: Officer) -> HoldResult:
        unknown = [i for i in request.recording_ids if self._recordings.read(i) is None]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise InvalidInput(
                f"recordingIds names recordings that do not exist: {shown}; no hold was placed",
                unknownRecordingIds=unknown,
            )
        now = self._clock()
        hold = LegalHold(
            id=self._new_id(),
            matter_id=request.matter_id,
            description=request.description,
            custodians=[c.strip() for c in request.custodians],
            recording_ids=list(request.recording_ids),
            from_=request.from_,
            until=request.until,
            query=request.query,
            created_by=officer,
            created_at=now,
        )
        # In force from here: the sweep honours active holds before they are applied.
        self._store.create(hold)
        entry = self._ledger.append(
            EntryKind.HOLD_PLACED,
            hold_subject(hold.id),
            {
                "matter_id": hold.matter_id,
                "scope_sha256": scope_sha256(hold),
                "custodians": len(hold.custodians),
                **({"recordings_by_id": len(hold.recording_ids)} if hold.recording_ids else {}),
                "from": instant(hold.from_) if hold.from_ else None,
                "until": instant(hold.until) if hold.until else None,
                "query": hold.query is not None,
                "at": instant(now),
            },
            actor=officer.subject,
            idempotency_key=f"hold.placed:{hold.id}",
        )
        hold = self._update(hold.id, lambda h: h.model_copy(update={"placed_ledger_seq": entry.seq}))
        return HoldResult(hold=hold, application=self.apply(hold))

    def _candidates(self, hold: LegalHold) -> list[RecordingRecord]:
        chosen: dict[str, RecordingRecord] = {}
        if hold.selects_people:
            values = hold.custodians or (hold.query.participants if hold.query else [])
            keys = PersonKeys.of(k for v in values for k in keys_of_value(v))
            found = self._recordings.by_person(keys, statuses=("sealed", "deleting", "deleted"))
            for record in found:
                if hold_scope_matches(hold.custodians, hold.from_, hold.until, hold.query, record.facts):
                    chosen[record.id] = record
        for recording_id in hold.recording_ids:
            # Listed by id: held whatever the time range (one still being captured is held when it is sealed).
            listed = self._recordings.read(recording_id)
            if listed is not None and listed.record.status in ("sealed", "deleting", "deleted"):
                chosen.setdefault(recording_id, listed.record)
        return sorted(chosen.values(), key=lambda r: r.id)

    def apply(self, hold: LegalHold, resend: bool = False) -> HoldApplication:
        """Put the hold on every sealed recording it matches (idempotent). With `resend`, the blob legal hold is
        sent again for recordings that already carry the hold (repairs a crash between the two steps)."""
        application = HoldApplication()
        outcomes: list[Enforcement | None] = []
        for record in self._candidates(hold):
            state, outcome = self.hold_recording(hold, record.id, resend=resend)
            outcomes.append(outcome)
            if state in ("held", "newly_held"):
                application.held.append(record.id)
                if state == "newly_held":
                    application.newly_held.append(record.id)
            else:
                application.not_held[record.id] = state
        application.worm = _combine(outcomes) or "unchanged"
        return application

    def hold_recording(
        self, hold: LegalHold, recording_id: str, resend: bool = False
    ) -> tuple[str, Enforcement | None]:
        """("newly_held" | "held" | <why not>, enforcement of the blob requests sent)."""
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None:
                return "the recording no longer exists", None
            record = found.record
            if record.status in DELETION_BEGUN or record.seal is None:
                deletion = record.deletion
                since = f" (since {instant(deletion.claimed_at)})" if deletion else ""
                return f"its deletion had already begun{since} when the hold was applied", None
            if hold.id in record.seal.legal_holds:
                if not resend:
                    return "held", None
                enforcement, _ = self._blobs.set_legal_hold(record, True)
                return "held", enforcement
            seal = record.seal.model_copy(update={"legal_holds": sorted({*record.seal.legal_holds, hold.id})})
            updated = record.model_copy(update={"seal": seal})
            if not self._recordings.replace(updated, found.etag):
                continue  # changed under us (a sweep claim, another hold, a late event): look again
            enforcement, blobs = self._blobs.set_legal_hold(updated, True)
            self._ledger.append(
                HOLD_APPLIED,
                recording_subject(recording_id),
                {"hold_id": hold.id, "matter_id": hold.matter_id, "blobs": blobs, "worm": enforcement},
                idempotency_key=f"{HOLD_APPLIED}:{hold.id}:{recording_id}",
            )
            return "newly_held", enforcement
        raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates while applying a hold")

    # --- releasing (four-eyes) ---

    def request_release(self, hold_id: str, officer: Officer, reason: str) -> HoldResult:
        current = self.get(hold_id)
        if current.status != "active":
            raise Conflict(f"hold {hold_id} is already released", hold_id=hold_id)
        if current.release_request is not None:
            raise Conflict(
                f"hold {hold_id} already has a release request by {current.release_request.requested_by.subject}, "
                "waiting for a second officer's approval",
                hold_id=hold_id,
            )
        now = self._clock()
        entry = self._ledger.append(
            HOLD_RELEASE_REQUESTED,
            hold_subject(hold_id),
            {"matter_id": current.matter_id, "reason": reason, "at": instant(now)},
            actor=officer.subject,
        )
        request = ReleaseRequest(requested_by=officer, requested_at=now, reason=reason, ledger_seq=entry.seq)

        def ask(hold: LegalHold) -> LegalHold:
            if hold.status != "active" or hold.release_request is not None:
                raise Conflict(f"hold {hold_id} changed while the release was requested", hold_id=hold_id)
            return hold.model_copy(update={"release_request": request})

        return HoldResult(hold=self._update(hold_id, ask))

    def approve_release(self, hold_id: str, officer: Officer, reason: str) -> HoldResult:
        current = self.get(hold_id)
        if current.status != "active":
            raise Conflict(f"hold {hold_id} is already released", hold_id=hold_id)
        request = current.release_request
        if request is None:
            raise Conflict(
                f"hold {hold_id} has no release request: one officer requests the release, another approves it",
                hold_id=hold_id,
            )
        if request.requested_by.subject == officer.subject:
            raise Forbidden(
                f"four-eyes: the release of hold {hold_id} was requested by you; a different compliance officer "
                "must approve it",
                hold_id=hold_id,
            )
        now = self._clock()

        def release(hold: LegalHold) -> LegalHold:
            if hold.status != "active" or hold.release_request != request:
                raise Conflict(f"hold {hold_id} changed while the release was approved", hold_id=hold_id)
            return hold.model_copy(update={"status": "released", "released_by": officer, "released_at": now})

        # Released from here (the sweep stops counting it); recordings keep its id until it is lifted below.
        released = self._update(hold_id, release)
        entry = self._ledger.append(
            EntryKind.HOLD_RELEASED,
            hold_subject(hold_id),
            {
                "matter_id": released.matter_id,
                "requested_by": request.requested_by.subject,
                "requested_at": instant(request.requested_at),
                "request_reason": request.reason,
                "request_seq": request.ledger_seq,
                "approved_by": officer.subject,
                "approval_reason": reason,
                "at": instant(now),
            },
            actor=officer.subject,
            idempotency_key=f"hold.released:{hold_id}",
        )
        released = self._update(hold_id, lambda h: h.model_copy(update={"released_ledger_seq": entry.seq}))
        return HoldResult(hold=released, release=self.lift(released))

    def lift(self, hold: LegalHold) -> HoldRelease:
        """Take a released hold off its recordings; clear the blob legal hold where no other active hold applies."""
        result = HoldRelease()
        active = [h for h in self.active() if h.id != hold.id]
        for record in self._recordings.with_hold(hold.id):
            remaining = self._lift_one(hold, record.id, active)
            if remaining is None:
                continue
            if remaining:
                result.still_held[record.id] = remaining
            else:
                result.lifted.append(record.id)
        return result

    def _lift_one(self, hold: LegalHold, recording_id: str, active: Sequence[LegalHold]) -> list[str] | None:
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None or found.record.seal is None or hold.id not in found.record.seal.legal_holds:
                return None
            record = found.record
            assert record.seal is not None
            others = {h for h in record.seal.legal_holds if h != hold.id and any(a.id == h for a in active)}
            # An active hold that matches but was never applied (e.g. the recording was sealed while it was being
            # placed) keeps the recording too; it is recorded now.
            others |= {a.id for a in active if matches(a, record.facts)}
            seal = record.seal.model_copy(update={"legal_holds": sorted(others)})
            updated = record.model_copy(update={"seal": seal})
            if not self._recordings.replace(updated, found.etag):
                continue
            enforcement: Enforcement | None = None
            if not others:
                # Only now may the store let the recording go (at its retention date).
                enforcement, _ = self._blobs.set_legal_hold(updated, False)
            self._ledger.append(
                HOLD_LIFTED,
                recording_subject(recording_id),
                {
                    "hold_id": hold.id,
                    "remaining_holds": [*sorted(others)],
                    "blob_hold_cleared": not others,
                    "worm": enforcement,
                },
                idempotency_key=f"{HOLD_LIFTED}:{hold.id}:{recording_id}",
            )
            return sorted(others)
        raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates while lifting a hold")

    # --- repair (run by the sweep timer) ---

    def reconcile(self) -> int:
        """Re-apply every active hold (catching recordings sealed while it was being placed, and re-sending blob
        holds), and lift released holds still on recordings (a crash after the release). Returns recordings
        changed. Each query asks for one hold id: served by the index, not a scan."""
        changed = 0
        for hold in self.find():
            if hold.status == "active":
                changed += len(self.apply(hold, resend=True).newly_held)
            else:
                changed += len(self.lift(hold).lifted)
        return changed

    def _update(self, hold_id: str, change: Callable[[LegalHold], LegalHold]) -> LegalHold:
        for _ in range(MAX_ATTEMPTS):
            found = self._store.get(hold_id)
            if found is None:
                raise NotFound(f"no legal hold {hold_id}", hold_id=hold_id)
            updated = change(found.hold)
            if self._store.replace(updated, found.etag):
                return updated
        raise DependencyUnavailable(f"hold {hold_id}: too many concurrent updates")


def officer_of(subject: str, name: str | None) -> Officer:
    if not subject:
        raise InvalidInput("the caller has no subject")
    return Officer(subject=subject, name=name)
