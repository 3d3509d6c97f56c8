"""The compliance API's service layer: what the `/api/v1` triggers call. Each method checks the caller's
roles, records the read (ledger + audit, see `verbatim.ledger.access`) and returns a contract model.

Roles: `Compliance.Officer` searches and replays the access copy; `Compliance.Auditor` reads metadata,
reports, the ledger and the audit trail, and may replay the lossless evidence; `Recorder.Admin` operates
the system and gets none of this.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import JsonValue

from verbatim.api.media import ByteRange, Unsatisfiable, parse_range
from verbatim.contracts.api import (
    AuditPage,
    CoverageUserPage,
    LastRecording,
    MediaCopy,
    MediaLinks,
    PairMemberView,
    PairView,
    RecordingDetail,
    RecordingPage,
    ReportList,
    ReportView,
    SealedPartDetail,
    VerdictPage,
    VideoStreamLink,
)
from verbatim.contracts.evidence import AccessCopyManifest, BlobRef, EntryKind, RecordingManifest
from verbatim.contracts.ledger import LogEntry
from verbatim.contracts.lifecycle import DELETION_BEGUN, PairManifest, RecordingRecord, SealedPartIndex
from verbatim.contracts.policy import CoverageReport
from verbatim.contracts.reconciliation import VerdictState
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.evidence.names import is_video_track
from verbatim.evidence.seal import recording_subject
from verbatim.evidence.sealed import (
    AccessCopyNotReady,
    EvidenceTampered,
    IntegrityChecker,
    read_access_manifest,
    read_sealed,
    read_sealed_manifest,
    sealed_access,
    sealed_part,
    sealed_parts,
)
from verbatim.evidence.verify import PAIRED
from verbatim.ledger.access import AccessLog, returned
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle.pairs import PairStore, pair_key
from verbatim.platform.audit import AuditEvent, AuditQuery, AuditReader
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, Principal
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import Conflict, InvalidInput, NotFound, VerbatimError
from verbatim.platform.inputs import bounded_int
from verbatim.platform.times import format_datetime, parse_datetime
from verbatim.reconciliation.report import CompletenessReporter, parse_day, report_subject, verify_report
from verbatim.reconciliation.roster import STATES, RosterQuery, roster_page
from verbatim.reconciliation.store import RecordingFinder, VerdictQuery, VerdictStore
from verbatim.search.index import (
    RecordingIndex,
    SearchQuery,
    canonical_time,
    indexed_upns,
    summary_of,
    verdict_for,
    with_upns,
)

READERS = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
MAX_PAGE = 200
MAX_PART = 10_000  # a recording's sealed parts (continuations after salvage); far more than any call has
DIRECTIONS = ("inbound", "outbound", "unknown")
CALL_TYPES = ("peerToPeer", "groupCall", "unknown")
VERDICTS: tuple[VerdictState, ...] = ("recorded", "partial", "missing", "pending")
CONTENT_TYPES: dict[MediaCopy, str] = {
    "access": "audio/ogg",
    "evidence": "audio/flac",
    "video": "video/mp4",
    "pair": "audio/ogg",
}
EXTENSIONS: dict[MediaCopy, str] = {"access": "ogg", "evidence": "flac", "video": "mp4", "pair": "pair.ogg"}
COVERAGE_SUBJECT = "policy:coverage"
COVERAGE_WINDOW = timedelta(days=7)
MAX_COVERAGE_WINDOW = timedelta(days=31)


class RangeRequired(VerbatimError):
    status = 413
    title = "Use Range requests"


def _limit(params: Mapping[str, str], default: int = 50) -> int:
    return bounded_int(params.get("limit"), "limit", 1, MAX_PAGE, default)


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(f"`{name}` must be one of {', '.join(allowed)}")
    return value


def _text(params: Mapping[str, str], name: str, max_length: int = 256) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > max_length:
        raise InvalidInput(f"`{name}` is too long")
    return value or None


def _window(params: Mapping[str, str]) -> tuple[str | None, str | None]:
    start = canonical_time(params["from"], "from") if params.get("from") else None
    end = canonical_time(params["to"], "to") if params.get("to") else None
    if start and end and end <= start:
        raise InvalidInput("`to` must be after `from`")
    return start, end


def search_query(params: Mapping[str, str]) -> SearchQuery:
    """`GET /api/v1/recordings` parameters: participant, observedUser, from, to, direction, callType, modality,
    verdict, limit (1-200, default 50), continuation."""
    start, end = _window(params)
    verdict = _choice(params, "verdict", VERDICTS)
    return SearchQuery(
        participant=_text(params, "participant"),
        observed_user=_text(params, "observedUser"),
        start_from=start,
        start_to=end,
        direction=_choice(params, "direction", DIRECTIONS),
        call_type=_choice(params, "callType", CALL_TYPES),
        modality=_text(params, "modality", 32),
        verdict=next((v for v in VERDICTS if v == verdict), None),
        limit=_limit(params),
        continuation=params.get("continuation") or None,
    )


MEDIA_COPIES: dict[str, MediaCopy] = {"access": "access", "evidence": "evidence", "video": "video", "pair": "pair"}


def media_copy(value: str | None) -> MediaCopy:
    """`GET /api/v1/recordings/{id}/media?copy=`: access (default), evidence, video or pair."""
    copy = MEDIA_COPIES.get((value or "access").strip())
    if copy is None:
        raise InvalidInput("`copy` must be access, evidence, video or pair")
    return copy


def verdict_query(params: Mapping[str, str]) -> VerdictQuery:
    start, end = _window(params)
    verdict = _choice(params, "verdict", VERDICTS)
    return VerdictQuery(
        start_from=start,
        start_to=end,
        user_id=_text(params, "user"),
        verdict=next((v for v in VERDICTS if v == verdict), None),
        call_id=_text(params, "callId"),
        limit=_limit(params),
        continuation=params.get("continuation") or None,
    )


def roster_query(params: Mapping[str, str], now: datetime) -> RosterQuery:
    """`GET /api/v1/policy/coverage/users` parameters: from, to (default: the last 7 days; at most 31 days), state,
    user (object id or part of a UPN), mustRecord (true/false), limit (1-200, default 50), continuation."""
    start, end = _window(params)
    end = end or format_datetime(now)
    start = start or format_datetime(min(parse_datetime(end) or now, now) - COVERAGE_WINDOW)
    if end <= start:
        raise InvalidInput("`to` must be after `from`")
    first, last = parse_datetime(start), parse_datetime(end)
    if first is not None and last is not None and last - first > MAX_COVERAGE_WINDOW:
        raise InvalidInput(f"the window may span at most {MAX_COVERAGE_WINDOW.days} days")
    state = _choice(params, "state", STATES)
    must_record = _choice(params, "mustRecord", ("true", "false"))
    return RosterQuery(
        window_from=start,
        window_to=end,
        state=next((s for s in STATES if s == state), None),
        user=_text(params, "user"),
        must_record=None if must_record is None else must_record == "true",
        limit=_limit(params),
        continuation=params.get("continuation") or None,
    )


@dataclass(frozen=True)
class MediaResponse:
    """A media answer the trigger turns into an HttpResponse as is."""

    status: int
    headers: dict[str, str]
    body: bytes


def _filters(query: SearchQuery) -> dict[str, JsonValue]:
    names = ("participant", "observed_user", "start_from", "start_to", "direction", "call_type", "modality", "verdict")
    return {name: getattr(query, name) for name in names if getattr(query, name) is not None}


@dataclass
class ComplianceApi:
    index: RecordingIndex
    recordings: RecordingFinder
    verdicts: VerdictStore
    recording_blobs: BlobStore
    ledger: TransparencyLog
    access: AccessLog
    reporter: CompletenessReporter
    audit_reader: AuditReader
    pairs: PairStore | None = None
    trusted_fingerprints: set[str] = field(default_factory=set)
    chunk_bytes: int = 1024 * 1024
    max_full_bytes: int = 16 * 1024 * 1024
    base_path: str = "/api/v1"
    _manifests: dict[str, RecordingManifest] = field(default_factory=dict, repr=False)
    _integrity: IntegrityChecker | None = field(default=None, repr=False)

    # --- search and detail ------------------------------------------------------------------------------

    def search(self, query: SearchQuery, principal: Principal, reason: str | None) -> RecordingPage:
        principal.require(*READERS)
        items, continuation = self.index.search(query)
        self.access.record(
            principal,
            "recording.search",
            "recordings:search",
            reason,
            {"filters": _filters(query), **returned(item.id for item in items), "continued": bool(query.continuation)},
        )
        return RecordingPage(items=items, continuation=continuation)

    def _record(self, recording_id: str) -> RecordingRecord:
        record = self.recordings.get(recording_id)
        if record is None:
            raise NotFound(f"no recording {recording_id}")
        return record

    def detail(self, recording_id: str, principal: Principal, reason: str | None) -> RecordingDetail:
        principal.require(*READERS)
        self.access.record(principal, "recording.read", recording_subject(recording_id), reason)
        record = self._record(recording_id)
        chain = record.facts.call_chain_id
        verdicts = [v for v in self.verdicts.for_call(chain)] if chain else []
        observed = record.facts.observed_user.id if record.facts.observed_user else None
        mine = [v for v in verdicts if recording_id in v.recording_ids or v.user_id == observed]
        # The recorder knows people by object id only; show the UPNs the search entry was given.
        indexed = self.index.get(recording_id)
        upns = indexed_upns(indexed.model_dump(mode="json", by_alias=True)) if indexed is not None else {}
        summary = summary_of(with_upns(record, upns), verdict_for(record, mine))
        detail = RecordingDetail(
            recording=summary,
            recorder_instance=record.facts.recorder_instance,
            policy_identifier=record.facts.policy_identifier,
            stop_reason=record.stop_reason,
            failure_reason=record.failure_reason,
            problems=list(record.problems),
            verdicts=mine,
            proof_status="not_sealed",
            media=self._links(recording_id, record, principal),
        )
        seal = record.seal
        if seal is None:
            return detail
        if record.status in DELETION_BEGUN:
            # Deleted under retention: its objects are gone on purpose — nothing to read back, and no tampering.
            certificate = record.deletion.certificate_seq if record.deletion else None
            detail.problems.append(
                "deleted under retention"
                + (f" (deletion certificate: ledger entry {certificate})" if certificate else " (under way)")
            )
            return detail
        entry = self.ledger.entry(seal.ledger_seq)
        parts = sealed_parts(seal)
        problems: list[str] = []
        manifests: dict[int, RecordingManifest] = {}
        accesses: dict[int, AccessCopyManifest] = {}  # the access copies sealed after the evidence (v2)
        for part in parts:
            where = f"part {part.part}: " if len(parts) > 1 else ""
            try:
                manifests[part.part], body = read_sealed_manifest(
                    self.recording_blobs, part.manifest_blob, part.manifest_version_id, part.manifest_sha256
                )
            except EvidenceTampered as tampered:
                problems.append(f"{where}{tampered.detail}")
                continue
            if part.part == parts[0].part:
                detail.manifest = manifests[part.part]
                detail.manifest_sha256 = hashlib.sha256(body).hexdigest()
            try:
                copies = read_access_manifest(self.recording_blobs, part)
            except EvidenceTampered as tampered:
                problems.append(f"{where}{tampered.detail}")
                copies = None
            if copies is not None:
                accesses[part.part] = copies
            if part.part == parts[0].part:
                detail.access_manifest = copies
            problems.extend(
                f"{where}{problem}" for problem in self._checker().check(manifests[part.part], copies).problems
            )
        detail.integrity = "tampered" if problems else "intact"
        detail.integrity_problems = problems
        if problems:
            self._tampered(principal, recording_id, EvidenceTampered("; ".join(problems)))
        if entry is not None and entry.kind == EntryKind.SEALED:
            detail.sealed_entry = entry
            sealed_sha = _sealed_sha(entry)
            detail.manifest_matches_ledger = sealed_sha is not None and detail.manifest_sha256 == sealed_sha
            try:
                detail.proof = self.ledger.prove(entry.index)
            except NotFound:
                detail.proof = None
            detail.proof_status = "proven" if detail.proof is not None else "awaiting_checkpoint"
        if len(parts) > 1:
            detail.parts = [self._part(part, manifests.get(part.part)) for part in parts]
        detail.media.video_streams = self._stream_links(recording_id, parts, manifests, accesses, detail.media)
        paired = self._paired_entry(record)
        if paired is not None:
            detail.pair = self._pair_view(principal, recording_id, paired)
            if not detail.pair.manifest_intact:
                detail.integrity = "tampered"
                detail.integrity_problems.append(f"the pair manifest {detail.pair.manifest_blob} is not as sealed")
            if detail.pair.access_copy:
                detail.media.pair = f"{self._media_base(recording_id)}?copy=pair"
        return detail

    def _stream_links(
        self,
        recording_id: str,
        parts: list[SealedPartIndex],
        manifests: dict[int, RecordingManifest],
        accesses: dict[int, AccessCopyManifest],
        links: MediaLinks,
    ) -> list[VideoStreamLink]:
        """Each video stream's own MP4 copy, from the part `media(copy="video")` serves (the newest with a video
        copy)."""
        if links.video is None:
            return []
        for part in reversed(parts):
            manifest, copies = manifests.get(part.part), accesses.get(part.part)
            video = (manifest.video_access_copy if manifest is not None else None) or (
                copies.video_access_copy if copies is not None else None
            )
            if video is not None:
                return [
                    VideoStreamLink(
                        track=stream.track,
                        kind=stream.kind,
                        source_id=stream.source_id,
                        participant_id=stream.participant_id,
                        url=f"{links.video}&stream={urllib.parse.quote(stream.track, safe='')}",
                    )
                    for stream in video.streams
                ]
        return []

    def _part(self, part: SealedPartIndex, manifest: RecordingManifest | None) -> SealedPartDetail:
        """`manifest`: the part's sealed manifest as read and checked against its hash (None: missing or
        changed, which the recording's integrity problems say)."""
        entry = self.ledger.entry(part.ledger_seq)
        sealed_sha = _sealed_sha(entry) if entry is not None and entry.kind == EntryKind.SEALED else None
        return SealedPartDetail(
            part=part.part,
            manifest_blob=part.manifest_blob,
            manifest_sha256=part.manifest_sha256,
            manifest_matches_ledger=manifest is not None and sealed_sha == part.manifest_sha256,
            ledger_seq=part.ledger_seq,
            first_sample=part.first_sample,
            duration_seconds=part.duration_seconds,
            interrupted=part.interrupted,
            manifest=manifest,
        )

    def _checker(self) -> IntegrityChecker:
        if self._integrity is None:
            self._integrity = IntegrityChecker(self.recording_blobs)
        return self._integrity

    def _sealed_manifest(self, part: SealedPartIndex) -> RecordingManifest:
        """A part's sealed manifest, checked against its seal (kept per process by that hash: the bytes that
        hash to it never change)."""
        manifest = self._manifests.get(part.manifest_sha256)
        if manifest is None:
            manifest, _ = read_sealed_manifest(
                self.recording_blobs, part.manifest_blob, part.manifest_version_id, part.manifest_sha256
            )
            if len(self._manifests) >= 256:
                self._manifests.pop(next(iter(self._manifests)))
            self._manifests[part.manifest_sha256] = manifest
        return manifest

    def _tampered(self, principal: Principal, recording_id: str, error: EvidenceTampered) -> None:
        """A security event for every time a read finds sealed evidence changed or gone."""
        self.access.audit.record(
            AuditEvent(
                category="security",
                action="evidence.tampered",
                actor=principal.subject,
                actor_name=principal.name,
                target=recording_subject(recording_id),
                detail={"problem": error.detail},
                at=self.access.clock(),
            )
        )

    # --- pairs (2N recording) -----------------------------------------------------------------------------------

    def _paired_entry(self, record: RecordingRecord) -> LogEntry | None:
        """The `paired` ledger entry about the recording for its pair's newest sealed manifest (None: not one of a
        sealed pair). The pair document says which entry; the entry, in the ledger, is what is trusted."""
        key = pair_key(record)
        if self.pairs is None or key is None:
            return None
        pair = self.pairs.get(key.id)
        ref = next((r for r in pair.manifests if r.recording_id == record.id), None) if pair is not None else None
        if ref is None:
            return None
        entry = self.ledger.entry(ref.ledger_seq)
        if entry is None or entry.kind != PAIRED or entry.subject != recording_subject(record.id):
            return None
        return entry

    def _pair_pending(self, record: RecordingRecord) -> bool:
        """Another recording of the same call leg and policy user exists, but the pair is not sealed yet."""
        key = pair_key(record)
        pair = self.pairs.get(key.id) if self.pairs is not None and key is not None else None
        return pair is not None and len(pair.members) > 1

    def _pair_view(self, principal: Principal, recording_id: str, entry: LogEntry) -> PairView:
        recorded = entry.details.get("manifest")
        manifest_ref = recorded if isinstance(recorded, dict) else {}
        name, digest = str(manifest_ref.get("blob")), str(manifest_ref.get("sha256"))
        copy = entry.details.get("access_copy")
        union_ms = entry.details.get("union_ms")
        members = entry.details.get("members")
        ids = [str(m) for m in members] if isinstance(members, list) else []
        instances: dict[str, str] = {}
        intact = False
        try:
            body = self.recording_blobs.read(name)
        except BlobNotFound:
            body = None
        if body is not None and hashlib.sha256(body).hexdigest() == digest:
            intact = True
            manifest = PairManifest.model_validate_json(body)
            instances = {m.recording_id: m.recorder_instance for m in manifest.members}
        else:
            problem = "is gone from storage" if body is None else "was changed after sealing"
            self._tampered(principal, recording_id, EvidenceTampered(f"the pair manifest {name} {problem}", blob=name))
        return PairView(
            pair_id=str(entry.details.get("pair_id")),
            members=[
                PairMemberView(recording_id=m, recorder_instance=instances.get(m, ""), this_recording=m == recording_id)
                for m in ids
            ],
            union_seconds=(union_ms / 1000) if isinstance(union_ms, int | float) else 0.0,
            manifest_blob=name,
            manifest_sha256=digest,
            ledger_seq=entry.seq,
            manifest_intact=intact,
            access_copy=isinstance(copy, dict),
            access_copy_sha256=str(copy.get("sha256")) if isinstance(copy, dict) else None,
        )

    def _pair_copy(self, record: RecordingRecord) -> tuple[BlobRef, dict[str, JsonValue]]:
        """The pair's sealed access copy as the `paired` ledger entry pins it; problem+json when there is none."""
        if record.seal is None:
            raise Conflict(f"recording {record.id} is not sealed yet; the pair's access copy follows its seal")
        entry = self._paired_entry(record)
        if entry is None:
            if self._pair_pending(record):
                raise Conflict(
                    f"recording {record.id} is one of a pair that is not sealed yet (another recording of the call "
                    "is still being recorded or sealed); the pair's access copy is made when both are"
                )
            raise NotFound(
                f"recording {record.id} is not one of a pair: no other recorder recorded this call leg "
                "(ConcurrentInvitationCount 2 or a paired application), so there is no union copy"
            )
        copy = entry.details.get("access_copy")
        if not isinstance(copy, dict):
            raise NotFound(f"the pair of recording {record.id} was sealed without an access copy of its union")
        ref = BlobRef(blob_name=str(copy["blob"]), bytes=int(str(copy["bytes"])), sha256=str(copy["sha256"]))
        details: dict[str, JsonValue] = {
            "copy": "pair",
            "pair_id": entry.details.get("pair_id"),
            "paired_entry": entry.seq,
            "blob": ref.blob_name,
            "bytes": ref.bytes,
        }
        return ref, details

    def _media_base(self, recording_id: str) -> str:
        return f"{self.base_path}/recordings/{urllib.parse.quote(recording_id, safe='')}/media"

    def _links(self, recording_id: str, record: RecordingRecord, principal: Principal) -> MediaLinks:
        seal = record.seal
        if seal is None:
            return MediaLinks()
        base = self._media_base(recording_id)
        # The newest part's copies cover every part; while they are being made (sealed after the evidence) the
        # access link is given, and answers 409 with Retry-After until they are sealed.
        pending = sealed_parts(seal)[-1].access_pending
        return MediaLinks(
            access=f"{base}?copy=access"
            if (seal.access_copy_blob or pending) and principal.has_any(*READERS)
            else None,
            evidence=f"{base}?copy=evidence" if principal.has_any(COMPLIANCE_AUDITOR) else None,
            video=f"{base}?copy=video" if seal.video_access_copy_blob and principal.has_any(*READERS) else None,
            access_ready=not pending,
        )

    # --- media ----------------------------------------------------------------------------------------------

    def media(
        self,
        recording_id: str,
        copy: MediaCopy,
        range_header: str | None,
        principal: Principal,
        reason: str,
        part: int | None = None,
        stream: str | None = None,
    ) -> MediaResponse:
        """A bounded part of the access copy, the video access copy or the pair's access copy of the union (Officer,
        Auditor; `copy=pair`: as the recording's `paired` ledger entry pinned it) or of the lossless evidence
        (Auditor only), read through the sealed parts: the access copy and the video copy of the newest part (they
        cover every part; a video copy sealed before continuations had theirs: part 0's) unless `part` names
        another, the evidence of part 0 unless `part` names another. Only
        the sealed version of the part's object is served, and only bytes that hash to what its manifest sealed
        (`EvidenceTampered`: 409). `stream` (with the video copy only): that camera's or screen share's own MP4
        copy (the call's audio with that stream alone), for a player that switches streams."""
        principal.require(*((COMPLIANCE_AUDITOR,) if copy == "evidence" else READERS))
        if stream is not None and (copy != "video" or not is_video_track(stream)):
            raise InvalidInput(
                "`stream` names a video stream (`screen-<source id>` or `video-<source id>`) of `copy=video`"
            )
        record = self._record(recording_id)
        if record.status in DELETION_BEGUN:
            # Deleted under retention: nothing of it is served (and its absence is no tampering).
            raise NotFound(
                f"recording {recording_id} was deleted under retention: its {copy} copy is gone",
                recording_id=recording_id,
                deletion_certificate_seq=record.deletion.certificate_seq if record.deletion else None,
            )
        if copy == "pair":
            if part is not None:
                raise InvalidInput("`part` does not apply to copy=pair (the union covers every part of both)")
            return self._serve(recording_id, copy, *self._pair_copy(record), range_header, principal, reason)
        if record.seal is None:
            raise NotFound(f"recording {recording_id} has no sealed {copy} copy")
        parts = sealed_parts(record.seal)
        if part is None:
            chosen = parts[-1] if copy in ("access", "video") else parts[0]
        else:
            found = next((p for p in parts if p.part == part), None)
            if found is None:
                raise NotFound(f"recording {recording_id} has no sealed part {part}")
            chosen = found
        try:
            manifest = self._sealed_manifest(chosen)
        except EvidenceTampered as tampered:
            self._tampered(principal, recording_id, tampered)
            raise
        ref = self._sealed_copy(principal, recording_id, chosen, manifest, copy, stream)
        video_sealed = manifest.video_access_copy is not None or manifest.access_sealed_separately
        if not video_sealed and copy == "video" and part is None and chosen.part > 0:
            chosen = parts[0]  # a continuation sealed before continuations got their own MP4 copy
            try:
                manifest = self._sealed_manifest(chosen)
            except EvidenceTampered as tampered:
                self._tampered(principal, recording_id, tampered)
                raise
            ref = self._sealed_copy(principal, recording_id, chosen, manifest, copy, stream)
        if ref is None and stream is not None and manifest.video_access_copy is not None:
            held = ", ".join(s.track for s in manifest.video_access_copy.streams) or "none"
            raise NotFound(f"recording {recording_id} has no sealed copy of video stream {stream} (it has: {held})")
        if ref is None:
            raise NotFound(f"recording {recording_id} has no sealed {copy} copy")
        details: dict[str, JsonValue] = {"copy": copy, "part": chosen.part, "blob": ref.blob_name, "bytes": ref.bytes}
        if stream is not None:
            details["stream"] = stream
        suffix = f"-{stream}" if stream else ""
        return self._serve(recording_id, copy, ref, details, range_header, principal, reason, suffix)

    def _serve(
        self,
        recording_id: str,
        copy: MediaCopy,
        ref: BlobRef,
        details: dict[str, JsonValue],
        range_header: str | None,
        principal: Principal,
        reason: str,
        suffix: str = "",
    ) -> MediaResponse:
        """A bounded part of one sealed object, read and recorded as a media read (ledger + audit, with the reason);
        only bytes that hash to what was sealed (`EvidenceTampered`: 409). `suffix`: after the recording id in the
        file name."""
        size = ref.bytes  # what was sealed, not what the store holds under the name now
        answer = parse_range(range_header, size, self.chunk_bytes)
        headers = {
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="{recording_id}{suffix}.{EXTENSIONS[copy]}"',
        }
        if isinstance(answer, Unsatisfiable):
            self.access.record(
                principal,
                f"media.{copy}",
                recording_subject(recording_id),
                reason,
                {**details, "range": range_header},
                per_hour=True,
                distinct=str(details.get("stream") or ""),
            )
            return MediaResponse(416, {**headers, "Content-Range": answer.content_range}, b"")
        if answer is None and size > self.max_full_bytes:
            raise RangeRequired(
                f"the {copy} copy is {size} bytes; request it in parts with a Range header (bytes=0-)", size=size
            )
        part_range = answer if isinstance(answer, ByteRange) else ByteRange(0, max(0, size - 1))
        self.access.record(
            principal,
            f"media.{copy}",
            recording_subject(recording_id),
            reason,
            {**details, "range": part_range.content_range(size)},
            per_hour=True,
            distinct=str(details.get("stream") or ""),
        )
        try:
            data = (
                read_sealed(self.recording_blobs, ref, part_range.start, part_range.length)
                if answer is not None
                else read_sealed(self.recording_blobs, ref)
            )
        except EvidenceTampered as tampered:
            self._tampered(principal, recording_id, tampered)
            raise
        headers["Content-Type"] = CONTENT_TYPES[copy]
        if answer is None:
            return MediaResponse(200, headers, data)
        return MediaResponse(206, {**headers, "Content-Range": part_range.content_range(size)}, data)

    def _sealed_copy(
        self,
        principal: Principal,
        recording_id: str,
        part: SealedPartIndex,
        manifest: RecordingManifest,
        copy: MediaCopy,
        stream: str | None = None,
    ) -> BlobRef | None:
        """The sealed object of one part to serve: from its manifest (the evidence; the access copies of a
        version-1 manifest), else from its sealed access-copy manifest. A copy not sealed yet is never served:
        `AccessCopyNotReady` (409, Retry-After). (The pair's copy is served from the pair manifest instead.)"""
        if copy == "pair":
            return None
        ref = sealed_part(manifest, copy, stream)
        if ref is not None or copy == "evidence" or not manifest.access_sealed_separately:
            return ref
        if part.access_pending or part.access_manifest_blob is None:
            raise AccessCopyNotReady(
                f"recording {recording_id}: the evidence is sealed and the {copy} copy is being made; it can be "
                "replayed once it is sealed too",
                part=part.part,
            )
        try:
            copies = read_access_manifest(self.recording_blobs, part)
        except EvidenceTampered as tampered:
            self._tampered(principal, recording_id, tampered)
            raise
        if copies is None:
            return None
        video = copies.video_access_copy
        if copy == "video" and stream is not None and video is not None:
            found = video.stream(stream)
            if found is None:
                held = ", ".join(s.track for s in video.streams) or "none"
                raise NotFound(f"recording {recording_id} has no sealed copy of video stream {stream} (it has: {held})")
            return found
        return sealed_access(copies, copy)

    # --- verdicts, reports, ledger, audit ---------------------------------------------------------------------

    def verdict_page(self, query: VerdictQuery, principal: Principal, reason: str | None) -> VerdictPage:
        principal.require(*READERS)
        filters: dict[str, JsonValue] = {
            k: v
            for k, v in {
                "from": query.start_from,
                "to": query.start_to,
                "user": query.user_id,
                "verdict": query.verdict,
                "callId": query.call_id,
            }.items()
            if v is not None
        }
        items, continuation = self.verdicts.query(query)
        self.access.record(
            principal,
            "verdict.search",
            "verdicts:search",
            reason,
            {"filters": filters, **returned(v.id for v in items), "continued": bool(query.continuation)},
        )
        return VerdictPage(items=items, continuation=continuation)

    def reports(self, principal: Principal, reason: str | None) -> ReportList:
        principal.require(COMPLIANCE_AUDITOR)
        self.access.record(principal, "report.list", "reports:completeness", reason)
        return self.reporter.list_reports()

    def report(self, day: str, principal: Principal, reason: str | None) -> ReportView:
        principal.require(COMPLIANCE_AUDITOR)
        parsed = parse_day(day)
        self.access.record(principal, "report.read", report_subject(parsed.isoformat()), reason)
        report, blob = self.reporter.latest(parsed)
        digest = report.signature.content_sha256 if report.signature else None
        entries = list(subject_entries(self.ledger, report_subject(parsed.isoformat())))
        entry = next((e for e in reversed(entries) if e.details.get("sha256") == digest), None)
        trusted = self.trusted_fingerprints or None
        return ReportView(report=report, blob=blob, signature_valid=verify_report(report, trusted), ledger_entry=entry)

    def coverage_users(
        self, report: CoverageReport, params: Mapping[str, str], principal: Principal, reason: str | None
    ) -> CoverageUserPage:
        """Every policy user of the last coverage audit, with whether their calls of the window were recorded."""
        principal.require(*READERS)
        query = roster_query(params, self.access.clock())
        filters: dict[str, JsonValue] = {
            "from": query.window_from,
            "to": query.window_to,
            **{k: v for k, v in (("state", query.state), ("user", query.user)) if v is not None},
            **({"mustRecord": query.must_record} if query.must_record is not None else {}),
        }
        page = roster_page(report, query, self.verdicts, self._last_recording)
        self.access.record(
            principal,
            "coverage.users.read",
            COVERAGE_SUBJECT,
            reason,
            {
                "filters": filters,
                **returned(item.user_id for item in page.items),
                "continued": bool(query.continuation),
            },
        )
        return page

    def _last_recording(self, user_id: str) -> LastRecording | None:
        items, _ = self.index.search(SearchQuery(observed_user=user_id, limit=1))
        if not items:
            return None
        newest = items[0]
        return LastRecording(
            recording_id=newest.id,
            call_id=newest.call_id,
            started_at=newest.started_at,
            status=newest.status,
            verdict=newest.verdict,
        )

    def audit_page(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> AuditPage:
        principal.require(COMPLIANCE_AUDITOR)
        day = parse_day(params.get("day") or (self.access.clock().date().isoformat())).isoformat()
        query = AuditQuery(
            day=day,
            category=_choice(params, "category", ("security", "access", "alert")),
            action=_text(params, "action", 128),
            target=_text(params, "target", 512),
            limit=_limit(params, 100),
            continuation=params.get("continuation") or None,
        )
        filters: dict[str, JsonValue] = {
            name: value
            for name, value in (
                ("day", day),
                ("category", query.category),
                ("action", query.action),
                ("target", query.target),
                ("limit", query.limit),
            )
            if value is not None
        }
        self.access.record(
            principal, "audit.read", f"audit:{day}", reason, {"filters": filters, "continued": bool(query.continuation)}
        )
        items, continuation = self.audit_reader.query(query)
        return AuditPage(items=items, continuation=continuation)


def _sealed_sha(entry: LogEntry) -> str | None:
    manifest = entry.details.get("manifest")
    if isinstance(manifest, dict):
        value = manifest.get("sha256")
        return value if isinstance(value, str) else None
    return None
