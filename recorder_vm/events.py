"""Recorder events onto the `recorder-events` queue, surviving a queue outage and a restart.

`publish` writes the event into a local outbox directory (one file per event, named in publishing order) and
returns without waiting for the disk: it runs on the signalling loop, where an fsync (~5 ms, up to 20 ms on a busy
disk) would hold up every invitation waiting for its answer. Once `publish` returned the event is the kernel's, so
a crash or kill of the process loses nothing; the sender thread fsyncs each file before it sends it, so an event
that waits (queue down, or answers going first) waits on the disk. Only a crash of the whole machine in the
moments between `publish` and the sender's fsync can lose an event (the lifecycle's liveness check and salvage
cover a recorder that vanished without reporting).

The sender delivers the outbox in order, deleting each file once the queue accepted it, and backs off
(exponentially, with jitter, up to 30 s) while the queue is unreachable. Answers go first: while `hold()` says
invitations are waiting for their answers (an invitation storm), the sender waits (at most `max_hold` seconds per
pass over the outbox) rather than spend the instance's CPU on the queue. Files left by a previous process are sent
first. Delivery is at least once: consumers de-duplicate by `event_id`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from verbatim.contracts.recorder import RecorderEventBase

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def send(self, body: str) -> None:
        """Deliver one message body; raise on failure."""
        ...


class QueueSink:
    """The Azure queue (base64 text, as the Functions queue trigger expects)."""

    def __init__(self, client: QueueClient, *, timeout_seconds: float = 5.0) -> None:
        self._client = client
        self._options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 2.0, "read_timeout": timeout_seconds}

    def send(self, body: str) -> None:
        try:
            self._client.send_message(body, **self._options)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._client.create_queue(**self._options)
            self._client.send_message(body, **self._options)


class EventPublisher:
    def __init__(
        self,
        outbox: Path,
        sink: EventSink,
        *,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        hold: Callable[[], bool] = lambda: False,
        max_hold: float = 1.0,
    ) -> None:
        self._outbox = outbox
        self._sink = sink
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self.hold = hold  # settable: the recorder that says when answers are waiting is built after the publisher
        self._max_hold = max_hold
        self.held = 0  # times the sender waited for answers to go first
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counter = 0
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failures = 0
        outbox.mkdir(parents=True, exist_ok=True)
        # Continue numbering after files left by an earlier process so order is kept.
        existing = [int(path.name.split("-", 1)[0]) for path in outbox.glob("*.json") if path.name[0].isdigit()]
        self._counter = max(existing, default=0)

    @property
    def pending(self) -> int:
        return sum(1 for _ in self._outbox.glob("*.json"))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recorder-events", daemon=True)
            self._thread.start()

    def publish(self, event: RecorderEventBase) -> None:
        """Queue the event for delivery: in the outbox once this returns (a process crash loses nothing); the sender
        fsyncs it before it sends it. Events are delivered in the order they were published."""
        body = event.model_dump_json()
        with self._lock:
            self._counter += 1
            name = f"{self._counter:012d}-{event.event_id}.json"
            temporary = self._outbox / f".{name}.tmp"
            temporary.write_text(body, encoding="utf-8")
            # Renamed under the lock: a name the sender sees is never followed by an earlier one appearing later.
            temporary.replace(self._outbox / name)
        log.info(
            "recorder event queued",
            extra={"event_type": getattr(event, "type", "?"), "event_id": event.event_id},
        )
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty (or the timeout passes); True when everything was delivered."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return self.pending == 0

    def stop(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _answers_first(self, deadline: float) -> None:
        """Wait while invitations are waiting for their answers, until `deadline` (one per pass over the outbox, so
        a steady stream of invitations delays delivery by at most `max_hold` per pass and never starves it)."""
        if not self.hold() or time.monotonic() >= deadline:
            return
        self.held += 1
        while self.hold() and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(0.01)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            hold_until = time.monotonic() + self._max_hold
            for path in sorted(self._outbox.glob("*.json")):
                if self._stop.is_set():
                    return
                self._answers_first(hold_until)
                try:
                    self._sink.send(_read_synced(path))
                except Exception as error:  # any failure: keep the event, retry later
                    self.failures += 1
                    backoff = min(self._max_backoff, backoff * 2 if backoff else self._first_backoff)
                    log.warning(
                        "recorder events queue unavailable; will retry",
                        extra={"error": type(error).__name__, "retry_in_seconds": round(backoff, 2)},
                    )
                    self._stop.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                    self._wake.set()
                    break
                backoff = 0.0
                self.sent += 1
                path.unlink(missing_ok=True)


def _read_synced(path: Path) -> str:
    """The event's body, on the disk before it leaves the instance (publish does not wait for the fsync)."""
    with path.open("r+", encoding="utf-8") as file:
        os.fsync(file.fileno())
        return file.read()
