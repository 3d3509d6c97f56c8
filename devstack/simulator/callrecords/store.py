"""The simulated tenant's call records: version 1 published after the delay on the simulated clock (later
versions after theirs), PSTN / Direct Routing rows with version 1, stored with the time first stored so
they expire after 30 days, and each publication told to the listeners (subscriptions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from ..clock import Clock
from ..config import SimConfig
from ..faults import Faults
from ..identity import Identity
from ..odata import GraphError, format_datetime
from .builder import build_record
from .facts import CallFacts, StoredRecord
from .graph_api import GraphCallRecordsApi
from .pstn import pstn_row
from .sim_api import SimCallRecordsApi

Listener = Callable[[dict[str, Any], Literal["created", "updated"]], None]


class CallRecords:
    """Stores, publishes and serves call records and PSTN / Direct Routing rows."""

    def __init__(self, clock: Clock, config: SimConfig, identity: Identity, faults: Faults) -> None:
        self.clock = clock
        self.config = config
        self.identity = identity
        self.faults = faults
        self.records: dict[str, StoredRecord] = {}
        self.pstn_rows: list[dict[str, Any]] = []
        self.dr_rows: list[dict[str, Any]] = []
        self.listeners: list[Listener] = []
        self.scheduled: dict[str, list[dict[str, Any]]] = {}
        self.graph_api = GraphCallRecordsApi(self)
        self.sim_api = SimCallRecordsApi(self)

    # -- producing --------------------------------------------------------------------------------------
    def conversation_ended(self, facts: CallFacts) -> datetime:
        """Schedule version 1 after the delay (and any later versions); returns when v1 appears."""
        delay = self.config.call_record_delay_seconds if facts.delay_seconds is None else facts.delay_seconds
        fault = self.faults.take("callRecordDelay")
        if fault is not None:
            delay = fault.delay_seconds
        # measured on the clock from the moment the simulator ended the call (with fast media the call's
        # own timeline can run ahead of a simulated clock; the delay still counts from "now")
        first = self.clock.now() + timedelta(seconds=delay)
        self.scheduled.setdefault(facts.record_id, [])
        self._schedule(facts, 1, first, with_rows=True)
        for index, after in enumerate(facts.later_versions, start=2):
            self._schedule(facts, index, first + timedelta(seconds=after), with_rows=False)
        return first

    def _schedule(self, facts: CallFacts, version: int, when: datetime, with_rows: bool) -> None:
        entry = {"version": version, "at": format_datetime(when)}
        self.scheduled[facts.record_id].append(entry)

        def publish() -> None:
            self.scheduled[facts.record_id].remove(entry)
            self.publish(build_record(facts, version, self.clock.now()))
            if with_rows:
                row = pstn_row(facts)
                if row is not None:
                    (self.dr_rows if facts.connectivity == "directRouting" else self.pstn_rows).append(row)

        self.clock.call_at(when, publish, label=f"callRecord {facts.record_id} v{version}")

    def publish(self, data: dict[str, Any]) -> Literal["created", "updated"]:
        record_id = str(data["id"])
        existing = self.records.get(record_id)
        change: Literal["created", "updated"] = "updated" if existing is not None else "created"
        stored_at = existing.stored_at if existing is not None else self.clock.now()
        self.records[record_id] = StoredRecord(data, stored_at)
        for listener in self.listeners:
            listener(data, change)
        return change

    # -- reading ----------------------------------------------------------------------------------------
    def is_visible(self, record: StoredRecord) -> bool:
        return self.clock.now() < record.stored_at + timedelta(days=self.config.call_record_retention_days)

    def get_visible(self, record_id: str) -> StoredRecord:
        record = self.records.get(record_id)
        if record is None or not self.is_visible(record):
            raise GraphError(404, "NotFound", f"The requested call record '{record_id}' was not found.")
        return record

    def routes(self) -> list[web.RouteDef]:
        return self.graph_api.routes() + self.sim_api.routes()
