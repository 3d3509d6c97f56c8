"""Where Verbatim keeps things: Cosmos containers with their partition keys, blob containers, queues.

The single source for the devstack (which creates them), the code (which uses them) and infra/ (whose
Bicep is checked against this list). Partition keys are chosen so the hot queries are single-partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Cosmos DB containers (database COSMOS_DATABASE).
CALLS = "calls"
RECORDINGS = "recordings"
VERDICTS = "verdicts"
RECORDING_INDEX = "recording_index"
HOLDS = "holds"
SUBSCRIPTIONS = "subscriptions"
LEDGER = "ledger"
LEDGER_LOG = "ledger_log"
AUDIT = "audit"
POLICY_SNAPSHOTS = "policy_snapshots"
PSTN_CALLS = "pstn_calls"
CONTROL = "control"
EXPORTS = "exports"
CHATS = "chats"
RECORDING_PAIRS = "recording_pairs"

# Blob containers (the account of each is in BLOB_CONTAINER_ACCOUNTS below). The recordings, captures and
# reports containers can be renamed by app setting (RECORDINGS_CONTAINER, CAPTURES_CONTAINER, REPORTS_CONTAINER).
RECORDINGS_BLOBS = "recordings"
# The recorder's staging container (recordings account): the only one its identity may write. The Function App
# verifies what is staged there and writes the sealed copy into `recordings` (verbatim.evidence.names).
CAPTURES_BLOBS = "captures"
REPORTS_BLOBS = "reports"
RECORDER_PACKAGES_BLOBS = "recorder-packages"
RAW_CALLRECORDS_BLOBS = "callrecords"
LIFECYCLE_SCRATCH_BLOBS = "lifecycle-scratch"
# The ledger v2's tiles, entry bundles and checkpoints (write-once, version-level WORM), and the anchor store
# (a container-level, locked time-based policy: blobs can be added, never changed), on the recordings account.
LEDGER_BLOBS = "ledger"
LEDGER_ANCHORS_BLOBS = "ledger-anchors"
# Export packages and their work areas (copies of evidence: on the recordings account, deleted when they expire).
EXPORTS_BLOBS = "exports"

# Storage queues (runtime account), each with the `-poison` queue the Functions host moves failures to.
RECORDER_EVENTS_QUEUE = "recorder-events"
CALLRECORD_NOTIFICATIONS_QUEUE = "callrecord-notifications"
RECONCILIATION_REQUESTS_QUEUE = "reconciliation-requests"
GRAPH_LIFECYCLE_QUEUE = "graph-lifecycle"
CHAT_MESSAGES_QUEUE = "chat-messages"
CHAT_LIFECYCLE_QUEUE = "chat-lifecycle"
CHAT_BACKFILL_QUEUE = "chat-backfill"
# A sealed part whose access copies (Opus, MP4) are to be made and sealed: work of its own trigger, so that the
# lossless evidence path (the lifecycle orchestration's activities) never queues behind transcoding.
ACCESS_COPIES_QUEUE = "access-copies"

# Tables (runtime account).
RECORDER_PROGRESS_TABLE = "recorderprogress"


@dataclass(frozen=True)
class CosmosContainer:
    name: str
    partition_key: str
    purpose: str


COSMOS_CONTAINERS: tuple[CosmosContainer, ...] = (
    CosmosContainer(CALLS, "/id", "normalised call records, one document per call id (newest version)"),
    CosmosContainer(RECORDINGS, "/id", "recording metadata, status, manifest summary, tombstones"),
    CosmosContainer(VERDICTS, "/callId", "reconciliation verdicts per (call, policy user)"),
    CosmosContainer(RECORDING_INDEX, "/observedUserId", "search index: one flat document per recording"),
    CosmosContainer(HOLDS, "/id", "legal holds"),
    CosmosContainer(SUBSCRIPTIONS, "/id", "Graph change-notification subscriptions"),
    CosmosContainer(LEDGER, "/chain", "the v1 hash-chained ledger (read-only once migrated to the v2 log)"),
    CosmosContainer(LEDGER_LOG, "/pk", "ledger v2 sequencing state, batches (the query index) and progress"),
    CosmosContainer(AUDIT, "/day", "security events and access audit records"),
    CosmosContainer(POLICY_SNAPSHOTS, "/userId", "effective recording policy per user over time"),
    CosmosContainer(PSTN_CALLS, "/day", "PSTN and Direct Routing report rows"),
    CosmosContainer(CONTROL, "/id", "leases, watermarks and other small control documents"),
    CosmosContainer(EXPORTS, "/id", "exports: request, progress, package, retention"),
    CosmosContainer(CHATS, "/chatId", "captured chats: the chat, every message version, sealed bundles"),
    CosmosContainer(RECORDING_PAIRS, "/id", "pairs of recordings of one call leg and policy user (2N recording)"),
)

# `lifecycle-scratch` (runtime account): encoded access-copy chunks between the parallel transcoding activities
# and their concatenation; kept out of the WORM recordings container so they can be deleted.
# `callrecords` (recordings account): raw Graph call-record payloads too large for a Cosmos item (2 MB), by id and
# version — compliance data kept as long as the records, so it lives with the evidence, not with the runtime.
BlobAccount = Literal["recordings", "runtime"]
BLOB_CONTAINER_ACCOUNTS: dict[str, BlobAccount] = {
    RECORDINGS_BLOBS: "recordings",
    CAPTURES_BLOBS: "recordings",
    REPORTS_BLOBS: "recordings",
    RAW_CALLRECORDS_BLOBS: "recordings",
    RECORDER_PACKAGES_BLOBS: "runtime",
    LIFECYCLE_SCRATCH_BLOBS: "runtime",
    LEDGER_BLOBS: "recordings",
    LEDGER_ANCHORS_BLOBS: "recordings",
    EXPORTS_BLOBS: "recordings",
}
BLOB_CONTAINERS: tuple[str, ...] = tuple(BLOB_CONTAINER_ACCOUNTS)


def blob_account(name: str) -> BlobAccount:
    """The storage account a blob container of the layout lives on."""
    try:
        return BLOB_CONTAINER_ACCOUNTS[name]
    except KeyError:
        raise KeyError(f"no blob container named {name!r} in verbatim.platform.layout") from None


QUEUES: tuple[str, ...] = tuple(
    name
    for queue in (
        RECORDER_EVENTS_QUEUE,
        CALLRECORD_NOTIFICATIONS_QUEUE,
        RECONCILIATION_REQUESTS_QUEUE,
        GRAPH_LIFECYCLE_QUEUE,
        CHAT_MESSAGES_QUEUE,
        CHAT_LIFECYCLE_QUEUE,
        CHAT_BACKFILL_QUEUE,
        ACCESS_COPIES_QUEUE,
    )
    for name in (queue, f"{queue}-poison")
)


def cosmos_container(name: str) -> CosmosContainer:
    for container in COSMOS_CONTAINERS:
        if container.name == name:
            return container
    raise KeyError(f"no Cosmos container named {name!r} in verbatim.platform.layout")
