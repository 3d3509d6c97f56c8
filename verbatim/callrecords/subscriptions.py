"""The callRecords subscription: one per configured tenant for `/communications/callRecords`, kept alive by
the shared Graph subscription keeper (verbatim/graph/subscriptions.py).

Graph allows a callRecords subscription at most 4,230 minutes (subscription-resource-type.md). Notifications
missed while it was gone or unauthorized are recovered by the back-fill timer, which lists the call records
Graph has (verbatim/callrecords/backfill.py), so the keeper is given no gap handler.
"""

from __future__ import annotations

from datetime import timedelta

from verbatim.graph.subscriptions import SubscriptionKind

CALL_RECORDS = SubscriptionKind(
    name="callrecords",
    doc_type="graphSubscription",
    resource="/communications/callRecords",
    change_type="created,updated",
    max_lifetime=timedelta(minutes=4230),
)
