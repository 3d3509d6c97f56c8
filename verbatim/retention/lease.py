"""A lease that keeps the retention sweep to one run at a time, with the run's resume cursor.

One etag-guarded document in Cosmos `control`: taken by creating it or by replacing an expired one (If-Match),
renewed between batches (If-Match), and given back at the end. A run that crashed leaves its cursor in the
document; whoever takes the expired lease next continues from there. Lease times use the injected clock.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceExistsError

from verbatim.platform.errors import VerbatimError
from verbatim.retention.common import instant, utc

SWEEP_LEASE = "lease:retention-sweep"


class LeaseLost(VerbatimError):
    """Another run took the lease (ours expired): stop without touching anything more."""

    status = 409
    title = "Lease lost"


@dataclass
class LeaseState:
    holder: str | None = None
    expires_at: datetime | None = None
    run_id: str | None = None
    cursor: str | None = None  # where an unfinished run got to (a stored retention date)
    run_started_at: datetime | None = None
    completed_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    etag: str
    state: LeaseState
    resumed_from: str | None  # the cursor of a crashed run this one continues


class LeaseStore(Protocol):
    def read(self, name: str) -> tuple[LeaseState, str] | None: ...

    def create(self, name: str, state: LeaseState) -> str | None:
        """The new etag, or None when the document exists."""

    def replace(self, name: str, state: LeaseState, etag: str) -> str | None:
        """The new etag, or None when it changed since `etag`."""


def _doc(name: str, state: LeaseState) -> dict[str, Any]:
    return {
        "id": name,
        "docType": "lease",
        "holder": state.holder,
        "expiresAt": instant(state.expires_at) if state.expires_at else None,
        "runId": state.run_id,
        "cursor": state.cursor,
        "runStartedAt": instant(state.run_started_at) if state.run_started_at else None,
        "completedAt": instant(state.completed_at) if state.completed_at else None,
    }


def _time(value: object) -> datetime | None:
    return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00"))) if value else None


def _state(doc: dict[str, Any]) -> LeaseState:
    return LeaseState(
        holder=doc.get("holder"),
        expires_at=_time(doc.get("expiresAt")),
        run_id=doc.get("runId"),
        cursor=doc.get("cursor"),
        run_started_at=_time(doc.get("runStartedAt")),
        completed_at=_time(doc.get("completedAt")),
    )


class CosmosLeaseStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def read(self, name: str) -> tuple[LeaseState, str] | None:
        docs = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": name}], partition_key=name
            )
        )
        return (_state(docs[0]), str(docs[0]["_etag"])) if docs else None

    def create(self, name: str, state: LeaseState) -> str | None:
        try:
            doc = self._container.create_item(_doc(name, state))
        except CosmosResourceExistsError:
            return None
        return str(doc["_etag"])

    def replace(self, name: str, state: LeaseState, etag: str) -> str | None:
        try:
            doc = self._container.replace_item(
                name, _doc(name, state), etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return None
            raise
        return str(doc["_etag"])


class InMemoryLeaseStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, tuple[LeaseState, str]] = {}

    def read(self, name: str) -> tuple[LeaseState, str] | None:
        with self._lock:
            return self.docs.get(name)

    def create(self, name: str, state: LeaseState) -> str | None:
        with self._lock:
            if name in self.docs:
                return None
            etag = uuid.uuid4().hex
            self.docs[name] = (state, etag)
            return etag

    def replace(self, name: str, state: LeaseState, etag: str) -> str | None:
        with self._lock:
            current = self.docs.get(name)
            if current is None or current[1] != etag:
                return None
            new = uuid.uuid4().hex
            self.docs[name] = (state, new)
            return new


class Leases:
    def __init__(self, store: LeaseStore, duration: timedelta) -> None:
        self._store = store
        self._duration = duration

    def acquire(self, name: str, holder: str, run_id: str, now: datetime) -> Lease | None:
        """The lease, or None while another holder's lease has not expired."""
        current = self._store.read(name)
        if current is None:
            state = LeaseState(holder, now + self._duration, run_id, None, now)
            etag = self._store.create(name, state)
            return Lease(name, holder, etag, state, None) if etag else None
        previous, etag = current
        if previous.holder is not None and previous.expires_at is not None and previous.expires_at > now:
            return None
        # A run that crashed (or stopped at its bound) left its cursor: continue from there.
        resumed = previous.cursor
        state = LeaseState(holder, now + self._duration, run_id, resumed, now)
        new_etag = self._store.replace(name, state, etag)
        return Lease(name, holder, new_etag, state, resumed) if new_etag else None

    def renew(self, lease: Lease, now: datetime, cursor: str | None) -> Lease:
        state = LeaseState(lease.holder, now + self._duration, lease.state.run_id, cursor, lease.state.run_started_at)
        etag = self._store.replace(lease.name, state, lease.etag)
        if etag is None:
            raise LeaseLost(f"lease {lease.name} was taken by another run")
        return Lease(lease.name, lease.holder, etag, state, lease.resumed_from)

    def release(self, lease: Lease, now: datetime, *, finished: bool, cursor: str | None = None) -> None:
        """Give the lease back; an unfinished run keeps its cursor so the next one continues from it."""
        state = LeaseState(
            None,
            None,
            lease.state.run_id,
            None if finished else cursor,
            lease.state.run_started_at,
            now if finished else None,
        )
        self._store.replace(lease.name, state, lease.etag)
