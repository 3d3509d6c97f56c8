"""What other areas call when something reconciliation depends on changed: the policy coverage audit, when it
wrote snapshots, puts `policies.observed` on `reconciliation-requests` (`notify_policies_observed`), and the
trigger decides the verdicts that were waiting for a user's policy (`pending`, `policy_unknown`). (The recording
lifecycle tells reconciliation about final recordings itself: `verbatim.lifecycle.announce`.)

A queue, not a direct call: the audit stays fast and never fails because reconciliation does, and redelivery
gives retries. Best effort on purpose — if a message cannot be sent, the caller goes on; the daily completeness
run re-evaluates every verdict that is not `recorded` (pending ones included) before it reports.
"""

from __future__ import annotations

import logging

from verbatim.contracts.policy import CoverageReport
from verbatim.contracts.reconciliation import PoliciesObserved
from verbatim.platform.errors import VerbatimError
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime, utcnow

log = logging.getLogger(__name__)


def notify_policies_observed(report: CoverageReport, queue: MessageQueue) -> bool:
    """Ask reconciliation to decide the verdicts waiting for a user's policy, when `report`'s audit wrote
    snapshots (an audit that wrote none told reconciliation nothing new); False when nothing was sent."""
    if report.snapshots_written == 0:
        return False
    message = PoliciesObserved(snapshots_written=report.snapshots_written, at=format_datetime(utcnow()))
    try:
        queue.send(message.model_dump_json(by_alias=True))
    except (VerbatimError, ValueError) as error:
        log.warning(
            "could not ask reconciliation to decide the verdicts waiting for a policy", extra={"err": str(error)}
        )
        return False
    return True
