"""Deleting a recording whose retention has passed: the one path the sweep, an officer and an erasure request
all take, so the checks are the same everywhere.

1. Evaluate under a fresh read: the recording is sealed, its retention date (the later of the sealed date and
   what its class says today — a lengthened class counts at once) has passed, and no legal hold applies:
   neither one recorded on it nor an active hold that matches it but has not been applied yet.
2. Claim it: status `deleting`, with the plan of what will be deleted and its sealed hashes, written with
   If-Match on the etag that was evaluated. A hold applied in between changed the etag, so the claim fails and
   step 1 runs again and sees the hold; a hold that comes after the claim finds `deleting` and reports that it
   came too late. This is the only point where a hold and a deletion can race, and the etag serialises them.
3. Delete every object under the recording's folder, current version first, then every version, and what the
   lifecycle keeps of the recording elsewhere: its capture generations in `captures` (a salvaged one stays there
   until now) and its work in `scratch`. In Azure the store itself refuses while the WORM retention period runs or
   a legal hold is set on `recordings`; Azurite enforces neither, so on the emulator steps 1-2 are the only
   protection (captures and scratch have no WORM: steps 1-2 are all that protects them anywhere).
4. Append the deletion certificate to the ledger (idempotent by key; each object named with its container),
   then reduce the record to a tombstone: ids, hashes, dates and the verdict, no personal data.

A crash anywhere leaves either an untouched record or one in `deleting`; the next attempt finishes the latter.

Work already under way when the claim lands (an access copy being made, delivered late; a pair manifest) may
still write under the folder. Such writers write first and then read the record (`verbatim.lifecycle.activities`):
`sealed`, and a later claim lists what they wrote; `deleted`, and they call `remove_late_objects`, which deletes
what appeared since and certifies it in a `deleted.late` ledger entry; `deleting`, and the deletion lists the
folder once more after its tombstone (the access-copy trigger also tries again later, so a deletion that dies
between the two still loses nothing).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError

from verbatim.contracts.evidence import AccessCopyManifest, BlobRef, EntryKind, RecordingFacts, RecordingManifest
from verbatim.contracts.ledger import LogEntry
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import (
    DeletedBlob,
    DeletedRole,
    DeletionCertificate,
    DeletionReason,
    LegalHold,
    RecordingDeletion,
    RetentionClass,
    RetentionStatus,
)
from verbatim.evidence.ledger_entries import sealed_entry
from verbatim.evidence.sealed import sealed_parts
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.errors import Conflict, DependencyUnavailable, NotFound, RetentionViolation
from verbatim.retention.common import Clock, instant, recording_subject, utc, utc_now
from verbatim.retention.holds import HoldStore, matches
from verbatim.retention.recordings import RetentionRecordings
from verbatim.retention.storage import RecordingBlobs

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
# The ledger entry certifying objects deleted after the recording's deletion (written by work already under way).
LATE_DELETION = "deleted.late"
Decision = Literal["due", "held", "retained", "not_sealed", "deleted"]
# The states in which a continuation (part n > 0) writes nothing more under the recording's folder.
PART_FINAL = frozenset({"sealed", "not_recorded"})


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    until: datetime | None = None
    holds: tuple[str, ...] = ()
    retention_class: RetentionClass | None = None


def effective_until(
    sealed_until: datetime, started_at: datetime | None, retention_class: RetentionClass | None
) -> datetime:
    """The later of the date sealed (or extended) for the recording and what its class says now."""
    until = utc(sealed_until)
    if retention_class is not None and started_at is not None:
        until = max(until, utc(started_at) + timedelta(days=retention_class.days))
    return until


def evaluate(
    status: str,
    retention_class_name: str | None,
    retention_until: datetime | None,
    started_at: datetime | None,
    legal_holds: Sequence[str],
    classes: Mapping[str, RetentionClass],
    now: datetime,
) -> Verdict:
    """Is a recording due for deletion? Pure; the sweep runs this over every candidate."""
    if status == "deleted":
        return Verdict("deleted", "the recording is already deleted")
    if status != "sealed" or retention_until is None:
        return Verdict("not_sealed", f"the recording is {status}: only sealed recordings are deleted by retention")
    retention_class = classes.get(retention_class_name or "")
    until = effective_until(retention_until, started_at, retention_class)
    if legal_holds:
        return Verdict(
            "held",
            f"the recording is under legal hold ({', '.join(sorted(legal_holds))}) and cannot be deleted",
            until,
            tuple(sorted(legal_holds)),
            retention_class,
        )
    if now < until:
        basis = f" ({retention_class.legal_basis})" if retention_class else ""
        return Verdict(
            "retained",
            f"the recording is retained until {instant(until)} under retention class "
            f"{retention_class_name!r}{basis} and cannot be deleted before then",
            until,
            (),
            retention_class,
        )
    return Verdict("due", "the retention period has passed and no legal hold applies", until, (), retention_class)


def check(
    record: RecordingRecord, classes: Mapping[str, RetentionClass], active_holds: Sequence[LegalHold], now: datetime
) -> Verdict:
    """`evaluate` on a full record, counting active holds that match it but are not applied yet."""
    seal = record.seal
    holds = set(seal.legal_holds) if seal else set()
    if record.status == "sealed":
        holds |= {h.id for h in active_holds if matches(h, record.facts)}
        still_open = [c.generation for c in record.continuations if c.status not in PART_FINAL]
        if still_open and not holds:
            # A continuation (what the recorder captured after a salvage) is still captured or sealed into the
            # recording's folder: deleting now would leave that part behind. It goes once every part is sealed.
            return Verdict(
                "not_sealed",
                f"part {still_open[0]} of the recording is still being captured or sealed: the recording is deleted "
                "once every part is sealed",
            )
    return evaluate(
        record.status,
        seal.retention_class if seal else None,
        seal.retention_until if seal else None,
        record.facts.started_at,
        sorted(holds),
        classes,
        now,
    )


def tombstone_facts(facts: RecordingFacts) -> RecordingFacts:
    """The facts without personal data: no observed user, participants or phone numbers."""
    return facts.model_copy(update={"observed_user": None, "participants": [], "phone_numbers": []})


@dataclass(frozen=True)
class DeletionOutcome:
    recording_id: str
    record: RecordingRecord
    certificate: LogEntry | None
    already_deleted: bool = False


class RecordingDeleter:
    def __init__(
        self,
        recordings: RetentionRecordings,
        blobs: RecordingBlobs,
        holds: HoldStore,
        classes: Callable[[], Mapping[str, RetentionClass]],
        ledger: TransparencyLog,
        *,
        clock: Clock = utc_now,
        on_deleted: Callable[[RecordingRecord], object] | None = None,
        emulator: bool = False,
        stale_after: timedelta = timedelta(minutes=10),
    ) -> None:
        self._recordings = recordings
        self._blobs = blobs
        self._holds = holds
        self._classes = classes
        self._ledger = ledger
        self._clock = clock
        self._on_deleted = on_deleted
        self._emulator = emulator
        self._stale_after = stale_after

    def status(self, recording_id: str) -> RetentionStatus:
        found = self._recordings.read(recording_id)
        if found is None:
            raise NotFound(f"no recording {recording_id}", recording_id=recording_id)
        record = found.record
        classes = self._classes()
        verdict = check(record, classes, self._holds.find("active"), self._clock())
        seal = record.seal
        retention_class = verdict.retention_class or classes.get(seal.retention_class if seal else "")
        return RetentionStatus(
            recording_id=record.id,
            status=record.status,
            retention_class=seal.retention_class if seal else None,
            legal_basis=retention_class.legal_basis if retention_class else None,
            retention_until=verdict.until or (seal.retention_until if seal else None),
            legal_holds=list(verdict.holds),
            deletable=verdict.decision == "due",
            reason=verdict.reason,
            deletion=record.deletion,
        )

    def delete(
        self,
        recording_id: str,
        *,
        reason: DeletionReason,
        actor: str,
        request_id: str | None = None,
        note: str | None = None,
    ) -> DeletionOutcome:
        """Delete the recording if it is due (else `RetentionViolation` with the reason), or finish a deletion
        that was already claimed. Idempotent."""
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None:
                raise NotFound(f"no recording {recording_id}", recording_id=recording_id)
            record = found.record
            if record.status == "deleted":
                return DeletionOutcome(recording_id, record, None, already_deleted=True)
            if record.status == "deleting":
                self._ensure_abandoned(record)
                return self._finish(record)
            now = self._clock()
            verdict = check(record, self._classes(), self._holds.find("active"), now)
            if verdict.decision != "due":
                raise RetentionViolation(
                    f"recording {recording_id} cannot be deleted: {verdict.reason}",
                    recording_id=recording_id,
                    decision=verdict.decision,
                    legal_holds=list(verdict.holds),
                    retention_until=instant(verdict.until) if verdict.until else None,
                )
            assert record.seal is not None and verdict.until is not None
            claim = RecordingDeletion(
                reason=reason,
                rule=_rule(reason, record, verdict, request_id, actor) + (f"; reason given: {note}" if note else ""),
                retention_class=record.seal.retention_class,
                retention_until=verdict.until,
                request_id=request_id,
                claimed_at=now,
                claimed_by=actor,
                planned=self._plan(record),
            )
            claimed = record.model_copy(update={"status": "deleting", "deletion": claim})
            if self._recordings.replace(claimed, found.etag):
                return self._finish(claimed)
            # The record changed since it was evaluated (a hold, a late event): evaluate again.
        raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates while deleting")

    def remove_late_objects(self, recording_id: str, *, actor: str) -> LogEntry | None:
        """Delete whatever is under a deleted recording's folder or in its capture folder (written after its deletion
        by work that was already under way) and certify it in a `deleted.late` ledger entry naming the deletion
        certificate; None when the recording is not deleted (a `deleting` one is finished by its deletion, which
        lists the folder afresh) or nothing is there. Idempotent."""
        found = self._recordings.read(recording_id)
        if found is None or found.record.status != "deleted":
            return None
        record = found.record
        # Not scratch: the work under way that writes there after a deletion (the access-copy trigger's chunks)
        # removes its own work when it finds the recording deleted (`activities.clean_up`).
        objects = self._blobs.everything(record, scratch=False)
        if not objects:
            return None
        removed = [
            DeletedBlob(blob=o.name, version_id=o.version_id, role="other", container=o.container) for o in objects
        ]
        # Certified before the deletes: a retry after a crash lists the same objects, finds the same entry by its
        # key and deletes them (nothing is deleted unrecorded).
        deletion = record.deletion
        listed = "\n".join(sorted(_listed_as(b) for b in removed))
        entry = self._ledger.append(
            LATE_DELETION,
            recording_subject(record.id),
            {
                "recording_id": record.id,
                "certificate_seq": deletion.certificate_seq if deletion else None,
                "rule": "written under the recording's folder after its deletion by work already under way",
                "deleted_at": instant(self._clock()),
                "deleted": [b.model_dump(mode="json") for b in removed],
                "worm": "emulator-not-enforced" if self._emulator else "azure",
            },
            actor=actor,
            idempotency_key=f"{LATE_DELETION}:{record.id}:{hashlib.sha256(listed.encode()).hexdigest()[:32]}",
        )
        self._blobs.delete(objects)
        log.warning(
            "objects written after the recording was deleted were deleted too",
            extra={"recording_id": record.id, "objects": len(removed), "ledger_seq": entry.seq},
        )
        return entry

    def _ensure_abandoned(self, record: RecordingRecord) -> None:
        """Only the claimant finishes a deletion, unless it was abandoned (its process died): then anyone may."""
        deletion = record.deletion
        assert deletion is not None
        since = self._clock() - deletion.claimed_at
        if since < self._stale_after:
            raise Conflict(
                f"recording {record.id} is being deleted (since {instant(deletion.claimed_at)}, by "
                f"{deletion.claimed_by})",
                recording_id=record.id,
            )

    # --- steps ---

    def _plan(self, record: RecordingRecord) -> list[DeletedBlob]:
        """Every object under the recording's folder, with the role and hash the seal gave it, and the recording's
        objects in captures and scratch (role `other`: the seal hashed none of them)."""
        known = self._sealed_objects(record)
        planned: dict[str, DeletedBlob] = {}
        for item in self._blobs.everything(record):
            sealed = known.get(item.name) if item.container == "recordings" else None
            planned[f"{item.container}\n{item.name}\n{item.version_id}"] = DeletedBlob(
                blob=item.name,
                version_id=item.version_id,
                role=sealed.role if sealed else "other",
                bytes=sealed.bytes if sealed else None,
                sha256=sealed.sha256 if sealed else None,
                container=item.container,
            )
        present = {p.blob for p in planned.values() if p.container == "recordings"}
        for name, sealed in known.items():
            if name not in present:
                planned[f"recordings\n{name}\nmissing"] = sealed.model_copy(update={"found": False})
        return sorted(planned.values(), key=lambda b: (_CONTAINER_ORDER.index(b.container), b.blob, b.version_id or ""))

    def _sealed_objects(self, record: RecordingRecord) -> dict[str, DeletedBlob]:
        """Role, size and SHA-256 of each sealed object: from the `sealed` ledger entry (the authority) and the
        manifest (which also names the capture manifest and unmixed tracks)."""
        found: dict[str, DeletedBlob] = {}
        seal = record.seal
        if seal is None:
            return found
        manifest = self._manifest(seal.manifest_blob, seal.manifest_sha256)
        if manifest is not None:
            for track in manifest.evidence:
                found[track.blob_name] = _blob(track.blob_name, track.version_id, "evidence", track.bytes, track.sha256)
            for video in manifest.video:  # camera and screen-share streams are evidence too (docs/video.md)
                found[video.blob_name] = _blob(video.blob_name, video.version_id, "evidence", video.bytes, video.sha256)
            copies: list[BlobRef | None] = [manifest.access_copy, manifest.video_access_copy]
            copies += manifest.video_access_copy.streams if manifest.video_access_copy is not None else []
            for a in copies:
                if a is not None:
                    found[a.blob_name] = _blob(a.blob_name, a.version_id, "access_copy", a.bytes, a.sha256)
            if manifest.capture_manifest is not None:
                c = manifest.capture_manifest
                found[c.blob_name] = _blob(c.blob_name, c.version_id, "capture_manifest", c.bytes, c.sha256)
        entry = self._sealed_entry(record)
        details: Mapping[str, Any] = entry.details if entry is not None else {}
        recorded_manifest = details.get("manifest") or {}
        if recorded_manifest:
            found[str(recorded_manifest["blob"])] = _blob(
                str(recorded_manifest["blob"]),
                recorded_manifest.get("version_id"),
                "manifest",
                recorded_manifest.get("bytes"),
                recorded_manifest.get("sha256"),
            )
        else:
            found[seal.manifest_blob] = _blob(seal.manifest_blob, None, "manifest", None, seal.manifest_sha256)
        for item in details.get("evidence") or []:
            found[str(item["blob"])] = _blob(
                str(item["blob"]), item.get("version_id"), "evidence", item.get("bytes"), item.get("sha256")
            )
        self._access_objects(record, found)
        access = details.get("access_copy")
        if access:
            previous = found.get(str(access["blob"]))
            found[str(access["blob"])] = _blob(
                str(access["blob"]),
                access.get("version_id"),
                "access_copy",
                previous.bytes if previous else None,
                access.get("sha256"),
            )
        return found

    def _access_objects(self, record: RecordingRecord, found: dict[str, DeletedBlob]) -> None:
        """The access copies sealed after the evidence (recording manifest v2): each part's access-copy manifest
        and the copies it names, with the hashes sealed."""
        assert record.seal is not None
        for part in sealed_parts(record.seal):
            name, sha256 = part.access_manifest_blob, part.access_manifest_sha256
            if name is None or sha256 is None:
                continue
            found[name] = _blob(name, part.access_manifest_version_id, "manifest", None, sha256)
            try:
                body = self._blobs.container.get_blob_client(name).download_blob().readall()
            except ResourceNotFoundError:
                continue
            if hashlib.sha256(body).hexdigest() != sha256:
                log.warning("access manifest %s does not hash to the sealed value", name)
                continue
            found[name] = _blob(name, part.access_manifest_version_id, "manifest", len(body), sha256)
            copies = AccessCopyManifest.model_validate_json(body)
            streams = copies.video_access_copy.streams if copies.video_access_copy is not None else []
            for copy in (copies.access_copy, copies.video_access_copy, *streams):
                if copy is not None:
                    found[copy.blob_name] = _blob(
                        copy.blob_name, copy.version_id, "access_copy", copy.bytes, copy.sha256
                    )

    def _manifest(self, name: str, sha256: str) -> RecordingManifest | None:
        try:
            body = self._blobs.container.get_blob_client(name).download_blob().readall()
        except ResourceNotFoundError:
            return None
        if hashlib.sha256(body).hexdigest() != sha256:
            log.warning("manifest %s does not hash to the sealed value; the ledger's hashes are used", name)
            return None
        return RecordingManifest.model_validate_json(body)

    def _sealed_entry(self, record: RecordingRecord) -> LogEntry | None:
        if record.seal is None:
            return None
        entry = self._ledger.entry(record.seal.ledger_seq)
        if entry is None or entry.kind != EntryKind.SEALED or entry.subject != recording_subject(record.id):
            entry = sealed_entry(self._ledger, record.id)
        return entry

    def _finish(self, record: RecordingRecord) -> DeletionOutcome:
        deletion = record.deletion
        assert deletion is not None
        planned_names = {(p.container, p.blob) for p in deletion.planned}
        objects = self._blobs.everything(record)
        deleted = self._blobs.delete(objects)
        # Anything that appeared after the plan (it should not) is deleted and certified too.
        extra = [
            DeletedBlob(blob=o.name, version_id=o.version_id, role="other", container=o.container)
            for o in objects
            if (o.container, o.name) not in planned_names
        ]
        now = self._clock()
        certificate = self._certificate(record, deletion, [*deletion.planned, *extra], now)
        entry = self._ledger.append(
            EntryKind.DELETED,
            recording_subject(record.id),
            certificate.model_dump(mode="json"),
            actor=deletion.claimed_by,
            idempotency_key=f"deleted:{record.id}",
        )
        tombstone = self._tombstone(record.id, entry, deleted)
        # Once more, now that the tombstone is there: what work under way wrote after the listing above (a writer
        # that looked before the tombstone) goes too, certified apart; one that looks later sees the tombstone.
        self.remove_late_objects(record.id, actor=deletion.claimed_by)
        if self._on_deleted is not None:
            try:
                self._on_deleted(tombstone)
            except Exception:
                log.warning("the search index was not updated for deleted recording %s", record.id, exc_info=True)
        return DeletionOutcome(record.id, tombstone, entry)

    def _certificate(
        self, record: RecordingRecord, deletion: RecordingDeletion, blobs: list[DeletedBlob], now: datetime
    ) -> DeletionCertificate:
        seal = record.seal
        facts = record.facts
        retention_class = self._classes().get(deletion.retention_class or "")
        return DeletionCertificate(
            recording_id=record.id,
            call_id=facts.call_id,
            call_chain_id=facts.call_chain_id,
            reason=deletion.reason,
            rule=deletion.rule,
            retention_class=deletion.retention_class,
            retention_days=retention_class.days if retention_class else None,
            legal_basis=retention_class.legal_basis if retention_class else None,
            retention_until=instant(deletion.retention_until) if deletion.retention_until else None,
            request_id=deletion.request_id,
            sealed_seq=seal.ledger_seq if seal else None,
            manifest_sha256=seal.manifest_sha256 if seal else None,
            evidence_sha256=seal.evidence_sha256 if seal else None,
            verdict=("interrupted" if seal.interrupted else "complete") if seal else None,
            started_at=instant(facts.started_at) if facts.started_at else None,
            ended_at=instant(facts.ended_at) if facts.ended_at else None,
            sealed_at=instant(seal.sealed_at) if seal else None,
            deleted_at=instant(now),
            deleted=blobs,
            worm="emulator-not-enforced" if self._emulator else "azure",
        )

    def _tombstone(self, recording_id: str, entry: LogEntry, deleted: int) -> RecordingRecord:
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None:
                raise NotFound(f"recording {recording_id} vanished while it was being deleted")
            record = found.record
            if record.status == "deleted":
                return record
            deletion = record.deletion
            assert deletion is not None
            done = deletion.model_copy(
                update={
                    "deleted_at": datetime.fromisoformat(str(entry.details["deleted_at"]).replace("Z", "+00:00")),
                    "certificate_seq": entry.seq,
                    "certificate_hash": entry.leaf_hash,
                    "blobs_deleted": max(deletion.blobs_deleted, deleted),
                }
            )
            tombstone = record.model_copy(
                update={"status": "deleted", "facts": tombstone_facts(record.facts), "deletion": done}
            )
            if self._recordings.replace(tombstone, found.etag):
                return tombstone
        raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates writing its tombstone")


_CONTAINER_ORDER = ("recordings", "captures", "scratch")


def _listed_as(blob: DeletedBlob) -> str:
    """How an object enters the `deleted.late` idempotency key: as before for `recordings` (so a retry across the
    upgrade finds its entry), prefixed with the container otherwise."""
    line = f"{blob.blob} {blob.version_id or ''}"
    return line if blob.container == "recordings" else f"{blob.container}:{line}"


def _blob(name: str, version_id: object, role: DeletedRole, size: object, sha256: object) -> DeletedBlob:
    return DeletedBlob(
        blob=name,
        version_id=str(version_id) if version_id else None,
        role=role,
        bytes=size if isinstance(size, int) else None,
        sha256=str(sha256) if sha256 else None,
    )


def _rule(reason: DeletionReason, record: RecordingRecord, verdict: Verdict, request_id: str | None, actor: str) -> str:
    seal = record.seal
    assert seal is not None and verdict.until is not None
    retention_class = verdict.retention_class
    period = (
        f"retention class {seal.retention_class!r} ({retention_class.days} days from the call's start"
        if retention_class
        else f"retention class {seal.retention_class!r} (the sealed retention date"
    )
    base = f"{period}, until {instant(verdict.until)}) has passed and no legal hold applies"
    if reason == "erasure_request":
        return f"data-subject erasure request {request_id}: {base}"
    if reason == "officer_request":
        return f"deleted at the request of {actor}: {base}"
    return f"retention sweep: {base}"
