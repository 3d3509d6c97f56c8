"""Exports as the API and the orchestration see them: create (a ledger entry, a record), the steps the durable
orchestration runs (plan, attest, checkpoint, package, assemble), status, download in bounded Range parts,
deletion, and the retention sweep that expires packages after `EXPORT_RETENTION_DAYS` unless the legal hold they
were made from is still active.

Roles: `Compliance.Officer` creates, downloads and deletes; officers and auditors read status and the list.
Every read and change is recorded: `export.created`, `exported` (per recording), `export.completed`,
`export.failed`, `export.downloaded` (one per reader and UTC hour, an audit record per request) and
`export.deleted` ledger entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import JsonValue

from verbatim.api.media import ByteRange, Unsatisfiable, parse_range
from verbatim.contracts.exports import (
    AccessCopyWait,
    ExportBatch,
    ExportLink,
    ExportList,
    ExportObject,
    ExportObjects,
    ExportPlan,
    ExportProgress,
    ExportRecord,
    ExportRequest,
    ExportResult,
    ExportStage,
    ExportView,
    PackagePart,
    PartOf,
    PartSummary,
    Requester,
)
from verbatim.contracts.lifecycle import DELETION_BEGUN, RecordingRecord
from verbatim.evidence.sealed import sealed_parts
from verbatim.exports import assemble, blocks, names, parts
from verbatim.exports.assemble import assemble_package, write_index
from verbatim.exports.blocks import BlockSink
from verbatim.exports.chats import ChatSources, attest_chat, package_chat, plan_for_hold, plan_for_recordings
from verbatim.exports.links import PackageLinks
from verbatim.exports.recording import (
    RecordingSources,
    attest_recording,
    deleted_under_retention,
    deletion_note,
    media_sizes,
    package_recording,
)
from verbatim.exports.sealed_media import SealMismatch
from verbatim.exports.store import ExportStore
from verbatim.exports.work import (
    ChatSnapshot,
    Excluded,
    ExportWork,
    PartRecord,
    PartsFile,
    PlanFile,
    PlannedChat,
    SegmentRecord,
    SnapshotBatch,
)
from verbatim.exports.zip64 import SegmentWriter
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, Principal
from verbatim.platform.blobs import BlobStore
from verbatim.platform.errors import Conflict, InvalidInput, NotFound, VerbatimError
from verbatim.platform.times import format_datetime
from verbatim.search.index import RecordingIndex, SearchQuery

READERS = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
SEARCH_PAGE = 200
BATCH = 8  # items (recordings, chats) per activity of the orchestration: a snapshot file and a segment per batch
ACCESS_WAIT_NAMED = 20  # pending recordings named in the wait (and in the failure's message)
MAX_RECORDINGS = 50_000  # items per export: the plan, the assembly's manifest and directory are held in memory


class RangeRequired(VerbatimError):
    status = 413
    title = "Use Range requests"


class LinksUnavailable(VerbatimError):
    status = 409
    title = "No download links in this deployment"


def export_subject(export_id: str) -> str:
    return f"export:{export_id}"


PACKAGE_OBJECT = "package.zip"
_CONTENT_TYPES = {
    "package": "application/zip",
    "part": "application/zip",
    "index": "application/json",
    "index-signature": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StoredObject:
    """An object of a package to download, and the blob that holds it."""

    item: ExportObject
    blob: str

    @property
    def name(self) -> str:
        return self.item.name

    @property
    def kind(self) -> str:
        return self.item.kind

    @property
    def bytes(self) -> int:
        return self.item.bytes

    @property
    def manifest_sha256(self) -> str | None:
        return self.item.manifest_sha256


@dataclass(frozen=True)
class Download:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class ExportService:
    store: ExportStore
    log: TransparencyLog
    media: BlobStore
    work_store: BlobStore
    audit: AuditLog
    index: RecordingIndex
    sources: RecordingSources
    held_recordings: Callable[[str], list[RecordingRecord]]
    hold_active: Callable[[str], bool | None]  # None: no such hold
    search_query: Callable[[Mapping[str, str]], SearchQuery]
    clock: Callable[[], datetime]
    retention_days: int = 30
    access_copy_wait_minutes: int = 30  # how long an export waits for access copies still being made
    access_copy_poll_seconds: int = 30  # and how often it checks them meanwhile
    chunk_bytes: int = 1024 * 1024
    chats: ChatSources | None = None  # None: chat capture does not run in this deployment
    links: PackageLinks | None = None  # None: storage is reached with a key (local), not an Entra identity
    link_minutes: int = 15
    part_blocks: int | None = None  # blocks per part of a multi-part package (None: as many as a blob takes)
    part_items: int = MAX_RECORDINGS  # items per part
    base_path: str = "/api/v1"
    _ids: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    # Where each export splits (immutable once the checkpoint wrote it): read once per process, not per batch.
    _splits: dict[str, PartsFile] = field(default_factory=dict)

    def _split_of(self, work: ExportWork) -> PartsFile:
        found = self._splits.get(work.export_id)
        if found is None:
            found = work.parts()
            if found is None:  # packaged before the split was decided: one package (an export begun before)
                return PartsFile(firsts=[0])
            self._splits[work.export_id] = found
        return found

    def work(self, export_id: str) -> ExportWork:
        return ExportWork(self.work_store, export_id)

    def _audit(self, principal: Principal, action: str, export_id: str, reason: str | None, **detail: Any) -> None:
        self.audit.record(
            AuditEvent(
                category="access",
                action=action,
                actor=principal.subject,
                actor_name=principal.name,
                target=export_subject(export_id),
                detail={"reason": reason, **detail},
                at=self.clock(),
            )
        )

    # --- the API ----------------------------------------------------------------------------------------------

    def create(self, request: ExportRequest, principal: Principal, reason: str) -> ExportRecord:
        principal.require(COMPLIANCE_OFFICER)
        if request.options.transcripts:
            raise InvalidInput("transcripts: Verbatim makes no transcripts yet; leave `transcripts` false")
        if request.options.chats and self.chats is None:
            raise InvalidInput("chats: chat capture is not available in this deployment; leave `chats` false")
        if request.search is not None:
            self.search_query(request.search.params())  # a bad filter is a 400 now, not a failed export later
        if request.hold_id is not None and self.hold_active(request.hold_id) is None:
            raise NotFound(f"no legal hold {request.hold_id}")
        now = self.clock()
        export_id = self._ids()
        selection: dict[str, JsonValue] = (
            {"recordingIds": list(request.recording_ids)}
            if request.recording_ids is not None
            else {"search": dict(request.search.params())}
            if request.search is not None
            else {"holdId": request.hold_id}
        )
        requester = Requester(subject=principal.subject, name=principal.name)
        entry = self.log.append(
            "export.created",
            export_subject(export_id),
            {
                "reason": reason,
                "title": request.title,
                "selection": _digest_selection(selection),
                "options": request.options.model_dump(mode="json", by_alias=True),
                "requested_by_name": principal.name,
            },
            actor=principal.subject,
            idempotency_key=f"export.created:{export_id}",
        )
        record = ExportRecord(
            id=export_id,
            status="queued",
            title=request.title,
            requested_by=requester,
            reason=reason,
            selection=selection,
            options=request.options,
            created_at=format_datetime(now),
            expires_at=format_datetime(now + timedelta(days=self.retention_days)),
            progress=ExportProgress(stage="planning", export_id=export_id),
            created_seq=entry.index,
        )
        self.store.create(record)
        self._audit(principal, "export.create", export_id, reason, selection=_digest_selection(selection))
        return record

    def _get(self, export_id: str) -> ExportRecord:
        record = self.store.get(export_id)
        if record is None:
            raise NotFound(f"no export {export_id}")
        return record

    def view(self, export_id: str, principal: Principal, reason: str | None) -> ExportView:
        principal.require(*READERS)
        self._audit(principal, "export.read", export_id, reason)
        return self._view(self._get(export_id))

    def status(self, export_id: str) -> ExportView:
        """The view, unrecorded: for the answer to the request that created the export (recorded as created)."""
        return self._view(self._get(export_id))

    def _view(self, record: ExportRecord) -> ExportView:
        held = False
        hold = record.selection.get("holdId")
        if isinstance(hold, str):
            held = bool(self.hold_active(hold))
        download = None
        if record.status == "completed" and record.result is not None:
            path = "parts" if record.result.parts else "package"
            download = f"{self.base_path}/exports/{record.id}/{path}"
        return ExportView(export=record, held=held, download=download)

    def recent(self, principal: Principal, reason: str | None, limit: int = 100) -> ExportList:
        principal.require(*READERS)
        self.audit.record(
            AuditEvent(category="access", action="export.list", actor=principal.subject, actor_name=principal.name)
        )
        return ExportList(items=self.store.recent(limit))

    def objects(self, record: ExportRecord) -> list[StoredObject]:
        """What a completed export's package is, to download: its ZIP; or the index, its signature and each part."""
        return [StoredObject(item, blob) for item, blob in self._objects(record)]

    def _objects(self, record: ExportRecord) -> list[tuple[ExportObject, str]]:
        result = record.result
        if result is None:
            return []
        base = f"{self.base_path}/exports/{record.id}/parts"
        if not result.parts:
            name = PACKAGE_OBJECT
            package = ExportObject(
                name=name,
                kind="package",
                bytes=result.package_bytes,
                manifest_sha256=result.package_manifest_sha256,
                recordings=result.recordings,
                chats=result.chats,
                download=f"{base}/{name}",
            )
            return [(package, result.package_blob)]
        work = self.work(record.id)
        index = ExportObject(
            name=names.PACKAGE_INDEX,
            kind="index",
            bytes=result.index_bytes,
            manifest_sha256=result.package_manifest_sha256,
            recordings=result.recordings,
            chats=result.chats,
            download=f"{base}/{names.PACKAGE_INDEX}",
        )
        signature = ExportObject(
            name=names.PACKAGE_INDEX_SIGNATURE,
            kind="index-signature",
            bytes=result.index_signature_bytes,
            download=f"{base}/{names.PACKAGE_INDEX_SIGNATURE}",
        )
        found = [
            (index, work.top_blob(names.PACKAGE_INDEX)),
            (signature, work.top_blob(names.PACKAGE_INDEX_SIGNATURE)),
        ]
        found += [
            (
                ExportObject(
                    name=part.name,
                    kind="part",
                    bytes=part.bytes,
                    number=part.number,
                    manifest_sha256=part.manifest_sha256,
                    recordings=len(part.recordings),
                    chats=len(part.chats),
                    download=f"{base}/{part.name}",
                ),
                part.blob,
            )
            for part in result.parts
        ]
        return found

    def _completed(self, export_id: str) -> ExportRecord:
        record = self._get(export_id)
        if record.status != "completed" or record.result is None:
            raise Conflict(f"export {export_id} is {record.status}: there is no package to download")
        return record

    def _object(self, record: ExportRecord, name: str | None) -> StoredObject:
        """The object `name` of the package (None: the single package; a multi-part one has no single ZIP)."""
        assert record.result is not None
        if name is None:
            if record.result.parts:
                raise Conflict(
                    f"export {record.id} is a multi-part package of {len(record.result.parts)} parts: list them at "
                    f"{self.base_path}/exports/{record.id}/parts and download each"
                )
            name = PACKAGE_OBJECT
        for stored in self.objects(record):
            if stored.name == name:
                return stored
        raise NotFound(
            f"export {record.id} has no {name!r}; its parts are listed at {self.base_path}/exports/{record.id}/parts"
        )

    def list_objects(self, export_id: str, principal: Principal, reason: str | None) -> ExportObjects:
        """`GET /exports/{id}/parts`: what to download (a read, recorded)."""
        principal.require(*READERS)
        record = self._completed(export_id)
        assert record.result is not None
        self._audit(principal, "export.parts", export_id, reason)
        return ExportObjects(
            export_id=export_id,
            multi_part=bool(record.result.parts),
            package_manifest_sha256=record.result.package_manifest_sha256,
            items=[stored.item for stored in self.objects(record)],
        )

    def download(
        self, export_id: str, range_header: str | None, principal: Principal, reason: str, name: str | None = None
    ) -> Download:
        """A piece of the package, or of its object `name` (at most `chunk_bytes`): 206 with Content-Range, 416
        beyond the end; without a Range header the whole object if it fits in one piece, else 413."""
        principal.require(COMPLIANCE_OFFICER)
        record = self._completed(export_id)
        assert record.result is not None
        target = self._object(record, name)
        size = target.bytes
        answer = parse_range(range_header, size, self.chunk_bytes)
        hour = self.clock().strftime("%Y%m%dT%H")
        digest = hashlib.sha256(f"{export_id}\n{reason}".encode()).hexdigest()[:24]
        self.log.append(
            "export.downloaded",
            export_subject(export_id),
            {"reason": reason, "actor_name": principal.name, "package_bytes": record.result.package_bytes},
            actor=principal.subject,
            idempotency_key=f"export.downloaded:{principal.subject}:{digest}:{hour}",
        )
        filename = f"verbatim-export-{export_id}.zip" if target.kind == "package" else target.name
        headers = {
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Package-Manifest-SHA256": record.result.package_manifest_sha256,
        }
        if target.kind == "part" and target.manifest_sha256:
            headers["X-Part-Manifest-SHA256"] = target.manifest_sha256
        detail: dict[str, Any] = {} if target.kind == "package" else {"object": target.name}
        if isinstance(answer, Unsatisfiable):
            self._audit(principal, "export.download", export_id, reason, range=range_header, **detail)
            return Download(416, {**headers, "Content-Range": answer.content_range}, b"")
        if answer is None and size > self.chunk_bytes:
            raise RangeRequired(f"{filename} is {size} bytes; download it in parts with Range headers (bytes=0-)")
        part = answer if isinstance(answer, ByteRange) else ByteRange(0, max(0, size - 1))
        self._audit(principal, "export.download", export_id, reason, range=part.content_range(size), **detail)
        data = self.work_store.read(target.blob, offset=part.start, length=part.length) if size else b""
        headers["Content-Type"] = _CONTENT_TYPES[target.kind]
        if answer is None:
            return Download(200, headers, data)
        return Download(206, {**headers, "Content-Range": part.content_range(size)}, data)

    def link(self, export_id: str, principal: Principal, reason: str, name: str | None = None) -> ExportLink:
        """A read-only user-delegation SAS URL of the package (or of its object `name`), valid `link_minutes`: the
        download straight from storage. Issuing it is recorded like a download (`export.downloaded`, `via: link`,
        one entry per link)."""
        principal.require(COMPLIANCE_OFFICER)
        record = self._completed(export_id)
        assert record.result is not None
        target = self._object(record, name)
        if self.links is None:
            raise LinksUnavailable(
                "this deployment reaches storage with a key, not a Microsoft Entra identity, so it cannot issue "
                f"user-delegation links; download through {self.base_path}/exports/{export_id}/parts with Range"
            )
        now = self.clock()
        expires = now + timedelta(minutes=self.link_minutes)
        filename = f"verbatim-export-{export_id}.zip" if target.kind == "package" else target.name
        url = self.links.link(target.blob, expires_at=expires, filename=filename)
        details: dict[str, JsonValue] = {
            "reason": reason,
            "actor_name": principal.name,
            "package_bytes": record.result.package_bytes,
            "via": "link",
            "link_expires_at": format_datetime(expires),
        }
        if target.kind != "package":
            details["object"] = target.name
        self.log.append(
            "export.downloaded",
            export_subject(export_id),
            details,
            actor=principal.subject,
            idempotency_key=f"export.link:{export_id}:{self._ids()}",
        )
        self._audit(principal, "export.link", export_id, reason, expires_at=format_datetime(expires))
        return ExportLink(
            url=url,
            expires_at=format_datetime(expires),
            package_bytes=target.bytes,
            package_manifest_sha256=target.manifest_sha256 or record.result.package_manifest_sha256,
        )

    def delete(self, export_id: str, principal: Principal, reason: str) -> ExportRecord:
        principal.require(COMPLIANCE_OFFICER)
        record = self._get(export_id)
        if record.status in ("queued", "running"):
            raise Conflict(f"export {export_id} is still {record.status}; delete it once it has finished")
        if record.status in ("deleted", "expired"):
            return record
        self._audit(principal, "export.delete", export_id, reason)
        return self._remove(record, "deleted", reason, principal)

    def _remove(self, record: ExportRecord, status: str, reason: str, principal: Principal | None) -> ExportRecord:
        work = self.work(record.id)
        work.remove_package()  # the ZIP, or the index and every part, and what is left of the work area
        now = self.clock()
        self.log.append(
            "export.deleted",
            export_subject(record.id),
            {"reason": reason, "status": status, "package_bytes": record.result.package_bytes if record.result else 0},
            actor=principal.subject if principal else None,
            idempotency_key=f"export.deleted:{record.id}",
        )
        deleted_by = Requester(subject=principal.subject, name=principal.name) if principal else None
        return self.store.update(
            record.id,
            lambda r: r.model_copy(
                update={"status": status, "deleted_at": format_datetime(now), "deleted_by": deleted_by}
            ),
        )

    def sweep(self) -> list[str]:
        """Expire packages past their date, except those whose legal hold is still active; returns the ids."""
        now = self.clock()
        expired = []
        for record in self.store.expiring(format_datetime(now)):
            hold = record.selection.get("holdId")
            if isinstance(hold, str) and self.hold_active(hold):
                continue
            self._remove(record, "expired", f"export retention of {self.retention_days} days ended", None)
            expired.append(record.id)
        return expired

    # --- the orchestration's steps ------------------------------------------------------------------------

    def progress(
        self, export_id: str, stage: ExportStage, total: int, done: int = 0, media_bytes: int = 0, *, added: int = 0
    ) -> None:
        """Record progress; within a stage `done` never goes back. Batches run at once and finish in any order:
        each adds what it did (`added`), counted in the record's read-change-write, not by listing the work area."""

        def change(r: ExportRecord) -> ExportRecord:
            same = r.progress.stage == stage
            count = min(total, max(done, r.progress.done if same else 0) + added)
            progress = ExportProgress(
                stage=stage, export_id=export_id, total=total, done=count, media_bytes=media_bytes
            )
            return r.model_copy(
                update={"progress": progress, "status": "running" if r.status == "queued" else r.status}
            )

        self.store.update(export_id, change)

    def plan(self, export_id: str) -> ExportPlan:
        """Resolve the selection into recordings (sealed ones, oldest first) and keep the list in the work area."""
        record = self._get(export_id)
        work = self.work(export_id)
        existing = work.plan()
        if existing is None:
            existing = self._resolve(record)
            if existing.total > MAX_RECORDINGS:
                raise InvalidInput(
                    f"an export holds at most {MAX_RECORDINGS} recordings and chats; narrow the selection"
                )
            work.save_plan(existing)
        self.progress(export_id, "attesting", existing.total, 0)
        return ExportPlan(export_id=export_id, total=existing.total)

    def pending_access_copies(self, export_id: str) -> AccessCopyWait:
        """The planned recordings whose access copies are still being made (an export that carries access copies
        waits for them rather than leave one out: they are sealed after the evidence, usually within minutes)."""
        record = self._get(export_id)
        work = self.work(export_id)
        plan = work.plan()
        if plan is None:
            raise RuntimeError(f"export {export_id} has no plan")
        pending: list[str] = []
        if record.options.access_copies:
            # Every planned recording the first time, then only those still pending (a sealed copy stays sealed).
            candidates = work.access_pending()
            for recording_id in plan.recording_ids if candidates is None else candidates:
                found = self.sources.record(recording_id)
                if found is not None and found.seal is not None and sealed_parts(found.seal)[-1].access_pending:
                    pending.append(recording_id)
            work.save_access_pending(pending)
        if pending:
            self.progress(export_id, "waiting_for_access_copies", plan.total, 0)
        return AccessCopyWait(
            export_id=export_id,
            pending=len(pending),
            recording_ids=pending[:ACCESS_WAIT_NAMED],
            poll_seconds=self.access_copy_poll_seconds,
            max_waits=self.access_copy_wait_minutes * 60 // self.access_copy_poll_seconds,
        )

    def _resolve(self, record: ExportRecord) -> PlanFile:
        selection = record.selection
        candidates: list[RecordingRecord | str] = []
        ids = selection.get("recordingIds")
        search = selection.get("search")
        hold = selection.get("holdId")
        if isinstance(ids, list):
            for value in ids:
                found = self.sources.record(str(value))
                candidates.append(found if found is not None else str(value))
        elif isinstance(search, dict):
            params = {str(k): str(v) for k, v in search.items()}
            continuation: str | None = None
            while True:
                query = self.search_query({**params, "limit": str(SEARCH_PAGE), "continuation": continuation or ""})
                items, continuation = self.index.search(query)
                for item in items:
                    found = self.sources.record(item.id)
                    candidates.append(found if found is not None else item.id)
                if not continuation:
                    break
        elif isinstance(hold, str):
            candidates.extend(self.held_recordings(hold))
        included: list[RecordingRecord] = []
        excluded: list[Excluded] = []
        seen: set[str] = set()
        for candidate in candidates:
            if isinstance(candidate, str):
                excluded.append(Excluded(recording_id=candidate, reason="no such recording"))
                continue
            if candidate.id in seen:
                continue
            seen.add(candidate.id)
            if candidate.status in DELETION_BEGUN:
                excluded.append(Excluded(recording_id=candidate.id, reason=deletion_note(candidate)))
                continue
            if candidate.status != "sealed" or candidate.seal is None:
                excluded.append(Excluded(recording_id=candidate.id, reason=f"not sealed (status {candidate.status})"))
                continue
            included.append(candidate)
        included.sort(key=lambda r: (format_datetime(r.facts.started_at) if r.facts.started_at else "", r.id))
        chats: list[PlannedChat] = []
        if record.options.chats and self.chats is not None:
            if isinstance(hold, str):
                chats = plan_for_hold(self.chats, hold)
            else:
                chats = plan_for_recordings(self.chats, included, self._join_url)
        return PlanFile(recording_ids=[r.id for r in included], chats=chats, excluded=excluded)

    def _join_url(self, record: RecordingRecord) -> str | None:
        """The meeting's join URL from the recording's call record (it names the meeting chat's thread)."""
        chain = record.facts.call_chain_id
        if not chain or self.sources.call_record is None:
            return None
        raw = self.sources.call_record(chain)
        url = raw.get("joinWebUrl") if raw else None
        return url if isinstance(url, str) else None

    def attest(self, batch: ExportBatch) -> int:
        """Append each item's `exported` entry and keep what it saw, one file for the batch (written when the
        whole batch is done; a batch done again appends nothing new: its appends are idempotent by key)."""
        record = self._get(batch.export_id)
        work = self.work(batch.export_id)
        plan = work.plan()
        if plan is None:
            raise RuntimeError(f"export {batch.export_id} has no plan")
        end = min(batch.end, plan.total)
        if work.snapshots(batch.first, end) is not None:
            return end - batch.first
        snapshots = SnapshotBatch(first=batch.first, end=end)
        for position in range(batch.first, end):
            chat = plan.chat_at(position)
            if chat is not None:
                snapshots.chats.append(self._attest_chat(record, position, chat))
                continue
            recording_id = plan.recording_ids[position]
            snapshot = attest_recording(self.log, self.sources, record, position, recording_id)
            with self._deleted_meanwhile(recording_id):
                snapshot.media_sizes = media_sizes(self.media, record, snapshot.record)
            snapshots.recordings.append(snapshot)
            self.audit.record(
                AuditEvent(
                    category="access",
                    action="recording.export",
                    actor=record.requested_by.subject,
                    actor_name=record.requested_by.name,
                    target=f"recording:{recording_id}",
                    detail={"export": record.id, "reason": record.reason},
                    event_id=f"recording.export:{record.id}:{recording_id}",
                    at=self.clock(),
                )
            )
        work.save_snapshots(snapshots)
        self.progress(batch.export_id, "attesting", plan.total, added=end - batch.first)
        return end - batch.first

    def _attest_chat(self, record: ExportRecord, position: int, chat: PlannedChat) -> ChatSnapshot:
        if self.chats is None:
            raise InvalidInput("chats: chat capture is not available in this deployment")
        snapshot = attest_chat(self.log, self.chats, record, position, chat)
        self.audit.record(
            AuditEvent(
                category="access",
                action="chat.export",
                actor=record.requested_by.subject,
                actor_name=record.requested_by.name,
                target=f"chat:{chat.chat_id}",
                detail={"export": record.id, "reason": record.reason, "bundles": len(chat.bundle_ids)},
                event_id=f"chat.export:{record.id}:{chat.chat_id}",
                at=self.clock(),
            )
        )
        return snapshot

    def checkpoint(self, export_id: str, batch: int = BATCH) -> int:
        """Sign a checkpoint covering every `exported` entry of the export, and decide where the package splits
        into parts (batches of `batch` items are packaged as segments); returns the checkpoint's tree size."""
        note = self.log.checkpoint()
        if note is None:
            raise RuntimeError("the ledger is empty")
        size = self.log.verify_checkpoint(note)
        record = self._get(export_id)
        work = self.work(export_id)
        plan = work.plan()
        total = plan.total if plan else 0
        attested = work.all_snapshots()
        if sum(b.end - b.first for b in attested) != total:
            raise RuntimeError(f"export {export_id}: not every item was attested before the checkpoint")
        for snapshots in attested:
            exported = snapshots.exported()
            if exported and max(exported) >= size:
                raise RuntimeError(
                    f"checkpoint {size} does not cover the exported entries of items {snapshots.first} .. "
                    f"{snapshots.end - 1}"
                )
        if work.parts() is None:
            work.save_parts(self._split(attested, total, batch))
        self.progress(record.id, "packaging", total, 0)
        return size

    def _split(self, attested: list[SnapshotBatch], total: int, batch: int) -> PartsFile:
        sizes: dict[int, parts.ItemSize] = {}
        for snapshots in attested:
            for recording in snapshots.recordings:
                other = parts.ITEM_BYTES + parts.TRAIL_ENTRY_BYTES * (len(recording.trail) + len(recording.exported))
                sizes[recording.position] = parts.ItemSize(recording.media_sizes, other)
            for chat in snapshots.chats:
                other = parts.CHAT_BUNDLE_BYTES * len(chat.bundle_ids)
                other += parts.TRAIL_ENTRY_BYTES * (len(chat.trail) + len(chat.exported))
                sizes[chat.position] = parts.ItemSize((), other)
        limit = assemble.MAX_BLOCKS if self.part_blocks is None else min(self.part_blocks, assemble.MAX_BLOCKS)
        found = parts.split(
            [sizes.get(position, parts.ItemSize()) for position in range(total)],
            batch=batch,
            max_blocks=limit,
            max_items=self.part_items,
            block_bytes=blocks.BLOCK_BYTES,
            max_block_bytes=blocks.MAX_BLOCK_BYTES,
        )
        return PartsFile(firsts=found.firsts, estimates=found.estimates)

    def package(self, batch: ExportBatch) -> list[PartSummary]:
        """Write the batch's items into one segment of the package (staged blocks) and keep where each entry is,
        one file for the batch; a batch already packaged answers from that file. In a multi-part package a batch
        that straddles two parts writes a segment into each."""
        record = self._get(batch.export_id)
        work = self.work(batch.export_id)
        plan = work.plan()
        if plan is None:
            raise RuntimeError(f"export {batch.export_id} has no plan")
        split = self._split_of(work)
        end = min(batch.end, plan.total)
        summaries: list[PartSummary] = []
        for first, last, part in split.pieces(batch.first, end):
            segment = work.segment(first, last) or self._package_segment(record, work, plan, first, last, part, batch)
            summaries += [item.summary() for item in segment.items]
        return summaries

    def _package_segment(
        self,
        record: ExportRecord,
        work: ExportWork,
        plan: PlanFile,
        first: int,
        end: int,
        part: int,
        batch: ExportBatch,
    ) -> SegmentRecord:
        snapshots = work.snapshots(batch.first, min(batch.end, plan.total))
        if snapshots is None:
            raise RuntimeError(f"export {batch.export_id}: items {batch.first} .. {end - 1} were not attested")
        sink = BlockSink(work.store, work.part_blob(part), f"s{first:07d}")
        writer = SegmentWriter(sink.write, _parse(record.created_at), streamer=sink)
        size = batch.checkpoint_size
        items: list[PartRecord] = []
        for position in range(first, end):
            chat = plan.chat_at(position)
            if chat is None:
                snapshot = snapshots.recording(position)
                if snapshot is None:
                    raise RuntimeError(f"export {batch.export_id}: recording {position} was not attested")
                with self._deleted_meanwhile(snapshot.record.id):
                    items.append(package_recording(self.log, self.media, writer, record, snapshot, size))
                continue
            chat_snapshot = snapshots.chat(position)
            if self.chats is None or chat_snapshot is None:
                raise RuntimeError(f"export {batch.export_id}: chat {position} was not attested")
            index = position - len(plan.recording_ids)
            items.append(package_chat(self.log, self.chats, writer, record, chat_snapshot, index, size))
        segment = SegmentRecord(
            first=first, end=end, items=items, length=writer.position, blocks=sink.close(), part=part
        )
        work.save_segment(segment)
        self.progress(batch.export_id, "packaging", plan.total, added=end - first)
        return segment

    @contextlib.contextmanager
    def _deleted_meanwhile(self, recording_id: str) -> Iterator[None]:
        """A sealed object missing from storage because the recording was deleted under retention since it was
        attested is `DeletedUnderRetention` (the export fails saying so), not a seal mismatch."""
        try:
            yield
        except SealMismatch:
            current = self.sources.record(recording_id)
            if current is not None and current.status in DELETION_BEGUN:
                raise deleted_under_retention(current) from None
            raise

    def assemble(self, export_id: str, total: int, checkpoint_size: int) -> ExportResult:
        record = self._get(export_id)
        if record.status == "completed" and record.result is not None:
            return record.result
        work = self.work(export_id)
        plan = work.plan()
        if plan is None:
            raise RuntimeError(f"export {export_id} has no plan")
        self.progress(export_id, "assembling", total, total)
        segments = work.segments(total)
        split = self._split_of(work)
        at = _parse(record.created_at)
        if split.multi:
            result = self._assemble_parts(record, work, plan, segments, split, checkpoint_size, at)
        else:
            result = assemble_package(self.log, work, record, plan, segments, checkpoint_size, at).result
        completed: dict[str, JsonValue] = {
            "package_manifest_sha256": result.package_manifest_sha256,
            "package_bytes": result.package_bytes,
            "recordings": result.recordings,
            "files": result.files,
            "checkpoint_size": checkpoint_size,
        }
        if result.parts:  # a multi-part package: the SHA-256 above is its index's, which lists every part's
            completed["parts"] = len(result.parts)
        entry = self.log.append(
            "export.completed",
            export_subject(export_id),
            completed,
            actor=record.requested_by.subject,
            idempotency_key=f"export.completed:{export_id}",
        )
        now = format_datetime(self.clock())
        done = ExportProgress(
            stage="completed", export_id=export_id, total=total, done=total, media_bytes=result.media_bytes
        )
        self.store.update(
            export_id,
            lambda r: r.model_copy(
                update={
                    "status": "completed",
                    "result": result,
                    "completed_seq": entry.index,
                    "finished_at": now,
                    "progress": done,
                }
            ),
        )
        work.clear()
        self._splits.pop(export_id, None)
        return result

    def _assemble_parts(
        self,
        record: ExportRecord,
        work: ExportWork,
        plan: PlanFile,
        segments: list[SegmentRecord],
        split: PartsFile,
        checkpoint_size: int,
        at: datetime,
    ) -> ExportResult:
        """Each part's end (its own README, index, load files, signed manifest, central directory), committed
        part by part, then `package-index.json` and its signature listing them all."""
        count = len(split.firsts)
        packaged: list[PackagePart] = []
        results: list[ExportResult] = []
        for number in range(1, count + 1):
            mine = [segment for segment in segments if segment.part == number]
            if not mine:
                raise RuntimeError(f"export {record.id}: part {number} has no packaged segment")
            assembled = assemble_package(
                self.log, work, record, plan, mine, checkpoint_size, at, PartOf(number=number, of=count)
            )
            results.append(assembled.result)
            packaged.append(
                PackagePart(
                    number=number,
                    name=names.part_name(number),
                    bytes=assembled.result.package_bytes,
                    files=assembled.result.files,
                    manifest_sha256=assembled.result.package_manifest_sha256,
                    recordings=[r.recording_id for r in assembled.manifest.recordings],
                    chats=[c.chat_id for c in assembled.manifest.chats],
                    blob=assembled.result.package_blob,
                )
            )
        _, index, signature = write_index(self.log, work, record, packaged, checkpoint_size)
        return ExportResult(
            package_blob=work.top_blob(names.PACKAGE_INDEX),
            package_bytes=sum(p.bytes for p in packaged) + len(index) + len(signature),
            files=sum(r.files for r in results),
            recordings=sum(r.recordings for r in results),
            chats=sum(r.chats for r in results),
            media_bytes=sum(r.media_bytes for r in results),
            package_manifest_sha256=hashlib.sha256(index).hexdigest(),
            checkpoint_size=checkpoint_size,
            parts=packaged,
            index_bytes=len(index),
            index_signature_bytes=len(signature),
        )

    def run_inline(self, export_id: str, batch: int = BATCH) -> ExportResult:
        """Every step in this process, in the orchestration's order (the benchmark, tests, a CLI on one machine)."""
        plan = self.plan(export_id)
        for first in range(0, plan.total, batch):
            self.attest(ExportBatch(export_id=export_id, first=first, end=min(plan.total, first + batch)))
        size = self.checkpoint(export_id, batch)
        for first in range(0, plan.total, batch):
            end = min(plan.total, first + batch)
            self.package(ExportBatch(export_id=export_id, first=first, end=end, checkpoint_size=size))
        return self.assemble(export_id, plan.total, size)

    def fail(self, export_id: str, error: str) -> None:
        self.log.append(
            "export.failed",
            export_subject(export_id),
            {"error": error[:2000]},
            idempotency_key=f"export.failed:{export_id}",
        )
        now = format_datetime(self.clock())
        self.store.update(
            export_id,
            lambda r: r.model_copy(
                update={
                    "status": "failed",
                    "error": error[:2000],
                    "finished_at": now,
                    "progress": r.progress.model_copy(update={"stage": "failed"}),
                }
            ),
        )
        work = self.work(export_id)
        work.clear()
        self._splits.pop(export_id, None)


def _digest_selection(selection: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """What the ledger keeps of a selection: ids are counted and hashed (a list of 10,000 ids would not fit)."""
    ids = selection.get("recordingIds")
    if isinstance(ids, list):
        joined = "\n".join(str(i) for i in ids)
        return {"recordingIds": len(ids), "sha256": hashlib.sha256(joined.encode()).hexdigest()}
    return dict(selection)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
