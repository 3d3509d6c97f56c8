"""Azure Scheduled Events (instance metadata service): a termination notice turns into a drain.

The endpoint (`http://169.254.169.254/metadata/scheduledevents?api-version=...`, header `Metadata: true`)
lists upcoming maintenance. A `Terminate`, `Preempt`, `Reboot` or `Redeploy` event for this VM makes the
recorder drain; once it is settled (no call left, every event delivered, no block spilled to disk: nothing would
be lost with the VM) it approves the event (`StartRequests`) so the platform need not wait for the deadline.
`Freeze` (a pause of seconds) is logged only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

DISRUPTIVE = frozenset({"Terminate", "Preempt", "Reboot", "Redeploy"})


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event_id: str = Field(alias="EventId")
    event_type: str = Field(alias="EventType")
    resource_type: str | None = Field(default=None, alias="ResourceType")
    resources: list[str] = Field(default_factory=list, alias="Resources")
    event_status: str | None = Field(default=None, alias="EventStatus")
    not_before: str | None = Field(default=None, alias="NotBefore")


class ScheduledEventsDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    document_incarnation: int = Field(default=0, alias="DocumentIncarnation")
    events: list[ScheduledEvent] = Field(default_factory=list, alias="Events")


class ScheduledEventsWatcher:
    def __init__(
        self,
        *,
        url: str,
        instance_name: str,
        http: httpx.AsyncClient,
        drain: Callable[[str], None],
        settled: Callable[[], bool],
        poll_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._instance = instance_name
        self._http = http
        self._drain = drain
        self._settled = settled
        self._poll_seconds = poll_seconds
        self.pending: dict[str, ScheduledEvent] = {}
        self.approved: set[str] = set()
        self.polls = 0

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self._poll_seconds)

    async def poll_once(self) -> None:
        self.polls += 1
        try:
            response = await self._http.get(self._url, headers={"Metadata": "true"}, timeout=5.0)
            response.raise_for_status()
            document = ScheduledEventsDocument.model_validate(response.json())
        except (httpx.HTTPError, ValueError, ValidationError) as error:
            log.debug("scheduled events unavailable", extra={"error": type(error).__name__})
            return
        for event in document.events:
            if not self._affects_us(event):
                continue
            if event.event_type not in DISRUPTIVE:
                if event.event_id not in self.pending:
                    log.info("scheduled event (not disruptive)", extra={"event_type": event.event_type})
                continue
            if event.event_id not in self.pending:
                log.warning(
                    "termination notice: draining",
                    extra={"event_type": event.event_type, "not_before": event.not_before},
                )
            self.pending[event.event_id] = event
            self._drain(f"scheduled event {event.event_type} {event.event_id}")
        if self.pending and self._settled():
            await self._approve()

    def _affects_us(self, event: ScheduledEvent) -> bool:
        return not event.resources or self._instance in event.resources

    async def _approve(self) -> None:
        waiting = [event_id for event_id in self.pending if event_id not in self.approved]
        if not waiting:
            return
        body = {"StartRequests": [{"EventId": event_id} for event_id in waiting]}
        try:
            response = await self._http.post(self._url, json=body, headers={"Metadata": "true"}, timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as error:
            log.warning("could not approve scheduled events", extra={"error": type(error).__name__})
            return
        self.approved.update(waiting)
        log.info("no calls left: scheduled events approved", extra={"events": waiting})
