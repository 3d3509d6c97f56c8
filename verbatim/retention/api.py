"""The retention API's service layer: what each HTTP trigger calls with the authenticated principal and its
validated body. Roles are checked by the triggers; here the principal becomes the officer on record, and
every read of recording metadata is recorded (ledger `accessed` entry + audit record) like the compliance API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, Protocol

from pydantic import JsonValue

from verbatim.contracts.retention import (
    DeletionsReport,
    ErasureRequest,
    ErasureResult,
    ExpiringReport,
    ExtensionResult,
    HoldList,
    HoldRecordings,
    HoldReleaseBody,
    HoldRequest,
    HoldResult,
    HoldsReport,
    Officer,
    RecordingDeletionRequest,
    RecordingRetentionExtension,
    RetentionClassExtension,
    RetentionClassList,
    RetentionStatus,
    SubjectSearchRequest,
    SubjectSearchResult,
    SweepReport,
)
from verbatim.ledger.access import MAX_RECORDED_IDS, AccessLog, returned
from verbatim.platform.auth import Principal
from verbatim.platform.errors import Forbidden, InvalidInput
from verbatim.platform.settings import Settings
from verbatim.retention.classes import RetentionCatalog
from verbatim.retention.common import hold_subject, recording_subject
from verbatim.retention.deletion import RecordingDeleter
from verbatim.retention.extension import RetentionExtender
from verbatim.retention.holds import HoldService
from verbatim.retention.reports import RetentionReports
from verbatim.retention.subjects import DataSubjectService
from verbatim.retention.sweep import RetentionSweep


def officer(principal: Principal) -> Officer:
    return Officer(subject=principal.subject, name=principal.name)


def _person(principal: Principal, step: str) -> Principal:
    """Four eyes means two people: each step of a release needs a person's delegated sign-in. An application
    token (client credentials) is one secret that could otherwise play both officers."""
    if not principal.delegated:
        raise Forbidden(
            f"to {step} the release of a legal hold, sign in as yourself: an application token "
            "(client credentials) cannot take part in a four-eyes release"
        )
    return principal


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise InvalidInput(f"{name} must be an integer") from error
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}")
    return value


def _instant(params: Mapping[str, str], name: str) -> datetime:
    raw = params.get(name)
    if not raw:
        raise InvalidInput(f"the query parameter {name!r} (an ISO 8601 instant) is required")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"{name} is not an ISO 8601 instant") from error
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (e.g. Z)")
    return value


class RetentionServices(Protocol):
    """What the API calls: retention's services as the composition root builds them."""

    settings: Settings

    @property
    def access(self) -> AccessLog: ...
    @property
    def catalog(self) -> RetentionCatalog: ...
    @property
    def deleter(self) -> RecordingDeleter: ...
    @property
    def extender(self) -> RetentionExtender: ...
    @property
    def holds(self) -> HoldService: ...
    @property
    def reports(self) -> RetentionReports: ...
    @property
    def subjects(self) -> DataSubjectService: ...
    @property
    def sweep(self) -> RetentionSweep: ...


class RetentionApi:
    def __init__(self, services: RetentionServices) -> None:
        self._rt = services

    # --- classes and single recordings ---

    def classes(self, principal: Principal) -> RetentionClassList:
        items = self._rt.catalog.all()
        self._rt.access.record(
            principal, "retention.classes.read", "retention-classes", None, returned(c.name for c in items)
        )
        return RetentionClassList(items=items)

    def extend_class(self, principal: Principal, name: str, body: RetentionClassExtension) -> ExtensionResult:
        return self._rt.extender.extend_class(name, body.days, body.reason, officer(principal))

    def recording_status(self, principal: Principal, recording_id: str) -> RetentionStatus:
        status = self._rt.deleter.status(recording_id)
        self._rt.access.record(principal, "retention.status.read", recording_subject(recording_id), None)
        return status

    def extend_recording(
        self, principal: Principal, recording_id: str, body: RecordingRetentionExtension
    ) -> ExtensionResult:
        return self._rt.extender.extend_recording(recording_id, body.until, body.reason, officer(principal))

    def delete_recording(
        self, principal: Principal, recording_id: str, body: RecordingDeletionRequest
    ) -> RetentionStatus:
        """Delete one recording now — only if its retention has passed and no hold applies (else 409 with why)."""
        self._rt.deleter.delete(recording_id, reason="officer_request", actor=principal.subject, note=body.reason)
        return self._rt.deleter.status(recording_id)

    def sweep(self, principal: Principal, params: Mapping[str, str]) -> SweepReport:
        limit = _int(params, "maxDeletions", self._rt.settings.retention_sweep_max_deletions, 0, 1_000_000)
        dry_run = params.get("dryRun", "").lower() in ("1", "true", "yes")
        return self._rt.sweep.run(max_deletions=limit, dry_run=dry_run)

    # --- legal holds ---

    def create_hold(self, principal: Principal, body: HoldRequest) -> HoldResult:
        return self._rt.holds.create(body, officer(principal))

    def holds(self, principal: Principal, params: Mapping[str, str]) -> HoldList:
        status = params.get("status")
        if status not in (None, "", "active", "released"):
            raise InvalidInput("status must be 'active' or 'released'")
        items = self._rt.holds.find("active" if status == "active" else "released" if status else None)
        self._rt.access.record(
            principal,
            "hold.list",
            "holds",
            None,
            {"filters": {"status": status or None}, **returned(h.id for h in items)},
        )
        return HoldList(items=items)

    def hold(self, principal: Principal, hold_id: str) -> HoldResult:
        self._rt.access.record(principal, "hold.read", hold_subject(hold_id), None)
        return HoldResult(hold=self._rt.holds.get(hold_id))

    def hold_recordings(self, principal: Principal, hold_id: str) -> HoldRecordings:
        items = self._rt.holds.recordings(hold_id)
        self._rt.access.record(
            principal, "hold.recordings.read", hold_subject(hold_id), None, returned(r.recording_id for r in items)
        )
        return HoldRecordings(hold_id=hold_id, items=items)

    def request_release(self, principal: Principal, hold_id: str, body: HoldReleaseBody) -> HoldResult:
        return self._rt.holds.request_release(hold_id, officer(_person(principal, "request")), body.reason)

    def approve_release(self, principal: Principal, hold_id: str, body: HoldReleaseBody) -> HoldResult:
        return self._rt.holds.approve_release(hold_id, officer(_person(principal, "approve")), body.reason)

    # --- data subjects ---

    def search_subject(self, principal: Principal, body: SubjectSearchRequest) -> SubjectSearchResult:
        result = self._rt.subjects.search(body, officer(principal))
        call_records: list[JsonValue] = [c.call_record_id for c in result.call_records]
        self._rt.access.record(
            principal,
            "subject.search",
            f"subject-request:{body.request_id}",
            None,
            {
                **returned(r.recording_id for r in result.recordings),
                "call_records": call_records[:MAX_RECORDED_IDS],
                "call_records_count": len(result.call_records),
            },
        )
        return result

    def erase_subject(self, principal: Principal, body: ErasureRequest) -> ErasureResult:
        return self._rt.subjects.erase(body, officer(principal))

    # --- reports ---

    def expiring(self, principal: Principal, params: Mapping[str, str]) -> ExpiringReport:
        report = self._rt.reports.expiring(_int(params, "days", 30, 1, 3660))
        ids = (r.recording_id for c in report.classes for r in c.recordings)
        self._rt.access.record(
            principal, "report.read", "retention-report:expiring", None, {"days": report.days, **returned(ids)}
        )
        return report

    def held(self, principal: Principal) -> HoldsReport:
        report = self._rt.reports.holds()
        self._rt.access.record(principal, "report.read", "retention-report:holds", None)
        return report

    def deletions(self, principal: Principal, params: Mapping[str, str]) -> DeletionsReport:
        period = params.get("period") or "day"
        if period not in ("day", "month"):
            raise InvalidInput("period must be 'day' or 'month'")
        chosen: Literal["day", "month"] = "day" if period == "day" else "month"
        report = self._rt.reports.deletions(_instant(params, "from"), _instant(params, "to"), chosen)
        self._rt.access.record(principal, "report.read", "retention-report:deletions", None, {"total": report.total})
        return report
