"""What other areas call when something reconciliation depends on changed. The recording lifecycle, when a
recording reaches a final state (sealed, or not recorded): `notify_recording_indexed` puts a
`recording.indexed` message on `reconciliation-requests`, and the reconciliation queue trigger re-evaluates
the recording's call(s) and refreshes its search entry. The policy coverage audit, when it wrote snapshots:
`notify_policies_observed` puts `policies.observed`, and the trigger decides the verdicts that were waiting
for a user's policy (`pending`, `policy_unknown`).

A queue, not a direct call: the lifecycle activity and the audit stay fast and never fail because
reconciliation does, and redelivery gives retries. Best effort on purpose — if a message cannot be sent, the
caller goes on; the daily completeness run re-evaluates every verdict that is not `recorded` (pending ones
included) before it reports.
"""

from __future__ import annotations

import logging

from verbatim.callrecords.queues import MessageQueue
from verbatim.callrecords.times import format_datetime, utcnow
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.policy import CoverageReport
from verbatim.contracts.reconciliation import PoliciesObserved, RecordingIndexed
from verbatim.errors import VerbatimError
from verbatim.settings import Settings, get_settings

log = logging.getLogger(__name__)


def indexed_message(record: RecordingRecord) -> RecordingIndexed:
    observed = record.facts.observed_user
    return RecordingIndexed(
        recording_id=record.id,
        status=record.status,
        call_chain_id=record.facts.call_chain_id,
        observed_user_id=observed.id if observed else None,
        at=format_datetime(utcnow()),
    )


def notify_recording_indexed(
    record: RecordingRecord, queue: MessageQueue | None = None, settings: Settings | None = None
) -> bool:
    """Ask reconciliation to re-evaluate `record`'s call; False (and a warning) when the message was not sent."""
    try:
        if queue is None:
            from verbatim.reconciliation.runtime import reconciliation_runtime

            queue = reconciliation_runtime(settings or get_settings()).requests_queue
        queue.send(indexed_message(record).model_dump_json(by_alias=True))
    except (VerbatimError, ValueError) as error:
        log.warning("could not ask reconciliation to re-evaluate", extra={"recording_id": record.id, "err": str(error)})
        return False
    return True


def notify_policies_observed(
    report: CoverageReport, queue: MessageQueue | None = None, settings: Settings | None = None
) -> bool:
    """Ask reconciliation to decide the verdicts waiting for a user's policy, when `report`'s audit wrote
    snapshots (an audit that wrote none told reconciliation nothing new); False when nothing was sent."""
    if report.snapshots_written == 0:
        return False
    message = PoliciesObserved(snapshots_written=report.snapshots_written, at=format_datetime(utcnow()))
    try:
        if queue is None:
            from verbatim.reconciliation.runtime import reconciliation_runtime

            queue = reconciliation_runtime(settings or get_settings()).requests_queue
        queue.send(message.model_dump_json(by_alias=True))
    except (VerbatimError, ValueError) as error:
        log.warning(
            "could not ask reconciliation to decide the verdicts waiting for a policy", extra={"err": str(error)}
        )
        return False
    return True
