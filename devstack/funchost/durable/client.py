"""Instance management on a task hub: start, raise event, terminate, status, query, purge.

What the Durable HTTP API (and through it the SDK's `DurableOrchestrationClient`) does to a task hub. Each
operation writes the instance row and/or sends a control message; the dispatchers do the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from devstack.funchost.durable import messages
from devstack.funchost.durable.functions import FunctionCatalog, not_found_message
from devstack.funchost.durable.history import HistoryEventType, HistoryRecord, utc_now
from devstack.funchost.durable.messages import ControlMessage
from devstack.funchost.durable.store import ConcurrencyError, InstanceQuery, InstanceRow
from devstack.funchost.durable.taskhub import TaskHub

# Characters Azure Tables does not allow in a partition key (our instance ids are partition keys).
_FORBIDDEN_ID_CHARACTERS = set("/\\#?") | {chr(code) for code in range(0x20)} | {chr(0x7F)}


class ClientError(Exception):
    """A request the task hub refuses; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TaskHubClient:
    """Operations on the instances of one task hub."""

    def __init__(self, hub: TaskHub, catalog: FunctionCatalog, wake: Callable[[], None]) -> None:
        self._hub = hub
        self._catalog = catalog
        self._wake = wake

    @property
    def hub_name(self) -> str:
        return self._hub.options.hub_name

    async def start_new(
        self, name: str, instance_id: str | None, input_text: str | None, version: str | None = None
    ) -> str:
        """Create (or replace a finished) instance and queue its start; returns the instance id."""
        if name not in self._catalog.orchestrators:
            raise ClientError(400, not_found_message(name, "orchestrator"))
        instance_id = instance_id or uuid.uuid4().hex
        version = version or self._hub.options.default_version  # host.json's defaultVersion
        if not instance_id.strip() or _FORBIDDEN_ID_CHARACTERS & set(instance_id) or len(instance_id) > 256:
            raise ClientError(400, f"Instance ID {instance_id!r} is not valid for the Azure Storage provider.")
        existing = await self._hub.store.get_instance(instance_id)
        if existing is not None and not existing.is_terminal:
            raise ClientError(
                409, f"An instance with ID '{instance_id}' already exists and is {existing.runtime_status}."
            )
        execution_id = uuid.uuid4().hex
        now = utc_now()
        row = InstanceRow(
            instance_id=instance_id,
            name=name,
            execution_id=execution_id,
            runtime_status="Pending",
            created_time=now,
            last_updated_time=now,
            input=input_text,
            version=version,
            etag=existing.etag if existing is not None else None,
        )
        started = ControlMessage(
            messages.started_id(instance_id, execution_id),
            instance_id,
            execution_id,
            {
                "EventType": int(HistoryEventType.EXECUTION_STARTED),
                "Name": name,
                "Version": version or "",
                "Input": input_text,
                "ParentInstance": None,
                "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
            },
        )
        if existing is None:
            # As DurableTask.AzureStorage's CreateTaskOrchestrationAsync: the start message first, then the
            # instance row. A start whose message could not be sent leaves nothing behind, so the caller's retry
            # starts the instance; one whose row could not be written runs anyway (the dispatcher writes the row
            # from the message). The other order left a `Pending` row no message would ever start, which refused
            # every retry as a duplicate.
            await self._send(started)
            try:
                await self._hub.store.save_instance(row)
            except ConcurrencyError as error:
                current = await self._hub.store.get_instance(instance_id)
                if current is None or current.execution_id != execution_id:  # another start won
                    raise ClientError(409, f"An instance with ID '{instance_id}' was just created.") from error
            return instance_id
        # Replacing a finished instance: its row first, so that its new execution id makes the dispatcher drop
        # what is left of the old execution's messages, then the start.
        try:
            await self._hub.store.save_instance(row)
        except ConcurrencyError as error:
            raise ClientError(409, f"An instance with ID '{instance_id}' was just created or changed.") from error
        await self._hub.store.delete_other_executions(instance_id, execution_id)
        await self._send(started)
        return instance_id

    async def raise_event(self, instance_id: str, event_name: str, input_text: str | None) -> None:
        await self._running(instance_id)
        await self._send(
            ControlMessage(
                f"{instance_id}|event|{uuid.uuid4().hex}",
                instance_id,
                None,  # events go to whichever execution is current (they survive continue-as-new)
                {"EventType": int(HistoryEventType.EVENT_RAISED), "Name": event_name, "Input": input_text},
            )
        )

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        await self._running(instance_id)
        await self._send(
            ControlMessage(
                f"{instance_id}|terminate|{uuid.uuid4().hex}",
                instance_id,
                None,  # whichever execution is current (the instance may continue as new meanwhile)
                {"EventType": int(HistoryEventType.EXECUTION_TERMINATED), "Input": reason},
            )
        )

    async def get(self, instance_id: str) -> InstanceRow | None:
        return await self._hub.store.get_instance(instance_id)

    async def history(self, row: InstanceRow) -> list[HistoryRecord]:
        return await self._hub.store.load_history(row)

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRow], str | None]:
        return await self._hub.store.query_instances(query, top=top, after=continuation)

    async def purge(self, instance_id: str) -> int:
        row = await self._hub.store.get_instance(instance_id)
        if row is None:
            raise ClientError(404, f"No instance with ID '{instance_id}' found.")
        if not row.is_terminal:
            raise ClientError(
                412,
                f"Only orchestrations in a terminal state can be purged, but the orchestration with instance ID "
                f"{instance_id} has status {row.runtime_status}",
            )
        return int(await self._hub.store.delete_instance(instance_id))

    async def purge_matching(self, query: InstanceQuery) -> int:
        """Purge every finished instance the query matches (running ones are never purged)."""
        deleted = 0
        after: str | None = None
        while True:
            rows, after = await self._hub.store.query_instances(query, top=100, after=after)
            for row in rows:
                if row.is_terminal:
                    deleted += int(await self._hub.store.delete_instance(row.instance_id))
            if after is None:
                return deleted

    async def _running(self, instance_id: str) -> InstanceRow:
        row = await self._hub.store.get_instance(instance_id)
        if row is None:
            raise ClientError(404, f"No instance with ID '{instance_id}' found.")
        if row.is_terminal:
            raise ClientError(410, f"Instance with ID '{instance_id}' is gone: either completed or failed.")
        return row

    async def _send(self, message: ControlMessage, delay: timedelta | None = None) -> None:
        await self._hub.control.send(message.to_body(), delay)
        self._wake()
