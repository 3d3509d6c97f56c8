"""The lifecycle's ports in memory, for service-level tests: `LifecycleDeps` over the in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.ledger.logkit import memory_log
from verbatim.evidence.worm import InMemoryWorm
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.platform.queues import InMemoryQueue


def memory_deps(**changes: Any) -> LifecycleDeps:
    """Recordings, captures and scratch containers, the record store, the ledger (a v2 log), WORM and the
    reconciliation queue in memory; MiFID II retention (1,827 days) and 4-second access-copy chunks; `changes` on
    top (a progress reader, a pair store, a clock...)."""
    deps = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        captures=InMemoryBlobStore("captures"),
        scratch=InMemoryBlobStore("lifecycle-scratch"),
        store=InMemoryRecordingStore(),
        ledger=memory_log(),
        retention=FixedRetention("mifid2", 1827),
        worm=InMemoryWorm(),
        reconciliation=InMemoryQueue(),
        chunk_seconds=4,
    )
    return replace(deps, **changes)
