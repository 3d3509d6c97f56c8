"""Telling reconciliation that a recording reached a final state (sealed, or not recorded): one
`recording.indexed` message on `reconciliation-requests`, whose trigger re-evaluates the recording's call(s)
and refreshes its search entry.

A queue, not a direct call: the lifecycle stays fast and never fails because reconciliation does, and
redelivery gives retries. Best effort on purpose — if the message cannot be sent the lifecycle goes on; the
daily completeness run re-evaluates every verdict that is not `recorded` (pending ones included) before it
reports.
"""

from __future__ import annotations

import logging
from datetime import datetime

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.platform.errors import VerbatimError
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime

log = logging.getLogger(__name__)


def indexed_message(record: RecordingRecord, at: datetime) -> RecordingIndexed:
    observed = record.facts.observed_user
    return RecordingIndexed(
        recording_id=record.id,
        status=record.status,
        call_chain_id=record.facts.call_chain_id,
        observed_user_id=observed.id if observed else None,
        at=format_datetime(at),
    )


def announce_indexed(queue: MessageQueue, record: RecordingRecord, at: datetime) -> bool:
    """Ask reconciliation to re-evaluate `record`'s call; False (and a warning) when the message was not sent."""
    try:
        queue.send(indexed_message(record, at).model_dump_json(by_alias=True))
    except (VerbatimError, ValueError) as error:
        log.warning("could not ask reconciliation to re-evaluate", extra={"recording_id": record.id, "err": str(error)})
        return False
    return True
