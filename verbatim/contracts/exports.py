"""Export contracts: the request (`POST /api/v1/exports`), the export's record (Cosmos `exports`) and its view, the
orchestration's inputs, outputs and custom status, and the files of the package a recipient verifies offline
(`package-manifest.json`, each recording's `recording.json`). docs/exports.md describes the package.

camelCase on the wire and in the package, like the rest of the API. Times are canonical UTC strings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from verbatim.contracts import contract
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.evidence import Sha256Hex

ExportState = Literal["queued", "running", "completed", "failed", "expired", "deleted"]
ExportStage = Literal[
    "planning",
    "waiting_for_access_copies",
    "attesting",
    "checkpointing",
    "packaging",
    "assembling",
    "completed",
    "failed",
]
MAX_IDS = 10_000
PACKAGE_FORMAT = "verbatim-export/1"
SIGNATURE_HEADER = "verbatim-export-manifest/v1"
INDEX_FORMAT = "verbatim-export-index/1"
INDEX_SIGNATURE_HEADER = "verbatim-export-index/v1"


class SearchSelection(CamelContract):
    """The search filter of `GET /api/v1/recordings` (same names and rules), every page of it."""

    participant: str | None = None
    observed_user: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: str | None = None
    call_type: str | None = None
    modality: str | None = None
    verdict: str | None = None

    def params(self) -> dict[str, str]:
        dumped = self.model_dump(by_alias=True, exclude_none=True)
        return {key: str(value) for key, value in dumped.items()}


class ExportOptions(CamelContract):
    """What goes in for each recording. The manifest, the audit trail and its proofs always do."""

    evidence: bool = Field(default=True, description="the lossless evidence (FLAC) and the capture manifest")
    access_copies: bool = Field(default=True, description="the Opus access copies (the index's player uses them)")
    call_records: bool = Field(default=True, description="the Graph call record and the verdicts of the call")
    chats: bool = Field(
        default=False,
        description="sealed chats: each recording's meeting chat and its people's chats on its days, or for a legal "
        "hold the chats it covers (when chat capture runs)",
    )
    transcripts: bool = Field(default=False, description="transcripts (Verbatim makes none yet)")


@contract("api.export-request", 1)
class ExportRequest(CamelContract):
    """Body of `POST /api/v1/exports`: exactly one of `recordingIds`, `search`, `holdId`. The reason is the
    `X-Access-Reason` header, as for every read."""

    recording_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    search: SearchSelection | None = None
    hold_id: str | None = Field(default=None, min_length=1, max_length=128)
    options: ExportOptions = Field(default_factory=ExportOptions)
    title: str | None = Field(default=None, max_length=200, description="a name for the recipient, e.g. the matter")

    @model_validator(mode="after")
    def _one_selection(self) -> ExportRequest:
        chosen = [name for name in ("recording_ids", "search", "hold_id") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of recordingIds, search, holdId")
        if self.recording_ids is not None:
            if any(not 0 < len(i) <= 128 or any(ord(c) < 33 for c in i) for i in self.recording_ids):
                raise ValueError("a recording id is 1-128 printable characters")
            if len(set(self.recording_ids)) != len(self.recording_ids):
                raise ValueError("recordingIds lists a recording twice")
        return self


class Requester(CamelContract):
    subject: str
    name: str | None = None


class ExportProgress(CamelContract):
    """The orchestration's custom status, and the record's progress."""

    stage: ExportStage
    export_id: str
    total: int = 0
    done: int = 0
    media_bytes: int = 0


class IndexPart(CamelContract):
    """One part of a multi-part package, as `package-index.json` lists it: its file, size, the SHA-256 of its
    signed `package-manifest.json` (which lists every file of the part with its SHA-256) and the items it holds."""

    number: int = Field(ge=1)
    name: str
    bytes: int = Field(ge=0)
    files: int = Field(ge=0)
    manifest_sha256: Sha256Hex
    recordings: list[str] = Field(default_factory=list)
    chats: list[str] = Field(default_factory=list)


class PackagePart(IndexPart):
    """A part of a multi-part package in the export's result: where it is stored."""

    blob: str


class ExportResult(CamelContract):
    """The package. A multi-part package (`parts` not empty): `packageBlob` is its `package-index.json`,
    `packageManifestSha256` that index's SHA-256 and `packageBytes` the size of every object of it."""

    package_blob: str
    package_bytes: int
    files: int
    recordings: int
    chats: int = 0
    media_bytes: int
    package_manifest_sha256: Sha256Hex
    checkpoint_size: int
    parts: list[PackagePart] = Field(default_factory=list)
    index_bytes: int = 0
    index_signature_bytes: int = 0


@contract("export-record", 1)
class ExportRecord(CamelContract):
    """One export's document in Cosmos `exports` (partition key /id)."""

    schema_version: Literal[1] = 1
    id: str
    status: ExportState
    title: str | None = None
    requested_by: Requester
    reason: str
    selection: dict[str, JsonValue]
    options: ExportOptions
    created_at: str
    expires_at: str
    progress: ExportProgress
    result: ExportResult | None = None
    error: str | None = None
    created_seq: int | None = None
    completed_seq: int | None = None
    finished_at: str | None = None
    deleted_at: str | None = None
    deleted_by: Requester | None = None


@contract("api.export-view", 1)
class ExportView(CamelContract):
    """`GET /api/v1/exports/{id}`: the record, the orchestration's live progress, and where to download."""

    export: ExportRecord
    held: bool = Field(default=False, description="kept past its expiry: the legal hold it was made from is active")
    download: str | None = None


@contract("api.export-link", 1)
class ExportLink(CamelContract):
    """`POST /api/v1/exports/{id}/link`: a short-lived, read-only user-delegation SAS URL of the package, for
    downloading straight from storage (with Range requests) instead of through the API."""

    url: str
    expires_at: str
    package_bytes: int
    package_manifest_sha256: Sha256Hex


class ExportObject(CamelContract):
    """One object of an export's package to download: the ZIP of a single-part package, or the index, its
    signature and each part of a multi-part one."""

    name: str
    kind: Literal["package", "index", "index-signature", "part"]
    bytes: int
    number: int | None = None
    manifest_sha256: Sha256Hex | None = None
    recordings: int = 0
    chats: int = 0
    download: str


@contract("api.export-objects", 1)
class ExportObjects(CamelContract):
    """`GET /api/v1/exports/{id}/parts`: what to download (each with Range, or a link), in order."""

    export_id: str
    multi_part: bool
    package_manifest_sha256: Sha256Hex
    items: list[ExportObject]


@contract("api.export-list", 1)
class ExportList(CamelContract):
    items: list[ExportRecord]


# --- the orchestration -------------------------------------------------------------------------------------------


@contract("exports.job", 1)
class ExportJob(CamelContract):
    """The orchestration's input; `continue_as_new` carries where it got to, so its history stays small."""

    export_id: str
    phase: Literal["plan", "access", "attest", "package", "assemble"] = "plan"
    total: int = 0
    next: int = 0
    checkpoint_size: int = 0
    media_bytes: int = 0
    waits: int = 0  # rounds spent waiting for access copies still being made (phase "access")


@contract("exports.plan", 1)
class ExportPlan(CamelContract):
    export_id: str
    total: int


@contract("exports.access-copy-wait", 1)
class AccessCopyWait(CamelContract):
    """Before attesting: how many of the export's recordings still have their access copies being made (sealed
    after the evidence), the first of them, and how long the orchestration waits for them: it checks again every
    `poll_seconds`, at most `max_waits` times, then fails saying which copies were not ready."""

    export_id: str
    pending: int = Field(ge=0)
    recording_ids: list[str] = Field(default_factory=list)
    poll_seconds: int = Field(default=30, ge=1)
    max_waits: int = Field(default=0, ge=0)


@contract("exports.batch", 1)
class ExportBatch(CamelContract):
    """Recordings [first, end) of the plan (positions from 0)."""

    export_id: str
    first: int = Field(ge=0)
    end: int = Field(ge=0)
    checkpoint_size: int = 0


@contract("exports.part-summary", 1)
class PartSummary(CamelContract):
    """One packaged item: a recording, or a chat (then `recordingId` holds the chat's id)."""

    position: int
    recording_id: str
    length: int
    media_bytes: int
    kind: Literal["recording", "chat"] = "recording"


@contract("exports.failure", 1)
class ExportFailure(CamelContract):
    export_id: str
    error: str


# --- files of the package ---------------------------------------------------------------------------------------


class PackageFile(CamelContract):
    path: str
    bytes: int = Field(ge=0)
    sha256: Sha256Hex


class TrailAttestation(CamelContract):
    """What the recording's `exported` ledger entry says its audit trail was when it was exported: every entry
    about the recording before it, by index (omitted past `MAX_LISTED` entries), their count and a digest."""

    count: int
    first: int | None = None
    last: int | None = None
    indexes: list[int] | None = None
    sha256: Sha256Hex


class PackagedRecording(CamelContract):
    """A recording in the package: its folder and what the load files and the index say about it."""

    recording_id: str
    folder: str
    control_number: str
    call_id: str | None = None
    call_chain_id: str | None = None
    observed_user: str | None = None
    observed_user_name: str | None = None
    participants: list[str] = Field(default_factory=list)
    direction: str = "unknown"
    call_type: str = "unknown"
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float = 0.0
    status: str = "complete"
    verdict: str | None = None
    coverage: float | None = None
    legal_holds: list[str] = Field(default_factory=list)
    retention_until: str | None = None
    native: str | None = None
    native_sha256: Sha256Hex | None = None
    native_bytes: int = 0
    access_copy: str | None = None
    exported_entry: int
    trail_entries: int


class PackagedChat(CamelContract):
    """A chat in the package (`options.chats`): its folder, the sealed chat-day bundles it carries and what the
    load files and the index say about it."""

    chat_id: str
    folder: str
    control_number: str
    chat_type: str | None = None
    topic: str | None = None
    members: list[str] = Field(default_factory=list)
    member_names: list[str] = Field(default_factory=list)
    policy_users: list[str] = Field(default_factory=list)
    first_message_at: str | None = None
    last_message_at: str | None = None
    messages: int = 0
    versions: int = 0
    bundles: list[str] = Field(default_factory=list, description="the sealed bundle ids, as the `exported` entry lists")
    legal_holds: list[str] = Field(default_factory=list)
    transcript: str = Field(description="the human-readable rendering (HTML)")
    transcript_text: str = Field(description="the same as plain text (the extracted text review platforms index)")
    transcript_sha256: Sha256Hex
    transcript_bytes: int = 0
    exported_entry: int
    trail_entries: int
    why: list[str] = Field(default_factory=list, description="why the chat is in the export (hold, person, meeting)")


class PartOf(CamelContract):
    """In a part of a multi-part package: which part it is, of how many, and the index listing them all."""

    number: int = Field(ge=1)
    of: int = Field(ge=2)
    index: str = "package-index.json"


class ExportHeader(CamelContract):
    """What a package's manifest and a multi-part package's index both say first: the file's format, and the
    export they hold (who asked, why, what was selected) with the ledger checkpoint it was packaged at."""

    format: str  # each file's own literal
    export_id: str
    title: str | None = None
    created_at: str
    requested_by: Requester
    reason: str
    selection: dict[str, JsonValue]
    options: ExportOptions
    log_origin: str
    checkpoint_size: int
    created_entry: int | None = None


@contract("export-package-manifest", 1)
class PackageManifest(ExportHeader):
    """`package-manifest.json`: every other file of the package with its size and SHA-256 (canonical JSON; its
    signature, `package-manifest.sig`, is a C2SP signed note over `verbatim-export-manifest/v1`, the export id
    and this file's SHA-256)."""

    format: Literal["verbatim-export/1"] = "verbatim-export/1"
    recordings: list[PackagedRecording]
    chats: list[PackagedChat] = Field(default_factory=list)
    files: list[PackageFile]
    part: PartOf | None = Field(default=None, description="a part of a multi-part package (absent otherwise)")


@contract("export-package-index", 1)
class PackageIndex(ExportHeader):
    """`package-index.json` of a multi-part package: the export and every part with its size and the SHA-256 of
    its signed manifest (canonical JSON; `package-index.sig` is a C2SP signed note over
    `verbatim-export-index/v1`, the export id and this file's SHA-256). Every item is in exactly one part."""

    format: Literal["verbatim-export-index/1"] = "verbatim-export-index/1"
    recordings: int
    chats: int = 0
    parts: list[IndexPart]
