"""Retention contracts: retention classes, legal holds, the deletion certificate and tombstone, data-subject
requests and the retention reports.

HTTP bodies and the documents in Cosmos `holds` / `control` are camelCase (like the compliance API); what
goes into the recording record and the ledger is snake_case (like the evidence contracts). Instants in the
ledger certificate are fixed-width UTC text, as everywhere in the ledger.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from verbatim.contracts import Contract, contract
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.evidence import Instant, Sha256Hex
from verbatim.contracts.recorder import CallDirection, CallType

# The same names the policy desired state may give (`retentionClass` of a recording policy).
RETENTION_CLASS_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
RetentionClassName = Annotated[str, Field(pattern=RETENTION_CLASS_PATTERN)]
# At most a century: a typo of an extra digit should fail loudly, not keep evidence for 1,000 years.
RetentionDays = Annotated[int, Field(ge=1, le=36_600)]
MAX_TEXT = 2000


# --- retention classes ----------------------------------------------------------------------------------------


class RetentionClassConfig(Contract):
    """A retention class as configured (`RETENTION_CLASSES`): how long, and why."""

    name: RetentionClassName
    days: RetentionDays  # counted from the start of the call
    legal_basis: str = Field(min_length=1, max_length=MAX_TEXT)


@contract("retention-class", 1)
class RetentionClass(CamelContract):
    """A retention class as in force (Cosmos `control`, id `retention-class:<name>`). Only ever lengthened."""

    schema_version: Literal[1] = 1
    name: RetentionClassName
    days: RetentionDays
    legal_basis: str
    defined_at: AwareDatetime
    extended_at: AwareDatetime | None = None
    # Recordings of this class have had their blob immutability extended for this many days: less than `days`
    # while an extension is still being applied (the sweep finishes it; the app's guard uses `days` at once).
    applied_days: int


@contract("retention-class-list", 1)
class RetentionClassList(CamelContract):
    items: list[RetentionClass]


class RetentionClassExtension(CamelContract):
    """`POST /api/v1/retention/classes/{name}/extend`."""

    days: RetentionDays
    reason: str = Field(min_length=1, max_length=MAX_TEXT)


class RecordingRetentionExtension(CamelContract):
    """`POST /api/v1/retention/recordings/{id}/extend`: keep one recording until a later date."""

    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=MAX_TEXT)


class RecordingDeletionRequest(CamelContract):
    """`POST /api/v1/retention/recordings/{id}/delete`: delete one recording whose retention has passed."""

    reason: str = Field(min_length=1, max_length=MAX_TEXT)


@contract("retention-status", 1)
class RetentionStatus(CamelContract):
    """Where one recording stands: its class, the date it may be deleted, the holds that keep it."""

    recording_id: str
    status: str
    retention_class: str | None = None
    legal_basis: str | None = None
    retention_until: AwareDatetime | None = None
    legal_holds: list[str] = Field(default_factory=list)
    deletable: bool
    reason: str  # why it may or may not be deleted now
    deletion: RecordingDeletion | None = None


@contract("retention-extension-result", 1)
class ExtensionResult(CamelContract):
    subject: str  # "recording:<id>" or "retention-class:<name>"
    previous_until: AwareDatetime | None = None
    until: AwareDatetime | None = None
    previous_days: int | None = None
    days: int | None = None
    recordings_extended: int = 0
    blobs_protected: int = 0
    worm: Literal["azure", "emulator-not-enforced", "unchanged"]
    ledger_seq: int | None = None


# --- legal holds ------------------------------------------------------------------------------------------------


class HoldQuery(CamelContract):
    """Narrows a hold beyond its custodians and time range; every given field must match."""

    # Anyone among these (object id, UPN or phone number) took part in the call.
    participants: list[str] = Field(default_factory=list, max_length=100)
    call_types: list[CallType] = Field(default_factory=list)
    directions: list[CallDirection] = Field(default_factory=list)
    # Case-insensitive substring of a participant's display name, UPN or phone number.
    text: str | None = Field(default=None, min_length=1, max_length=256)


# A recording id as the recorder makes them (a UUID) or as tests and imports name them: no blanks, no controls.
RECORDING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
RecordingId = Annotated[str, Field(pattern=RECORDING_ID_PATTERN)]
MAX_HELD_IDS = 1000


@contract("legal-hold-request", 2)
class HoldRequest(CamelContract):
    """`POST /api/v1/holds`: preserve every recording of the custodians (observed user or participant) in the
    time range, narrowed by the query, and every recording listed in `recordingIds` (held as listed: the time
    range and the query narrow the custodians' recordings only). Version 2 added `recordingIds`; a version-1
    body is a valid version-2 body."""

    matter_id: str = Field(min_length=1, max_length=128)
    description: str = Field(min_length=1, max_length=MAX_TEXT)
    custodians: list[str] = Field(default_factory=list, max_length=1000)
    recording_ids: list[RecordingId] = Field(default_factory=list, max_length=MAX_HELD_IDS)
    from_: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = None
    query: HoldQuery | None = None

    @model_validator(mode="after")
    def _scoped(self) -> HoldRequest:
        if not self.custodians and not (self.query and self.query.participants) and not self.recording_ids:
            raise ValueError(
                "a hold needs custodians (or query.participants) or recordingIds: a hold on everything is not allowed"
            )
        if self.from_ and self.until and self.until < self.from_:
            raise ValueError("'until' is before 'from'")
        if any(not c.strip() for c in self.custodians):
            raise ValueError("custodians must not be blank")
        if len(set(self.recording_ids)) != len(self.recording_ids):
            raise ValueError("recordingIds lists a recording more than once")
        return self


class Officer(CamelContract):
    subject: str
    name: str | None = None


class ReleaseRequest(CamelContract):
    requested_by: Officer
    requested_at: AwareDatetime
    reason: str
    ledger_seq: int | None = None


class HoldReleaseBody(CamelContract):
    """`POST /api/v1/holds/{id}/release` (request) and `.../release/approve` (the second officer)."""

    reason: str = Field(min_length=1, max_length=MAX_TEXT)


HoldStatus = Literal["active", "released"]


@contract("legal-hold", 2)
class LegalHold(CamelContract):
    """A legal hold (Cosmos `holds`, partition /id). Active until a release requested by one officer is approved
    by another; a pending release request does not weaken it. Version 2 added `recordingIds` (recordings held by
    id); a stored version-1 hold reads as version 2 holding none by id."""

    schema_version: Literal[2] = 2
    id: str
    doc_type: Literal["legalHold"] = "legalHold"
    matter_id: str
    description: str
    custodians: list[str] = Field(default_factory=list)
    recording_ids: list[str] = Field(default_factory=list)
    from_: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = None
    query: HoldQuery | None = None
    status: HoldStatus = "active"
    created_by: Officer
    created_at: AwareDatetime
    placed_ledger_seq: int | None = None
    release_request: ReleaseRequest | None = None
    released_by: Officer | None = None
    released_at: AwareDatetime | None = None
    released_ledger_seq: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_version_1(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("schemaVersion", data.get("schema_version")) == 1:
            return {k: v for k, v in data.items() if k not in ("schemaVersion", "schema_version")}
        return data

    @property
    def selects_people(self) -> bool:
        """Whether the hold selects recordings by people (custodians or query participants), not by id alone."""
        return bool(self.custodians or (self.query and self.query.participants))


class HoldApplication(CamelContract):
    """What placing (or re-applying) a hold did to the recordings it matches."""

    held: list[str] = Field(default_factory=list)  # recordings that carry the hold now
    newly_held: list[str] = Field(default_factory=list)
    # Matching recordings the hold came too late for: their deletion had already begun or finished.
    not_held: dict[str, str] = Field(default_factory=dict)
    worm: Literal["azure", "emulator-not-enforced", "unchanged"] = "unchanged"


class HoldRelease(CamelContract):
    lifted: list[str] = Field(default_factory=list)  # blob legal hold cleared: no other hold applies
    still_held: dict[str, list[str]] = Field(default_factory=dict)  # recording -> the other holds that keep it


@contract("legal-hold-result", 2)
class HoldResult(CamelContract):
    hold: LegalHold
    application: HoldApplication | None = None
    release: HoldRelease | None = None


@contract("legal-hold-list", 2)
class HoldList(CamelContract):
    items: list[LegalHold]


class HeldRecording(CamelContract):
    recording_id: str
    call_id: str
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    status: str
    retention_class: str | None = None
    retention_until: AwareDatetime | None = None
    legal_holds: list[str] = Field(default_factory=list)


@contract("legal-hold-recordings", 1)
class HoldRecordings(CamelContract):
    hold_id: str
    items: list[HeldRecording]


# --- deletion: the tombstone in the recording record and the certificate in the ledger ----------------------------

DeletionReason = Literal["retention_expired", "erasure_request", "officer_request"]


DeletedRole = Literal["evidence", "access_copy", "manifest", "capture_manifest", "other"]
# The app's containers that hold a recording's data: `recordings` (RECORDINGS_CONTAINER: the sealed evidence,
# access copies, manifests), `captures` (CAPTURES_CONTAINER: what the recorder staged, per capture generation) and
# `scratch` (the lifecycle's work area, lifecycle-scratch: finalised track lists, salvage manifests, access-copy
# chunks). Export packages are not among them: they follow their own expiry (docs/exports.md).
RecordingContainer = Literal["recordings", "captures", "scratch"]


class DeletedBlob(Contract):
    blob: str
    version_id: str | None = None
    role: DeletedRole
    bytes: int | None = None
    sha256: Sha256Hex | None = None  # as sealed; None for an object the seal did not hash
    found: bool = True  # False: sealed, but already absent from storage when the deletion began
    # Which container the object was in. Certificates before version 2 (and plans claimed before it) have no
    # `container`: everything they deleted was in `recordings`, which is what the default says.
    container: RecordingContainer = "recordings"


class RecordingDeletion(Contract):
    """Why and when a recording was (or is being) deleted; kept in its tombstone."""

    reason: DeletionReason
    rule: str  # in words: which retention rule allowed it
    retention_class: str | None = None
    retention_until: AwareDatetime | None = None
    request_id: str | None = None
    claimed_at: AwareDatetime  # the deletion began (status `deleting`): from here no hold can stop it
    claimed_by: str  # sweep run id or the officer's subject
    deleted_at: AwareDatetime | None = None
    certificate_seq: int | None = None
    certificate_hash: Sha256Hex | None = None
    blobs_deleted: int = 0
    # What the deletion covers, fixed before anything is deleted, so a resumed deletion certifies the same set.
    planned: list[DeletedBlob] = Field(default_factory=list)


@contract("deletion-certificate", 2)
class DeletionCertificate(Contract):
    """The `details` of a `deleted` ledger entry: what was deleted, under which class and rule, when, and the
    hashes of what was deleted — so the deletion itself is evidence. No personal data.

    Version 2 names the container of each deleted object (`deleted[].container`): a deletion now also removes the
    recording's objects in `captures` and `scratch`. A version-1 certificate reads as version 2 with every object in
    `recordings` (all it deleted then); its `schema_version` stays 1, and the ledger entry is never rewritten."""

    schema_version: Literal[1, 2] = 2
    recording_id: str
    call_id: str
    call_chain_id: str | None = None
    reason: DeletionReason
    rule: str
    retention_class: str | None = None
    retention_days: int | None = None
    legal_basis: str | None = None
    retention_until: Instant | None = None
    request_id: str | None = None
    sealed_seq: int | None = None  # the recording's `sealed` ledger entry
    manifest_sha256: Sha256Hex | None = None
    evidence_sha256: Sha256Hex | None = None
    verdict: Literal["complete", "interrupted"] | None = None
    started_at: Instant | None = None
    ended_at: Instant | None = None
    sealed_at: Instant | None = None
    deleted_at: Instant
    deleted: list[DeletedBlob]
    # Where Azure's WORM also had its say: "azure" (the store accepted the deletes after the retention date and
    # with no legal hold, as it only would then), or "emulator-not-enforced" (Azurite: only the app's guard).
    worm: Literal["azure", "emulator-not-enforced"]


# --- the sweep -------------------------------------------------------------------------------------------------


@contract("retention-sweep-report", 1)
class SweepReport(CamelContract):
    run_id: str
    outcome: Literal["completed", "partial", "busy"]  # partial: stopped at its bound; the next run continues
    started_at: AwareDatetime
    finished_at: AwareDatetime
    resumed_from: str | None = None  # the cursor a crashed run left behind
    evaluated: int = 0
    deleted: list[str] = Field(default_factory=list)
    held: int = 0
    retained: int = 0  # not yet due (e.g. its class was extended)
    failed: dict[str, str] = Field(default_factory=dict)
    holds_reapplied: int = 0
    class_extensions_applied: int = 0


# --- data-subject requests --------------------------------------------------------------------------------------


class DataSubject(CamelContract):
    """Who: any of an Entra object id, a UPN, a phone number (E.164 or as dialled)."""

    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    upn: str | None = Field(default=None, min_length=3, max_length=256)
    phone_number: str | None = Field(default=None, min_length=3, max_length=64)

    @model_validator(mode="after")
    def _some(self) -> DataSubject:
        if not (self.user_id or self.upn or self.phone_number):
            raise ValueError("give at least one of userId, upn, phoneNumber")
        return self


@contract("data-subject-search-request", 1)
class SubjectSearchRequest(CamelContract):
    subject: DataSubject
    # The firm's reference of the request (kept in the ledger instead of the person's identifiers).
    request_id: str = Field(min_length=1, max_length=128)


class SubjectRecording(CamelContract):
    recording_id: str
    call_id: str
    call_chain_id: str | None = None
    status: str
    role: Literal["observed_user", "participant"]
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    direction: str | None = None
    call_type: str | None = None
    duration_seconds: float | None = None
    retention_class: str | None = None
    retention_until: AwareDatetime | None = None
    legal_holds: list[str] = Field(default_factory=list)


class SubjectCallRecord(CamelContract):
    call_record_id: str
    version: int
    role: Literal["organizer", "participant"]
    type: str | None = None
    modalities: list[str] = Field(default_factory=list)
    start_date_time: str | None = None
    end_date_time: str | None = None
    erased: bool = False


@contract("data-subject-search-result", 1)
class SubjectChat(CamelContract):
    """A sealed chat-day bundle (or, not yet sealed, a chat) the person was a member of (docs/chat.md)."""

    chat_id: str
    bundle_id: str | None = None
    day: str | None = None
    chat_type: str | None = None
    versions: int = 0
    retention_class: str | None = None
    retention_until: str | None = None
    legal_holds: list[str] = Field(default_factory=list)
    sealed: bool = True


class SubjectSearchResult(CamelContract):
    request_id: str
    searched_at: AwareDatetime
    # The identifiers searched: those given plus those found to belong to the same person (UPN <-> object id).
    identifiers: list[str]
    recordings: list[SubjectRecording]
    call_records: list[SubjectCallRecord]
    chats: list[SubjectChat] = Field(default_factory=list)


@contract("erasure-request", 1)
class ErasureRequest(CamelContract):
    subject: DataSubject
    request_id: str = Field(min_length=1, max_length=128)


ErasureDecision = Literal["erased", "refused", "already_erased"]


class ErasureAnswer(CamelContract):
    item_type: Literal["recording", "call_record", "chat_bundle", "chat_message"]
    item_id: str
    decision: ErasureDecision
    # The legal basis of a refusal (retention obligation or legal hold), or what erasure did.
    basis: str
    retained_until: AwareDatetime | None = None
    legal_holds: list[str] = Field(default_factory=list)
    ledger_seq: int


@contract("erasure-result", 1)
class ErasureResult(CamelContract):
    request_id: str
    answered_at: AwareDatetime
    answers: list[ErasureAnswer]


# --- reports ----------------------------------------------------------------------------------------------------


class ExpiringRecording(CamelContract):
    recording_id: str
    retention_until: AwareDatetime
    held: bool


class ExpiringClass(CamelContract):
    retention_class: str
    legal_basis: str | None = None
    count: int
    held: int  # of those, kept beyond their date by a legal hold
    recordings: list[ExpiringRecording]


@contract("retention-report-expiring", 1)
class ExpiringReport(CamelContract):
    generated_at: AwareDatetime
    days: int
    until: AwareDatetime
    classes: list[ExpiringClass]


class MatterHold(CamelContract):
    hold_id: str
    status: HoldStatus
    created_at: AwareDatetime
    released_at: AwareDatetime | None = None
    custodians: int
    recordings: int


class MatterHolds(CamelContract):
    matter_id: str
    holds: list[MatterHold]
    recordings_held: int  # distinct recordings carrying an active hold of the matter


@contract("retention-report-holds", 1)
class HoldsReport(CamelContract):
    generated_at: AwareDatetime
    matters: list[MatterHolds]


class DeletionBucket(CamelContract):
    period_start: str  # YYYY-MM-DD (day) or YYYY-MM (month)
    count: int
    by_class: dict[str, int] = Field(default_factory=dict)
    by_reason: dict[str, int] = Field(default_factory=dict)


@contract("retention-report-deletions", 1)
class DeletionsReport(CamelContract):
    generated_at: AwareDatetime
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime
    period: Literal["day", "month"]
    total: int
    buckets: list[DeletionBucket]


RetentionStatus.model_rebuild()
