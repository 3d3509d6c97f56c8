"""The retention sweep: find recordings past retention that no hold covers, and delete them with a certificate.

One run at a time (a lease); recordings evaluated page by page from the index in retention-date order, each
decided in memory (`deletion.evaluate`); the due ones deleted in bounded batches through `RecordingDeleter`,
which re-checks holds and retention under an etag claim right before it deletes anything. Between batches the
lease is renewed with a cursor (the last retention date fully processed): a run that crashes is continued from
there by the next, a deletion caught half-way is finished, and re-running over done work changes nothing.
Before sweeping, a run repairs what a crash may have left: holds re-applied and lifted, class extensions applied.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from verbatim.contracts.retention import RetentionClass, SweepReport
from verbatim.platform.errors import Conflict, RetentionViolation
from verbatim.platform.logging import correlation
from verbatim.retention.common import Clock, utc_now
from verbatim.retention.deletion import RecordingDeleter, evaluate
from verbatim.retention.extension import RetentionExtender
from verbatim.retention.holds import HoldService
from verbatim.retention.lease import SWEEP_LEASE, Lease, LeaseLost, Leases
from verbatim.retention.recordings import Candidate, RetentionRecordings
from verbatim.retention.storage import DeletionRefusedByStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepLimits:
    batch_size: int = 50  # deletions between lease renewals
    page_size: int = 5000  # recordings evaluated per index query page
    max_deletions: int = 20_000  # per run; the next run continues


class RetentionSweep:
    def __init__(
        self,
        recordings: RetentionRecordings,
        deleter: RecordingDeleter,
        classes: Callable[[], Mapping[str, RetentionClass]],
        leases: Leases,
        *,
        holds: HoldService | None = None,
        extender: RetentionExtender | None = None,
        limits: SweepLimits = SweepLimits(),
        clock: Clock = utc_now,
        maintenance: bool = True,
    ) -> None:
        self._recordings = recordings
        self._deleter = deleter
        self._classes = classes
        self._leases = leases
        self._holds = holds
        self._extender = extender
        self._limits = limits
        self._clock = clock
        self._maintenance = maintenance

    def run(self, *, max_deletions: int | None = None, dry_run: bool = False) -> SweepReport:
        """One sweep. `dry_run` evaluates without deleting (what the benchmark measures, and an operator's preview)."""
        started = self._clock()
        run_id = f"sweep-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        lease = self._leases.acquire(SWEEP_LEASE, run_id, run_id, started)
        if lease is None:
            log.info("retention sweep not started: another run holds the lease")
            return SweepReport(run_id=run_id, outcome="busy", started_at=started, finished_at=self._clock())
        report = SweepReport(
            run_id=run_id, outcome="completed", started_at=started, finished_at=started, resumed_from=lease.resumed_from
        )
        state = _Run(lease, lease.resumed_from, report)
        limit = max_deletions if max_deletions is not None else self._limits.max_deletions
        with correlation(sweep_run=run_id):
            try:
                if self._maintenance and not dry_run:
                    self._maintain(report)
                self._sweep(state, limit, dry_run)
            except LeaseLost:
                log.warning("retention sweep %s lost its lease; stopping", run_id)
                report.outcome = "partial"
                report.finished_at = self._clock()
                return report
            except BaseException:
                # Hand the lease back with the cursor so the next run continues without waiting for the expiry.
                self._release(state, finished=False)
                raise
            self._release(state, finished=report.outcome == "completed")
        report.finished_at = self._clock()
        log.info(
            "retention sweep %s: %s, %d evaluated, %d deleted, %d held, %d retained, %d failed",
            run_id,
            report.outcome,
            report.evaluated,
            len(report.deleted),
            report.held,
            report.retained,
            len(report.failed),
        )
        return report

    def _release(self, state: _Run, *, finished: bool) -> None:
        try:
            self._leases.release(state.lease, self._clock(), finished=finished, cursor=state.cursor)
        except Exception:
            log.warning("retention sweep %s could not release its lease", state.report.run_id, exc_info=True)

    def _maintain(self, report: SweepReport) -> None:
        if self._holds is not None:
            report.holds_reapplied = self._holds.reconcile()
        if self._extender is not None:
            report.class_extensions_applied = self._extender.apply_pending_classes()

    def _sweep(self, state: _Run, limit: int, dry_run: bool) -> None:
        now = self._clock()
        classes = self._classes()
        report = state.report
        in_batch = 0
        for page in self._recordings.candidates(now, state.cursor, self._limits.page_size):
            for candidate in page:
                if not dry_run and len(report.deleted) >= limit:
                    report.outcome = "partial"
                    return
                report.evaluated += 1
                if self._process(report, candidate, classes, now, dry_run):
                    in_batch += 1
                if in_batch >= self._limits.batch_size:
                    state.lease = self._leases.renew(state.lease, self._clock(), state.cursor)
                    in_batch = 0
                # Everything up to and including this candidate's date is done (a resumed run re-evaluates
                # candidates with the same date, which changes nothing).
                state.cursor = candidate.until_text
            if not dry_run:
                state.lease = self._leases.renew(state.lease, self._clock(), state.cursor)
        state.cursor = None

    def _process(
        self,
        report: SweepReport,
        c: Candidate,
        classes: Mapping[str, RetentionClass],
        now: datetime,
        dry_run: bool,
    ) -> bool:
        """Evaluate one candidate and delete it when due; True when a deletion was attempted."""
        if c.status == "sealed":
            verdict = evaluate(
                c.status, c.retention_class, c.retention_until, c.started_at, c.legal_holds, classes, now
            )
            if verdict.decision == "held":
                report.held += 1
                return False
            if verdict.decision != "due":
                report.retained += 1
                return False
        if dry_run:
            report.deleted.append(c.id)
            return False
        with correlation(recording_id=c.id):
            try:
                self._deleter.delete(c.id, reason="retention_expired", actor=f"retention-sweep:{report.run_id}")
            except RetentionViolation as refused:
                # The last check under the claim found a hold (or a longer retention) the index did not show yet.
                if refused.extensions.get("decision") == "held":
                    report.held += 1
                else:
                    report.retained += 1
                return True
            except Conflict as busy:
                report.failed[c.id] = busy.detail
                return True
            except DeletionRefusedByStore as refused_by_store:
                # Azure's WORM disagrees with the app (e.g. a longer immutability period set outside Verbatim):
                # the store wins; the record stays `deleting` and is reported.
                report.failed[c.id] = str(refused_by_store)
                log.error("store refused deletion of %s: %s", c.id, refused_by_store)
                return True
            except Exception as error:  # one bad recording must not stop the sweep
                report.failed[c.id] = f"{type(error).__name__}: {error}"
                log.exception("deletion of %s failed", c.id)
                return True
        report.deleted.append(c.id)
        return True


@dataclass
class _Run:
    lease: Lease
    cursor: str | None
    report: SweepReport


def lease_duration(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)
