"""Concurrent invocations of the `reconciliation-requests` trigger share one batch.

A queue trigger gets one message per invocation, but the host runs up to `batchSize` of them at once, each on a
worker thread. Each request is handed to `RequestBatcher.handle`: when no batch is being handled, the caller
handles at once every request waiting (its own among them) through `Reconciler.handle_many`; callers arriving
meanwhile wait, and the first of them handles the next batch. Nothing waits for a batch to fill — an idle
trigger handles each message alone, as before — so batches form only when messages arrive faster than they
are handled, which is when sharing reads matters (issue 22: a stored version cost four Cosmos requests, and the
SDK's per-request CPU was most of reconciliation's).

Each invocation returns (or raises) its own request's answer only once its request is handled, so the host
deletes a message only after its verdicts are written, and a failed request's message alone is retried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from verbatim.reconciliation.service import CallOutcome, ReconciliationRequest

HandleMany = Callable[[Sequence[ReconciliationRequest]], list[list[CallOutcome] | Exception]]
MAX_BATCH = 32


@dataclass
class _Ticket:
    request: ReconciliationRequest
    answer: list[CallOutcome] | BaseException | None = None
    done: bool = field(default=False)


class RequestBatcher:
    def __init__(self, handle_many: HandleMany, max_batch: int = MAX_BATCH) -> None:
        self._handle_many = handle_many
        self._max_batch = max(1, max_batch)
        self._changed = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._busy = False
        self.batches = 0  # batches handled (for tests and benchmarks)

    def handle(self, request: ReconciliationRequest) -> list[CallOutcome]:
        ticket = _Ticket(request)
        with self._changed:
            self._waiting.append(ticket)
        while True:
            with self._changed:
                while self._busy and not ticket.done:
                    self._changed.wait()
                if ticket.done:
                    break
                self._busy = True
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            self._run(batch)
        if isinstance(ticket.answer, BaseException):
            raise ticket.answer
        assert ticket.answer is not None
        return ticket.answer

    def _run(self, batch: list[_Ticket]) -> None:
        answers: Sequence[list[CallOutcome] | BaseException]
        try:
            answers = self._handle_many([ticket.request for ticket in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to a batch of {len(batch)} requests")
        except BaseException as error:  # every request of the batch fails with it (each message is retried)
            answers = [error] * len(batch)
        with self._changed:
            for ticket, answer in zip(batch, answers, strict=True):
                ticket.answer, ticket.done = answer, True
            self.batches += 1
            self._busy = False
            self._changed.notify_all()
