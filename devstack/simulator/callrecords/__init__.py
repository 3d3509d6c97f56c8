"""Teams call records: built from finished simulated calls (or stored as-is via ``PUT /sim/callRecords/{id}``),
published after a delay on the simulated clock, retained 30 days, and served like Graph: ``$expand`` of
sessions (with segments) and ``participants_v2`` with ``@odata.nextLink`` paging (60 / 130 per page), the
list with ``$filter`` on ``startDateTime`` and participants, ``getPstnCalls`` and ``getDirectRoutingCalls``
with their 90-day range and 1,000-row pages.

Where each part lives: ``facts`` (what a finished call tells the builder), ``builder`` (the callRecord
JSON), ``pstn`` (PSTN / Direct Routing rows), ``query`` (``$expand`` / ``$filter`` parsing), ``store``
(``CallRecords``: schedule, publish, retain), ``graph_api`` (the Graph reads), ``sim_api`` (``/sim``).
"""

from .facts import CallFacts, PartyFacts, StoredRecord
from .query import parse_expand, parse_list_filter, record_participant_ids
from .store import CallRecords

__all__ = [
    "CallFacts",
    "CallRecords",
    "PartyFacts",
    "StoredRecord",
    "parse_expand",
    "parse_list_filter",
    "record_participant_ids",
]
