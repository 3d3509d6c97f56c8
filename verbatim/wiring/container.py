"""The composition root: every adapter of the process built once, from settings and `verbatim.platform.layout`,
and each capability's services built from those adapters. Nothing connects until something is first used.

`Container(settings, clock=..., **overrides)`: any adapter or service named here can be given ready-made (an
in-memory fake, a client on Azurite), which is how tests build the graph around what they want to watch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from verbatim.api.ledger import LedgerApi
from verbatim.api.live import CosmosCapturingRecordings, LiveCalls
from verbatim.api.service import ComplianceApi
from verbatim.contracts.health import EvidenceStoreStatus
from verbatim.evidence.progress import TableProgress, progress_table
from verbatim.evidence.worm import Worm
from verbatim.evidence.worm_status import read_worm_lock
from verbatim.graph import GraphClient, GraphCredentials, RetryPolicy, graph_client, graph_credentials
from verbatim.ledger import (
    CosmosLedgerStore,
    KeyVaultSigner,
    Ledger,
    LedgerStore,
    LocalKeySigner,
    Signer,
    ensure_local_key,
    trusted_fingerprints,
)
from verbatim.ledger.access import AccessLog
from verbatim.ledger.log.anchors import AnchorStore
from verbatim.ledger.log.blobs import AzureLogBlobs
from verbatim.ledger.log.cosmos import CosmosLogStore
from verbatim.ledger.log.maintenance import LogKeys
from verbatim.ledger.log.migration import migrate_v1
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.log.timestamps import Rfc3161Client
from verbatim.ledger.log.witnesses import Witness, Witnesses
from verbatim.ledger.note import NoteVerifier, note_signer
from verbatim.lifecycle.access_requests import CosmosPendingAccessCopies
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.liveness import CaptureLiveness, HttpCaptureLiveness, NoLiveness
from verbatim.lifecycle.pairs import CosmosPairStore
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform import clients, layout
from verbatim.platform.audit import CosmosAuditLog, CosmosAuditReader
from verbatim.platform.auth import TokenValidator, token_validator
from verbatim.platform.blobs import AzureBlobStore, BlobStore
from verbatim.platform.clients import Base64QueueServiceClient
from verbatim.platform.queues import AsyncStorageQueue, StorageQueue, async_queue_client
from verbatim.platform.settings import Settings, StorageConnection
from verbatim.platform.times import utcnow
from verbatim.policy.snapshots import CosmosPolicySnapshotStore
from verbatim.reconciliation.store import CosmosRecordingFinder, CosmosVerdictStore
from verbatim.search.index import CosmosRecordingIndex
from verbatim.wiring.callrecords import CallRecordServices
from verbatim.wiring.chat import ChatServices
from verbatim.wiring.exports import ExportServices
from verbatim.wiring.policy import PolicyServices
from verbatim.wiring.reconciliation import ReconciliationServices
from verbatim.wiring.retention import RetentionServices

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

# Waits longer than this go back to the queue (re-enqueued with that delay) instead of holding one of the
# worker's few threads asleep.
GRAPH_MAX_RETRY_AFTER = 10.0


def build_signer(settings: Settings) -> Signer | None:
    """The checkpoint signer: the Key Vault key when configured, else the local key file (created on first
    use only when VERBATIM_ENVIRONMENT is local), else None (entries are chained but not signed)."""
    if settings.ledger_signing_key_vault_key_id:
        return KeyVaultSigner.from_key_id(
            settings.ledger_signing_key_vault_key_id, clients.credential_for(settings.azure_client_id)
        )
    if settings.ledger_signing_key_file:
        path = Path(settings.ledger_signing_key_file)
        if not path.exists() and settings.environment == "local":
            ensure_local_key(path)
        return LocalKeySigner.from_file(path)
    return None


def build_ledger(settings: Settings, store: LedgerStore, signer: Signer | None = None) -> Ledger:
    """A ledger writer over `store` for the configured chain (the container builds the process's one; a
    benchmark that wants several independent writers builds them here)."""
    return Ledger(
        store,
        settings.ledger_chain,
        signer if signer is not None else build_signer(settings),
        checkpoint_interval=settings.ledger_checkpoint_interval,
    )


def log_keys(settings: Settings, signer: Signer | None) -> LogKeys:
    """The ledger v2 log's identity: its origin, the signer named after it, and every key its checkpoints are
    verified with (the signer's, every version of its Key Vault key, and LEDGER_TRUSTED_VKEYS)."""
    origin = settings.ledger_origin
    verifiers: list[NoteVerifier] = []
    note = note_signer(origin, signer) if signer is not None else None
    if note is not None:
        verifiers.append(note.verifier)
    if isinstance(signer, KeyVaultSigner):
        for pem in signer.trusted_public_keys:
            key = serialization.load_pem_public_key(pem.encode())
            if isinstance(key, ec.EllipticCurvePublicKey):
                verifiers.append(NoteVerifier.for_key(origin, key))
    verifiers.extend(NoteVerifier.from_vkey(vkey) for vkey in settings.ledger_trusted_vkeys)
    unique = {(v.name, v.key_id): v for v in verifiers}  # keys are not hashable; (name, key ID) names them
    return LogKeys(origin, note, tuple(unique.values()))


def build_witnesses(settings: Settings) -> Witnesses | None:
    """The witnesses of LEDGER_WITNESSES, asked to cosign each checkpoint (none configured: None)."""
    if not settings.ledger_witnesses:
        return None
    return Witnesses([Witness.parse(text) for text in settings.ledger_witnesses])


def build_tsa(settings: Settings) -> Rfc3161Client | None:
    """The RFC 3161 time-stamping authority of LEDGER_TSA_URL (roots: LEDGER_TSA_CA_CERTS, PEM or a file)."""
    if not settings.ledger_tsa_url:
        return None
    raw = settings.ledger_tsa_ca_certs or ""
    pem = raw.encode() if raw.lstrip().startswith("-----BEGIN") else Path(raw).read_bytes()
    return Rfc3161Client(settings.ledger_tsa_url, x509.load_pem_x509_certificates(pem))


WORM_LOCK_TTL_SECONDS = 900.0


def _evidence_store_status(settings: Settings) -> EvidenceStoreStatus:
    if settings.recordings_storage_is_emulator:
        return EvidenceStoreStatus(worm="not_locked", detail="Azurite keeps no WORM policy (local stack)")
    try:
        policy = read_worm_lock(settings)
    except Exception as error:  # ARM unreachable or the role missing: unknown, never an error of the health route
        log.warning("could not read the evidence store's WORM policy: %s", error)
        return EvidenceStoreStatus(worm="unknown", detail=type(error).__name__)
    if policy is None:
        return EvidenceStoreStatus(worm="unknown", detail="RECORDINGS_CONTAINER_RESOURCE_ID is not set")
    if policy.state == "Locked":
        return EvidenceStoreStatus(worm="locked")
    return EvidenceStoreStatus(worm="not_locked", detail=f"default policy {policy.state}")


class Container:
    """The object graph of one process (one per settings object; see `verbatim.wiring.container_for`)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow, **overrides: Any) -> None:
        self.settings = settings
        self.clock = clock  # tests run retention on simulated time
        self._lock = threading.RLock()
        self._cosmos: dict[str, ContainerProxy] = {}
        self._graphs: dict[str, GraphClient] = {}
        self._queues: dict[tuple[str, bool], StorageQueue] = {}
        self._async_queues: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, AsyncStorageQueue]] = {}
        for name, value in overrides.items():
            if not isinstance(getattr(type(self), name, None), cached_property):
                raise TypeError(f"{name!r} is not something the container builds")
            self.__dict__[name] = value

    # --- Azure clients: one per account and service ---------------------------------------------------------

    def _blob_service(self, connection: StorageConnection) -> BlobServiceClient:
        return clients.blob_service(connection)

    @cached_property
    def runtime_blobs(self) -> BlobServiceClient:
        return self._blob_service(self.settings.runtime_storage_connection)

    @cached_property
    def recordings_account_blobs(self) -> BlobServiceClient:
        return self._blob_service(self.settings.recordings_storage_connection)

    @cached_property
    def runtime_queues(self) -> Base64QueueServiceClient:
        return clients.queue_service(self.settings.runtime_storage_connection)

    @cached_property
    def runtime_tables(self) -> TableServiceClient:
        return clients.table_service(self.settings.runtime_storage_connection)

    @cached_property
    def database(self) -> DatabaseProxy:
        return clients.cosmos_database(self.settings)

    def _once(self, cache: dict[K, V], key: K, build: Callable[[], V]) -> V:
        """`cache[key]`, built on first use (the per-key memo of the adapters below)."""
        with self._lock:
            value = cache.get(key)
            if value is None:
                value = cache[key] = build()
            return value

    def cosmos(self, name: str) -> ContainerProxy:
        """A Cosmos container of `verbatim.platform.layout` (one proxy per name)."""
        layout.cosmos_container(name)  # a name the layout does not list is a bug here, not a 404 later
        return self._once(self._cosmos, name, lambda: self.database.get_container_client(name))

    # --- blob containers, queues and tables -----------------------------------------------------------------

    @cached_property
    def recordings(self) -> ContainerClient:
        """The evidence: media, access copies and manifests (WORM in Azure)."""
        return self.recordings_account_blobs.get_container_client(self.settings.recordings_container)

    @cached_property
    def recording_blobs(self) -> BlobStore:
        """The recordings container behind the `BlobStore` port (the lifecycle and the evidence code)."""
        return AzureBlobStore(self.recordings)

    @cached_property
    def captures(self) -> ContainerClient:
        """The recorder's staging container: what it captured, before the Function App seals a copy."""
        return self.recordings_account_blobs.get_container_client(self.settings.captures_container)

    @cached_property
    def capture_blobs(self) -> BlobStore:
        return AzureBlobStore(self.captures)

    @cached_property
    def capture_liveness(self) -> CaptureLiveness:
        """Asks the recorder instance that holds a capture whether it is alive (the lifecycle's salvage rule)."""
        settings = self.settings
        audience = next(iter(settings.auth_audiences), None)
        if not settings.recorder_control_hosts or audience is None or not settings.graph_tenant_id:
            return NoLiveness()
        credentials = graph_credentials(settings.model_copy(update={"graph_scope": f"{audience}/.default"}))
        tenant = settings.graph_tenant_id
        return HttpCaptureLiveness(
            allowed_hosts=settings.recorder_control_hosts,
            token=lambda: credentials.token(tenant),
            clock=self.clock,
            verify=settings.recorder_control_ca_cert or True,
        )

    @cached_property
    def worm(self) -> Worm:
        """Immutability and legal holds on the recordings container (a 501 tolerated only on the emulator)."""
        return Worm(self.recordings, emulator=self.settings.recordings_storage_is_emulator)

    @cached_property
    def reports(self) -> ContainerClient:
        return self.recordings_account_blobs.get_container_client(self.settings.reports_container)

    @cached_property
    def scratch(self) -> ContainerClient:
        return self.blob_container(layout.LIFECYCLE_SCRATCH_BLOBS)

    @cached_property
    def scratch_blobs(self) -> BlobStore:
        return AzureBlobStore(self.scratch)

    @cached_property
    def raw_callrecords(self) -> ContainerClient:
        return self.blob_container(layout.RAW_CALLRECORDS_BLOBS)

    def blob_container(self, name: str) -> ContainerClient:
        """A blob container of the layout, on the account the layout (and infra/) puts it on."""
        service = self.recordings_account_blobs if layout.blob_account(name) == "recordings" else self.runtime_blobs
        return service.get_container_client(name)

    def queue(self, name: str, *, fail_fast: bool = False) -> StorageQueue:
        """A storage queue on the runtime account. `fail_fast`: one attempt with short timeouts, for webhooks
        that must answer their caller quickly (Graph retries a 503 for hours)."""

        def build() -> StorageQueue:
            client = self.runtime_queues.get_queue_client(name)
            if fail_fast:
                return StorageQueue(client, retries=0, connect_timeout=1.0, read_timeout=2.0)
            return StorageQueue(client)

        return self._once(self._queues, (name, fail_fast), build)

    def async_queue(self, name: str) -> AsyncStorageQueue:
        """A fail-fast asyncio queue client of the named queue for the running event loop (aio clients are bound
        to the loop they first ran on; entries of closed loops are dropped)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for key, (owner, _) in list(self._async_queues.items()):
                if owner.is_closed():
                    del self._async_queues[key]
            entry = self._async_queues.get((id(loop), name))
            if entry is None or entry[0] is not loop:
                client = async_queue_client(self.settings.runtime_storage_connection, name)
                entry = (loop, AsyncStorageQueue(client, retries=0, connect_timeout=1.0, read_timeout=2.0))
                self._async_queues[(id(loop), name)] = entry
            return entry[1]

    @cached_property
    def reconciliation_requests(self) -> StorageQueue:
        return self.queue(self.settings.reconciliation_requests_queue)

    @cached_property
    def progress(self) -> TableClient:
        """The recorders' heartbeat table (created when missing)."""
        return progress_table(self.runtime_tables)

    # --- Graph ----------------------------------------------------------------------------------------------

    @cached_property
    def graph_credentials(self) -> GraphCredentials:
        return graph_credentials(self.settings)

    def graph_for(self, tenant_id: str) -> GraphClient:
        """The Graph client of one tenant (one per tenant, shared by every capability of the process)."""
        retry = RetryPolicy(max_retry_after=GRAPH_MAX_RETRY_AFTER)
        return self._once(
            self._graphs,
            tenant_id,
            lambda: graph_client(self.settings, tenant_id, credentials=self.graph_credentials, retry=retry),
        )

    # --- stores shared by several capabilities --------------------------------------------------------------

    @cached_property
    def signer(self) -> Signer | None:
        """The ledger's signing key (checkpoints, completeness reports)."""
        return build_signer(self.settings)

    @cached_property
    def chain_ledger(self) -> Ledger:
        """The v1 hash chain: read-only once migrated into the log (its entries keep verifying offline)."""
        return build_ledger(self.settings, CosmosLedgerStore(self.cosmos(layout.LEDGER)), self.signer)

    @cached_property
    def ledger(self) -> TransparencyLog:
        """The evidence ledger (v2): the process's one writer and reader of the log. The first use on a new
        deployment writes the log's first entry and migrates the v1 chains."""
        return TransparencyLog(
            CosmosLogStore(self.cosmos(layout.LEDGER_LOG)),
            AzureLogBlobs(self.recordings_account_blobs.get_container_client(self.settings.ledger_container)),
            log_keys(self.settings, self.signer),
            anchor=self.ledger_anchors,
            witnesses=build_witnesses(self.settings),
            initializer=migrate_v1(CosmosLedgerStore(self.cosmos(layout.LEDGER)), self.settings.ledger_chain),
            clock=self.clock,
        )

    @cached_property
    def ledger_anchors(self) -> AnchorStore:
        container = self.recordings_account_blobs.get_container_client(self.settings.ledger_anchor_container)
        return AnchorStore(AzureLogBlobs(container), build_tsa(self.settings))

    @cached_property
    def ledger_api(self) -> LedgerApi:
        return LedgerApi(self.ledger, self.access)

    @cached_property
    def trusted_fingerprints(self) -> set[str]:
        """Keys of the v1 checkpoints (and of completeness reports), by SHA-256 fingerprint."""
        return trusted_fingerprints(self.settings, self.signer)

    @cached_property
    def audit(self) -> CosmosAuditLog:
        return CosmosAuditLog(self.cosmos(layout.AUDIT))

    @cached_property
    def access(self) -> AccessLog:
        """Every read of the API recorded in the ledger and the audit log."""
        return AccessLog(ledger=self.ledger, audit=self.audit)

    @cached_property
    def recording_store(self) -> CosmosRecordingStore:
        return CosmosRecordingStore(self.cosmos(layout.RECORDINGS))

    @cached_property
    def recording_finder(self) -> CosmosRecordingFinder:
        return CosmosRecordingFinder(self.cosmos(layout.RECORDINGS))

    @cached_property
    def recording_index(self) -> CosmosRecordingIndex:
        return CosmosRecordingIndex(self.cosmos(layout.RECORDING_INDEX))

    @cached_property
    def verdicts(self) -> CosmosVerdictStore:
        return CosmosVerdictStore(self.cosmos(layout.VERDICTS))

    @cached_property
    def policy_snapshots(self) -> CosmosPolicySnapshotStore:
        return CosmosPolicySnapshotStore(self.cosmos(layout.POLICY_SNAPSHOTS))

    @cached_property
    def token_validator(self) -> TokenValidator:
        return token_validator(self.settings)

    def evidence_store_status(self) -> EvidenceStoreStatus:
        """Whether the recordings container's default WORM policy is locked, read from ARM at most every
        15 minutes (health and the portal show "evidence store not locked" until it is)."""
        with self._lock:
            cached = self.__dict__.get("_worm_lock")
            if cached is not None and time.monotonic() - cached[0] < WORM_LOCK_TTL_SECONDS:
                return cached[1]  # type: ignore[no-any-return]
        status = _evidence_store_status(self.settings)
        with self._lock:
            self.__dict__["_worm_lock"] = (time.monotonic(), status)
        return status

    # --- capabilities ---------------------------------------------------------------------------------------

    @cached_property
    def callrecords(self) -> CallRecordServices:
        return CallRecordServices(self)

    @cached_property
    def chat(self) -> ChatServices:
        return ChatServices(self)

    @cached_property
    def retention(self) -> RetentionServices:
        return RetentionServices(self)

    @cached_property
    def reconciliation(self) -> ReconciliationServices:
        return ReconciliationServices(self)

    @cached_property
    def policy(self) -> PolicyServices:
        return PolicyServices(self)

    @cached_property
    def exports(self) -> ExportServices:
        return ExportServices(self)

    @cached_property
    def lifecycle(self) -> LifecycleDeps:
        retention = self.retention  # retention class and legal holds at seal time
        return LifecycleDeps(
            recordings=self.recording_blobs,
            scratch=self.scratch_blobs,
            store=self.recording_store,
            ledger=self.ledger,
            retention=retention.retention_policy,
            worm=self.worm,
            captures=self.capture_blobs,
            progress=TableProgress(self.progress),
            liveness=self.capture_liveness,
            audit=self.audit,
            holds=retention.seal_holds,
            reconciliation=self.reconciliation_requests,
            pairs=CosmosPairStore(self.cosmos(layout.RECORDING_PAIRS)),
            access_copies=self.queue(self.settings.access_copies_queue),
            pending_access=CosmosPendingAccessCopies(self.cosmos(layout.RECORDINGS)),
            late_objects=lambda recording_id: retention.deleter.remove_late_objects(recording_id, actor="lifecycle"),
        )

    @cached_property
    def live_calls(self) -> LiveCalls:
        """The calls being recorded now, with the recorders' heartbeats (`GET /api/v1/live`)."""
        return LiveCalls(
            CosmosCapturingRecordings(self.cosmos(layout.RECORDINGS)), TableProgress(self.progress), self.access
        )

    @cached_property
    def compliance_api(self) -> ComplianceApi:
        return ComplianceApi(
            index=self.recording_index,
            recordings=self.recording_finder,
            verdicts=self.verdicts,
            recording_blobs=self.recording_blobs,
            ledger=self.ledger,
            access=self.access,
            reporter=self.reconciliation.reporter,
            audit_reader=CosmosAuditReader(self.cosmos(layout.AUDIT)),
            pairs=CosmosPairStore(self.cosmos(layout.RECORDING_PAIRS)),
            trusted_fingerprints=self.trusted_fingerprints,
            chunk_bytes=self.settings.media_chunk_bytes,
            max_full_bytes=self.settings.media_max_full_bytes,
        )
