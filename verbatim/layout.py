"""Where Verbatim keeps things: Cosmos containers with their partition keys, blob containers, queues.

The single source for the devstack (which creates them), the code (which uses them) and infra/ (whose
Bicep is checked against this list). Partition keys are chosen so the hot queries are single-partition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CosmosContainer:
    name: str
    partition_key: str
    purpose: str


COSMOS_CONTAINERS: tuple[CosmosContainer, ...] = (
    CosmosContainer("calls", "/id", "normalised call records, one document per call id (newest version)"),
    CosmosContainer("recordings", "/id", "recording metadata, status, manifest summary, tombstones"),
    CosmosContainer("verdicts", "/callId", "reconciliation verdicts per (call, policy user)"),
    CosmosContainer("recording_index", "/observedUserId", "search index: one flat document per recording"),
    CosmosContainer("holds", "/id", "legal holds"),
    CosmosContainer("subscriptions", "/id", "Graph change-notification subscriptions"),
    CosmosContainer("ledger", "/chain", "append-only, hash-chained evidence ledger and signed checkpoints"),
    CosmosContainer("audit", "/day", "security events and access audit records"),
    CosmosContainer("policy_snapshots", "/userId", "effective recording policy per user over time"),
    CosmosContainer("pstn_calls", "/day", "PSTN and Direct Routing report rows"),
    CosmosContainer("control", "/id", "leases, watermarks and other small control documents"),
)

# `lifecycle-scratch` (runtime account): encoded access-copy chunks between the parallel transcoding activities
# and their concatenation; kept out of the WORM recordings container so they can be deleted.
# `callrecords`: raw Graph call-record payloads too large for a Cosmos item (2 MB), by id and version.
BLOB_CONTAINERS: tuple[str, ...] = ("recordings", "reports", "recorder-packages", "callrecords", "lifecycle-scratch")
QUEUES: tuple[str, ...] = (
    "recorder-events",
    "recorder-events-poison",
    "callrecord-notifications",
    "callrecord-notifications-poison",
    "reconciliation-requests",
    "reconciliation-requests-poison",
    "graph-lifecycle",
    "graph-lifecycle-poison",
)


def cosmos_container(name: str) -> CosmosContainer:
    for container in COSMOS_CONTAINERS:
        if container.name == name:
            return container
    raise KeyError(f"no Cosmos container named {name!r} in verbatim.layout")
