"""The daily completeness report: every (call, policy user) of the calls that started on one UTC day, by
verdict, every exception listed with its Teams call id and likely reason; written as JSON to the `reports`
container, signed with the ledger's key and appended to the ledger (`report.completeness`).

Anyone holding the report can check it offline: re-hash the canonical body (the report without
`signature`), compare with `signature.contentSha256`, verify the signature with the public key, and trust
the key by its fingerprint (the same keys that sign ledger checkpoints). The ledger entry pins the hash,
so a report replaced in storage is detected too.

Before reporting, verdicts of the day that are not `recorded` are re-evaluated: a lost
`recording.indexed` message or a call record that arrived late cannot leave a stale exception behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from verbatim import __version__
from verbatim.contracts.api import ReportList, ReportListItem, ReportRun
from verbatim.contracts.chat import ChatCompleteness
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.reconciliation import (
    CompletenessReport,
    ReportCounts,
    ReportException,
    ReportSignature,
    Verdict,
)
from verbatim.ledger.canonical import canonical_json, canonical_sha256
from verbatim.ledger.signing import Signer, fingerprint, verify_signature
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.errors import InvalidInput, NotFound
from verbatim.platform.times import format_datetime, utcnow
from verbatim.reconciliation.service import Reconciler
from verbatim.reconciliation.store import VerdictStore

log = logging.getLogger(__name__)


class ChatDayReconciler(Protocol):
    def reconcile_day(self, day: str) -> list[ChatCompleteness]: ...


REPORT_DOMAIN = b"verbatim-completeness-report-v1\n"
PREFIX = "completeness/"


def report_subject(day: str) -> str:
    return f"report:completeness:{day}"


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(f"`{value}` is not a day (YYYY-MM-DD)") from error


def build_report(
    day: str, all_verdicts: Iterable[Verdict], generated_at: datetime, generated_by: str
) -> CompletenessReport:
    verdicts = list(all_verdicts)
    counts = Counter(v.verdict for v in verdicts)
    exceptions = [v for v in verdicts if v.verdict in ("partial", "missing")]
    explained = sum(1 for v in exceptions if v.explained)
    return CompletenessReport(
        day=day,
        generated_at=format_datetime(generated_at),
        generated_by=generated_by,
        calls=len({v.call_id for v in verdicts}),
        users=len({v.user_id for v in verdicts}),
        counts=ReportCounts(
            expected=len(verdicts),
            recorded=counts["recorded"],
            partial=counts["partial"],
            missing=counts["missing"],
            pending=counts["pending"],
            explained=explained,
            unexplained=len(exceptions) - explained,
        ),
        by_reason=dict(sorted(Counter(v.reason for v in exceptions).items())),
        exceptions=[
            ReportException(
                call_id=v.call_id,
                user_id=v.user_id,
                user_principal_name=v.user_principal_name,
                verdict=v.verdict,
                reason=v.reason,
                reason_detail=v.reason_detail,
                explained=v.explained,
                coverage_permille=round(v.coverage * 1000),
                missing_ms=round(sum(gap.seconds for gap in v.gaps) * 1000),
                call_start=v.call_start,
                call_record_version=v.call_record_version,
                recording_ids=v.recording_ids,
            )
            for v in exceptions
        ],
    )


def content_sha256(report: CompletenessReport) -> str:
    """SHA-256 of the canonical report body (everything but the signature; a report without a chat section hashes
    as reports did before chat capture)."""
    exclude = {"signature"} if report.chat is not None else {"signature", "chat"}
    return canonical_sha256(report.model_dump(mode="json", by_alias=True, exclude=exclude))


def sign_report(report: CompletenessReport, signer: Signer) -> CompletenessReport:
    digest = content_sha256(report)
    signature = signer.sign(REPORT_DOMAIN + digest.encode())
    return report.model_copy(
        update={
            "signature": ReportSignature(
                algorithm=signer.algorithm,
                key_id=signer.key_id,
                public_key=signer.public_key_pem(),
                content_sha256=digest,
                signature=base64.b64encode(signature).decode(),
            )
        }
    )


def verify_report(report: CompletenessReport, trusted_fingerprints: Iterable[str] | None = None) -> bool:
    """The signature covers this exact body, and (when given) was made by a trusted key."""
    signature = report.signature
    if signature is None:
        return False
    if content_sha256(report) != signature.content_sha256:
        return False
    if trusted_fingerprints is not None and fingerprint(signature.public_key) not in set(trusted_fingerprints):
        return False
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except ValueError:
        return False
    message = REPORT_DOMAIN + signature.content_sha256.encode()
    return verify_signature(signature.public_key, signature.algorithm, message, raw)


def report_bytes(report: CompletenessReport) -> bytes:
    """The stored form: readable JSON (the hash is over the canonical form, so layout does not matter)."""
    return json.dumps(report.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True).encode()


@dataclass
class CompletenessReporter:
    verdicts: VerdictStore
    reports: ContainerClient
    ledger: LedgerWriter
    signer: Signer | None
    reconciler: Reconciler | None = None
    clock: Callable[[], datetime] = utcnow
    chat: ChatDayReconciler | None = None

    def run(self, day: date, actor: str | None = None) -> ReportRun:
        """Re-evaluate the day's open verdicts, then write, sign and ledger the day's report."""
        key = day.isoformat()
        reevaluated = 0
        if self.reconciler is not None:
            open_calls = sorted({v.call_id for v in self.verdicts.for_day(key) if v.verdict != "recorded"})
            for call_id in open_calls:
                self.reconciler.reconcile_call(call_id)
            reevaluated = len(open_calls)
        generated_at = self.clock()
        report = build_report(key, self.verdicts.for_day(key), generated_at, f"verbatim {__version__}")
        if self.chat is not None:
            # Compares notifications with the export API's view of the day, back-filling what is missing first.
            report = report.model_copy(update={"chat": self.chat.reconcile_day(key)})
        if self.signer is not None:
            report = sign_report(report, self.signer)
        else:
            log.warning("completeness report written unsigned: no ledger signing key is configured")
        digest = content_sha256(report)
        blob = f"{PREFIX}{key}/{generated_at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.json"
        with contextlib.suppress(ResourceExistsError):  # the same instant: the same report
            self.reports.upload_blob(blob, report_bytes(report), overwrite=False, content_type="application/json")
        counts = report.counts.model_dump(by_alias=True)
        if report.chat is not None:
            counts["chatUsers"] = len(report.chat)
            counts["chatBackfilled"] = sum(c.backfilled for c in report.chat)
            counts["chatMissing"] = sum(c.missing_after for c in report.chat)
        entry = self.ledger.append(
            EntryKind.REPORT_COMPLETENESS,
            report_subject(key),
            {"blob": blob, "sha256": digest, "signed": report.signature is not None, **counts},
            actor=actor,
            idempotency_key=f"report.completeness:{key}:{digest}",
        )
        log.info("completeness report written", extra={"day": key, "blob": blob, "ledger_seq": entry.seq, **counts})
        return ReportRun(day=key, blob=blob, ledger_seq=entry.seq, counts=counts, reevaluated_calls=reevaluated)

    def list_reports(self, limit: int = 90) -> ReportList:
        latest: dict[str, str] = {}
        for blob in self.reports.list_blobs(name_starts_with=PREFIX):
            day = blob.name[len(PREFIX) :].split("/", 1)[0]
            if blob.name > latest.get(day, ""):
                latest[day] = blob.name
        days = sorted(latest, reverse=True)[:limit]
        return ReportList(items=[ReportListItem(day=d, blob=latest[d], generated_at=_stamp(latest[d])) for d in days])

    def latest(self, day: date) -> tuple[CompletenessReport, str]:
        key = day.isoformat()
        names = sorted(b.name for b in self.reports.list_blobs(name_starts_with=f"{PREFIX}{key}/"))
        if not names:
            raise NotFound(f"no completeness report for {key}")
        try:
            data = self.reports.download_blob(names[-1]).readall()
        except ResourceNotFoundError as error:
            raise NotFound(f"no completeness report for {key}") from error
        return CompletenessReport.model_validate_json(data), names[-1]


def _stamp(name: str) -> str | None:
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    try:
        return format_datetime(datetime.strptime(stem, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC))
    except ValueError:
        return None


def report_day(now: datetime, lag_days: int = 1) -> date:
    """The day the daily timer reports: yesterday (UTC), when nearly all its call records have arrived."""
    return (now.astimezone(UTC) - timedelta(days=lag_days)).date()


def canonical_report_bytes(report: CompletenessReport) -> bytes:
    return canonical_json(report.model_dump(mode="json", by_alias=True, exclude={"signature"}))
