"""Every app setting Verbatim reads, in one typed model; read at call time through a cached getter.

Names are the app-setting names used in Azure (and in `local.settings.json`), so infra/ can be checked
against this model. Storage follows the Functions convention for connections: either a connection
string under the connection name, or identity-based settings under `<name>__accountName`,
`<name>__blobServiceUri`, `<name>__queueServiceUri`, `<name>__tableServiceUri`, `<name>__clientId`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from verbatim import __version__
from verbatim.contracts.retention import RetentionClassConfig
from verbatim.platform import layout

StorageService = Literal["blob", "queue", "table"]


class StorageConnection(BaseModel):
    """How to reach one storage account: a connection string, or an account reached with an identity."""

    name: str
    connection_string: SecretStr | None = None
    account_name: str | None = None
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def service_uri(self, service: StorageService) -> str:
        explicit = {
            "blob": self.blob_service_uri,
            "queue": self.queue_service_uri,
            "table": self.table_service_uri,
        }[service]
        if explicit:
            return explicit
        if not self.account_name:
            raise ValueError(
                f"storage connection {self.name!r} has neither a connection string nor "
                f"{self.name}__accountName / {self.name}__{service}ServiceUri"
            )
        return f"https://{self.account_name}.{service}.core.windows.net"


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _split(raw: str | None) -> list[str]:
    """A comma-separated app setting as a list (empty entries dropped)."""
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


class StorageSettings(BaseSettings):
    """The two storage accounts, the identity that reaches them, and the recorder's queue and container: the
    settings the Function App and the recorder share (same app-setting names on both)."""

    # Client id of the user-assigned managed identity; used for every identity-based connection
    # that does not name its own `<connection>__clientId`.
    azure_client_id: str | None = Field(default=None, validation_alias=_alias("AZURE_CLIENT_ID"))

    # --- runtime storage account (Functions runtime, durable task hub, queues, the progress table) ---
    runtime_storage: SecretStr | None = Field(default=None, validation_alias=_alias("AzureWebJobsStorage"))
    runtime_storage_account_name: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__accountName")
    )
    runtime_storage_queue_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__queueServiceUri")
    )
    runtime_storage_table_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__tableServiceUri")
    )
    runtime_storage_client_id: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__clientId")
    )

    # --- recordings storage account (evidence, access copies, manifests; WORM in Azure) ---
    recordings_storage: SecretStr | None = Field(default=None, validation_alias=_alias("RECORDINGS_STORAGE"))
    recordings_storage_account_name: str | None = Field(
        default=None, validation_alias=_alias("RECORDINGS_STORAGE__accountName")
    )
    recordings_storage_blob_service_uri: str | None = Field(
        default=None, validation_alias=_alias("RECORDINGS_STORAGE__blobServiceUri")
    )
    recordings_storage_client_id: str | None = Field(
        default=None, validation_alias=_alias("RECORDINGS_STORAGE__clientId")
    )
    recorder_events_queue: str = Field(
        default=layout.RECORDER_EVENTS_QUEUE, validation_alias=_alias("RECORDER_EVENTS_QUEUE")
    )
    recordings_container: str = Field(default=layout.RECORDINGS_BLOBS, validation_alias=_alias("RECORDINGS_CONTAINER"))
    # Where the recorder stages captures (the only container it may write); the Function App seals from it.
    captures_container: str = Field(default=layout.CAPTURES_BLOBS, validation_alias=_alias("CAPTURES_CONTAINER"))

    def _runtime_blob_service_uri(self) -> str | None:
        """The runtime account's blob endpoint: only the Function App uses that service (and has the setting)."""
        return None

    @property
    def runtime_storage_connection(self) -> StorageConnection:
        return StorageConnection(
            name="AzureWebJobsStorage",
            connection_string=self.runtime_storage,
            account_name=self.runtime_storage_account_name,
            blob_service_uri=self._runtime_blob_service_uri(),
            queue_service_uri=self.runtime_storage_queue_service_uri,
            table_service_uri=self.runtime_storage_table_service_uri,
            client_id=self.runtime_storage_client_id or self.azure_client_id,
        )

    @property
    def recordings_storage_connection(self) -> StorageConnection:
        return StorageConnection(
            name="RECORDINGS_STORAGE",
            connection_string=self.recordings_storage,
            account_name=self.recordings_storage_account_name,
            blob_service_uri=self.recordings_storage_blob_service_uri,
            client_id=self.recordings_storage_client_id or self.azure_client_id,
        )


class Settings(StorageSettings):
    """The Function App's and the devstack's configuration (app settings / environment variables)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, populate_by_name=True)

    app_version: str = Field(default=__version__, validation_alias=_alias("VERBATIM_VERSION"))
    environment: str = Field(default="local", validation_alias=_alias("VERBATIM_ENVIRONMENT"))
    log_level: str = Field(default="INFO", validation_alias=_alias("VERBATIM_LOG_LEVEL"))

    # ARM id of the recordings container: the daily check reads whether its WORM policy is locked
    # (verbatim.evidence.worm_status); unset (the devstack): no check.
    recordings_container_resource_id: str | None = Field(
        default=None, validation_alias=_alias("RECORDINGS_CONTAINER_RESOURCE_ID")
    )
    # Azure Resource Manager (other clouds differ).
    arm_endpoint: str = Field(default="https://management.azure.com", validation_alias=_alias("ARM_ENDPOINT"))

    # --- runtime storage account (with StorageSettings): its blob endpoint, and the durable task hub ---
    runtime_storage_blob_service_uri: str | None = Field(
        default=None, validation_alias=_alias("AzureWebJobsStorage__blobServiceUri")
    )
    durable_task_hub_name: str = Field(default="verbatim", validation_alias=_alias("DURABLE_TASK_HUB_NAME"))

    # --- Cosmos DB ---
    cosmos_endpoint: str | None = Field(default=None, validation_alias=_alias("COSMOS_ENDPOINT"))
    # Only for the local emulator; in Azure, Cosmos local auth is off and the managed identity is used.
    cosmos_key: SecretStr | None = Field(default=None, validation_alias=_alias("COSMOS_KEY"))
    cosmos_database: str = Field(default="verbatim", validation_alias=_alias("COSMOS_DATABASE"))
    # A CA bundle to verify the emulator's generated TLS certificate.
    cosmos_ca_cert: str | None = Field(default=None, validation_alias=_alias("COSMOS_CA_CERT"))

    # --- Microsoft Graph (the simulator locally) ---
    graph_base_url: str = Field(default="https://graph.microsoft.com", validation_alias=_alias("GRAPH_BASE_URL"))
    graph_authority_host: str = Field(
        default="https://login.microsoftonline.com", validation_alias=_alias("GRAPH_AUTHORITY_HOST")
    )
    graph_tenant_id: str | None = Field(default=None, validation_alias=_alias("GRAPH_TENANT_ID"))
    graph_client_id: str | None = Field(default=None, validation_alias=_alias("GRAPH_CLIENT_ID"))
    graph_client_secret: SecretStr | None = Field(default=None, validation_alias=_alias("GRAPH_CLIENT_SECRET"))

    # --- queues and containers ---
    callrecord_notifications_queue: str = Field(
        default=layout.CALLRECORD_NOTIFICATIONS_QUEUE, validation_alias=_alias("CALLRECORD_NOTIFICATIONS_QUEUE")
    )

    # --- call-record ingestion (issue 5) ---
    # Graph client: token scope, and a CA bundle when Graph (the simulator) speaks TLS with a local CA.
    graph_scope: str = Field(default="https://graph.microsoft.com/.default", validation_alias=_alias("GRAPH_SCOPE"))
    graph_ca_cert: str | None = Field(default=None, validation_alias=_alias("GRAPH_CA_CERT"))
    # Tenants whose call records are ingested (comma-separated); GRAPH_TENANT_ID when empty.
    callrecord_tenant_ids_raw: str | None = Field(default=None, validation_alias=_alias("CALLRECORD_TENANT_IDS"))
    # The secret Graph echoes in every notification (a Key Vault reference in Azure), and the public
    # webhook URLs subscriptions point at (with `?code=<function key>` in Azure).
    graph_client_state: SecretStr | None = Field(default=None, validation_alias=_alias("GRAPH_CLIENT_STATE"))
    # During a rotation, notifications of subscriptions created with the previous secret are still accepted.
    graph_client_state_previous: SecretStr | None = Field(
        default=None, validation_alias=_alias("GRAPH_CLIENT_STATE_PREVIOUS")
    )
    graph_notification_url: str | None = Field(default=None, validation_alias=_alias("GRAPH_NOTIFICATION_URL"))
    graph_lifecycle_url: str | None = Field(default=None, validation_alias=_alias("GRAPH_LIFECYCLE_URL"))
    graph_webhook_max_bytes: int = Field(
        default=1024 * 1024, ge=1024, validation_alias=_alias("GRAPH_WEBHOOK_MAX_BYTES")
    )
    # callRecords subscriptions live at most 4,230 minutes; renew when less than this is left.
    callrecord_subscription_lifetime_minutes: int = Field(
        default=4200, ge=45, le=4230, validation_alias=_alias("CALLRECORD_SUBSCRIPTION_LIFETIME_MINUTES")
    )
    callrecord_subscription_renew_before_minutes: int = Field(
        default=1440, ge=10, validation_alias=_alias("CALLRECORD_SUBSCRIPTION_RENEW_BEFORE_MINUTES")
    )
    # A 404 this soon after the call ended means "not published yet": retry after the delay.
    callrecord_not_yet_grace_minutes: int = Field(
        default=150, validation_alias=_alias("CALLRECORD_NOT_YET_GRACE_MINUTES")
    )
    callrecord_not_yet_retry_seconds: int = Field(
        default=600, ge=1, le=7 * 24 * 3600, validation_alias=_alias("CALLRECORD_NOT_YET_RETRY_SECONDS")
    )
    # Back-fill lists records (filtered on call start) from the watermark minus this overlap: records arrive
    # up to 150 min after a call ends, and a long call starts well before it ends.
    callrecord_backfill_overlap_minutes: int = Field(
        default=720, ge=0, validation_alias=_alias("CALLRECORD_BACKFILL_OVERLAP_MINUTES")
    )
    callrecord_backfill_initial_days: int = Field(
        default=2, ge=1, le=30, validation_alias=_alias("CALLRECORD_BACKFILL_INITIAL_DAYS")
    )
    reconciliation_requests_queue: str = Field(
        default=layout.RECONCILIATION_REQUESTS_QUEUE, validation_alias=_alias("RECONCILIATION_REQUESTS_QUEUE")
    )
    graph_lifecycle_queue: str = Field(
        default=layout.GRAPH_LIFECYCLE_QUEUE, validation_alias=_alias("GRAPH_LIFECYCLE_QUEUE")
    )
    access_copies_queue: str = Field(default=layout.ACCESS_COPIES_QUEUE, validation_alias=_alias("ACCESS_COPIES_QUEUE"))
    # Access copies made at once by one Function App instance (transcoding is CPU-bound: more than the instance's
    # cores only slows the evidence path sharing them). In Azure (Flex Consumption) the queue trigger scales out
    # in instances of its own.
    access_copy_concurrency: int = Field(default=1, ge=1, le=32, validation_alias=_alias("ACCESS_COPY_CONCURRENCY"))
    # A part whose access copies are still not sealed this long after its evidence is asked for again (the sweep).
    access_copy_sweep_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60, validation_alias=_alias("ACCESS_COPY_SWEEP_MINUTES")
    )
    # How long an export that carries access copies waits for copies still being made before it fails, saying so.
    export_access_copy_wait_minutes: int = Field(
        default=30, ge=0, le=24 * 60, validation_alias=_alias("EXPORT_ACCESS_COPY_WAIT_MINUTES")
    )
    export_access_copy_poll_seconds: int = Field(
        default=30, ge=1, le=3600, validation_alias=_alias("EXPORT_ACCESS_COPY_POLL_SECONDS")
    )
    # PSTN / Direct Routing reports: days pulled by the daily timer, and emergency numbers beyond 112/911/999.
    pstn_report_days: int = Field(default=2, ge=1, le=90, validation_alias=_alias("PSTN_REPORT_DAYS"))
    pstn_emergency_numbers_raw: str | None = Field(default=None, validation_alias=_alias("PSTN_EMERGENCY_NUMBERS"))
    # Bearer tokens of our HTTP API (Entra ID): the tenant's OpenID configuration and our API's audience(s).
    auth_openid_config_url: str | None = Field(default=None, validation_alias=_alias("AUTH_OPENID_CONFIG_URL"))
    auth_audience_raw: str | None = Field(default=None, validation_alias=_alias("AUTH_AUDIENCE"))
    auth_ca_cert: str | None = Field(default=None, validation_alias=_alias("AUTH_CA_CERT"))
    auth_leeway_seconds: int = Field(default=60, ge=0, le=300, validation_alias=_alias("AUTH_LEEWAY_SECONDS"))
    # The portal's sign-in (MSAL.js): its single-page-app registration, the Entra authority (https://<host>/<tenant>)
    # and the API scope it asks for. Without a client id the portal offers no sign-in.
    portal_client_id: str | None = Field(default=None, validation_alias=_alias("PORTAL_CLIENT_ID"))
    portal_authority: str | None = Field(default=None, validation_alias=_alias("PORTAL_AUTHORITY"))
    portal_api_scope: str | None = Field(default=None, validation_alias=_alias("PORTAL_API_SCOPE"))

    # --- chat capture (issue 20; docs/chat.md) ---
    chat_capture_enabled: bool = Field(default=False, validation_alias=_alias("CHAT_CAPTURE_ENABLED"))
    # Tenants whose chats are captured (comma-separated); the call-record tenants when empty.
    chat_tenant_ids_raw: str | None = Field(default=None, validation_alias=_alias("CHAT_TENANT_IDS"))
    # Public URLs of the chat webhooks (with `?code=<function key>` in Azure); the subscription's lifetime.
    chat_notification_url: str | None = Field(default=None, validation_alias=_alias("CHAT_NOTIFICATION_URL"))
    chat_lifecycle_url: str | None = Field(default=None, validation_alias=_alias("CHAT_LIFECYCLE_URL"))
    chat_subscription_lifetime_minutes: int = Field(
        default=4200, ge=10, le=4320, validation_alias=_alias("CHAT_SUBSCRIPTION_LIFETIME_MINUTES")
    )
    chat_subscription_renew_before_minutes: int = Field(
        default=720, ge=5, validation_alias=_alias("CHAT_SUBSCRIPTION_RENEW_BEFORE_MINUTES")
    )
    # The encryption certificate Graph encrypts resource data for: PEM of the private key and its certificate
    # (a Key Vault reference in Azure; a file locally), and the previous one during a rotation.
    chat_encryption_pem: SecretStr | None = Field(default=None, validation_alias=_alias("CHAT_ENCRYPTION_PEM"))
    chat_encryption_pem_file: str | None = Field(default=None, validation_alias=_alias("CHAT_ENCRYPTION_PEM_FILE"))
    chat_encryption_pem_previous: SecretStr | None = Field(
        default=None, validation_alias=_alias("CHAT_ENCRYPTION_PEM_PREVIOUS")
    )
    # Where the Microsoft identity platform publishes the keys that sign validation tokens, and a CA bundle when
    # that is a local TLS server.
    chat_validation_jwks_url: str = Field(
        default="https://login.microsoftonline.com/common/discovery/v2.0/keys",
        validation_alias=_alias("CHAT_VALIDATION_JWKS_URL"),
    )
    # The Teams APIs' licensing model query parameter (A or B). Not metered since August 2025; empty by default.
    chat_payment_model: Literal["A", "B"] | None = Field(default=None, validation_alias=_alias("CHAT_PAYMENT_MODEL"))
    # A chat-day is sealed this long after it ends (late notifications, retries, the daily reconciliation).
    chat_seal_grace_minutes: int = Field(
        default=180, ge=0, le=7 * 1440, validation_alias=_alias("CHAT_SEAL_GRACE_MINUTES")
    )
    chat_backfill_overlap_minutes: int = Field(
        default=120, ge=0, validation_alias=_alias("CHAT_BACKFILL_OVERLAP_MINUTES")
    )
    chat_backfill_initial_days: int = Field(
        default=1, ge=1, le=30, validation_alias=_alias("CHAT_BACKFILL_INITIAL_DAYS")
    )
    chat_membership_ttl_minutes: int = Field(default=60, ge=0, validation_alias=_alias("CHAT_MEMBERSHIP_TTL_MINUTES"))

    @property
    def chat_tenant_ids(self) -> list[str]:
        return _split(self.chat_tenant_ids_raw) or self.callrecord_tenant_ids

    # The hosts whose recorder control routes the lifecycle may ask "is this capture alive?" (the recorders'
    # service FQDN in Azure; 127.0.0.1 on the local stack). Empty: it asks nobody and the heartbeat decides.
    recorder_control_hosts_raw: str | None = Field(default=None, validation_alias=_alias("RECORDER_CONTROL_HOSTS"))
    # The CA of the recorders' TLS certificate when it is not a public one (the local stack's own CA).
    recorder_control_ca_cert: str | None = Field(default=None, validation_alias=_alias("RECORDER_CONTROL_CA_CERT"))

    @property
    def recorder_control_hosts(self) -> frozenset[str]:
        return frozenset(host.lower() for host in _split(self.recorder_control_hosts_raw))

    # The tenants whose tokens the API accepts (comma-separated; GRAPH_TENANT_ID when empty). Required when the
    # OpenID configuration is multi-tenant (an issuer with `{tenantid}`): Entra signs every tenant's tokens with
    # the same keys, so the signature alone says nothing about whose token it is.
    auth_tenant_ids_raw: str | None = Field(default=None, validation_alias=_alias("AUTH_TENANT_IDS"))
    # How many proxies of our own append to X-Forwarded-For in front of the app (Azure's front end: 1). 0: the
    # header is ignored (a client can write anything into it).
    trusted_forwarded_hops: int = Field(default=0, ge=0, le=5, validation_alias=_alias("TRUSTED_FORWARDED_HOPS"))

    @property
    def callrecord_tenant_ids(self) -> list[str]:
        return _split(self.callrecord_tenant_ids_raw) or ([self.graph_tenant_id] if self.graph_tenant_id else [])

    @property
    def pstn_emergency_numbers(self) -> list[str]:
        return _split(self.pstn_emergency_numbers_raw)

    @property
    def auth_audiences(self) -> list[str]:
        return _split(self.auth_audience_raw)

    @property
    def auth_tenant_ids(self) -> list[str]:
        return _split(self.auth_tenant_ids_raw) or ([self.graph_tenant_id] if self.graph_tenant_id else [])

    # --- recording lifecycle, ledger, compliance API (issue 6) ---
    # The ledger chain (Cosmos partition) this deployment appends to.
    ledger_chain: str = Field(default="main", validation_alias=_alias("LEDGER_CHAIN"))
    # A signed checkpoint every N entries (and on demand, and from the checkpoint timer).
    ledger_checkpoint_interval: int = Field(default=100, ge=1, validation_alias=_alias("LEDGER_CHECKPOINT_INTERVAL"))
    # Checkpoint signing key: a Key Vault key identifier (https://<vault>.vault.azure.net/keys/<name>/<version>)
    # in Azure, or a local PEM private key file (Ed25519 or ECDSA P-256; the devstack generates it).
    ledger_signing_key_vault_key_id: str | None = Field(
        default=None, validation_alias=_alias("LEDGER_SIGNING_KEY_VAULT_KEY_ID")
    )
    ledger_signing_key_file: str | None = Field(default=None, validation_alias=_alias("LEDGER_SIGNING_KEY_FILE"))
    # SHA-256 fingerprints (hex, of the DER public key) of earlier signing keys still trusted after a rotation.
    ledger_trusted_key_fingerprints: list[str] = Field(
        default_factory=list, validation_alias=_alias("LEDGER_TRUSTED_KEY_FINGERPRINTS")
    )
    # Ledger v2 (docs/ledger-v2.md): the log's origin line (its name for verifiers and witnesses; it never
    # changes for the life of the log), earlier log keys still trusted (C2SP vkeys), and the RFC 3161
    # time-stamping authority for anchored checkpoints (URL and its root certificates, PEM text or a file).
    ledger_origin: str = Field(default="verbatim.local/verbatim/ledger", validation_alias=_alias("LEDGER_ORIGIN"))
    ledger_trusted_vkeys: list[str] = Field(default_factory=list, validation_alias=_alias("LEDGER_TRUSTED_VKEYS"))
    # Witnesses (C2SP tlog-witness) asked to cosign each checkpoint: "<cosignature/v1 vkey> <https URL prefix>".
    ledger_witnesses: list[str] = Field(default_factory=list, validation_alias=_alias("LEDGER_WITNESSES"))

    @field_validator("ledger_trusted_key_fingerprints", "ledger_trusted_vkeys", "ledger_witnesses", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        """A list given as text is JSON, as pydantic-settings reads it from the environment (so validating a
        mapping of app settings, as the devstack does, reads them the same way)."""
        return json.loads(value) if isinstance(value, str) else value

    ledger_tsa_url: str | None = Field(default=None, validation_alias=_alias("LEDGER_TSA_URL"))
    ledger_tsa_ca_certs: str | None = Field(default=None, validation_alias=_alias("LEDGER_TSA_CA_CERTS"))
    # The log's and the anchor store's blob containers on the recordings account.
    ledger_container: str = Field(default=layout.LEDGER_BLOBS, validation_alias=_alias("LEDGER_CONTAINER"))
    ledger_anchor_container: str = Field(
        default=layout.LEDGER_ANCHORS_BLOBS, validation_alias=_alias("LEDGER_ANCHOR_CONTAINER")
    )
    # True only when the recordings account is Azurite: it answers 501 to immutability policies and legal
    # holds, and only then is that tolerated (Azure enforces WORM; Azurite cannot).
    recordings_storage_is_emulator: bool = Field(
        default=False, validation_alias=_alias("RECORDINGS_STORAGE_IS_EMULATOR")
    )
    # Retention applied at seal time until the retention classes of issue 8 choose one per recording.
    seal_default_retention_class: str = Field(
        default="default", validation_alias=_alias("SEAL_DEFAULT_RETENTION_CLASS")
    )
    seal_default_retention_days: int = Field(default=1827, ge=1, validation_alias=_alias("SEAL_DEFAULT_RETENTION_DAYS"))
    # Reconciliation: what may go unrecorded at the edges of each stretch of a policy user's presence and still
    # count as recorded — the recorder joining after the user joined (it answers within the platform's 5 s
    # window; the simulator and recorder here take well under a second), and teardown at the user's leave
    # (never after an interrupted recording). Anything else unrecorded makes the verdict partial.
    reconciliation_join_tolerance_seconds: float = Field(
        default=3.0, ge=0, le=5, validation_alias=_alias("RECONCILIATION_JOIN_TOLERANCE_SECONDS")
    )
    reconciliation_end_tolerance_seconds: float = Field(
        default=1.0, ge=0, le=2, validation_alias=_alias("RECONCILIATION_END_TOLERANCE_SECONDS")
    )
    # How long after a call ended reconciliation waits for a recorder's report on a user before it judges the call
    # unrecorded (`missing`, `no_invitation`, an alert); until then the verdict is `pending`
    # (`awaiting_recorder_report`). A report lags behind the call when its queue message waits: the queue
    # trigger's retries (5 dequeues, 10 s apart: host.json), and a Functions host that dies holding it hides it for
    # the listener's 10 minutes (azure-webjobs-sdk#1040) plus the host's restart. 15 minutes covers one such
    # redelivery with a margin; 0 judges at once. At most an hour: a real miss is alerted this much later.
    reconciliation_recorder_report_grace_seconds: int = Field(
        default=900, ge=0, le=3600, validation_alias=_alias("RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS")
    )
    # Signed daily completeness reports (recordings storage account).
    reports_container: str = Field(default=layout.REPORTS_BLOBS, validation_alias=_alias("REPORTS_CONTAINER"))
    # Exports: how long a package is kept after it was made (unless the legal hold it was made from is active).
    export_retention_days: int = Field(default=30, ge=1, le=3650, validation_alias=_alias("EXPORT_RETENTION_DAYS"))
    # How long a user-delegation SAS link of a package stays valid (POST /exports/{id}/link; Azure only).
    export_link_minutes: int = Field(default=15, ge=1, le=1440, validation_alias=_alias("EXPORT_LINK_MINUTES"))
    # Where a package splits into parts (docs/exports.md, very large exports): at most this many blocks (bounded
    # by the sealed media sizes; Azure commits at most 50,000 to a block blob) and items per part.
    export_part_blocks: int = Field(default=50_000, ge=2, le=50_000, validation_alias=_alias("EXPORT_PART_BLOCKS"))
    export_part_items: int = Field(default=50_000, ge=1, le=50_000, validation_alias=_alias("EXPORT_PART_ITEMS"))
    # Compliance API media: the most one Range response carries (the Functions HTTP response is buffered), and
    # the largest object served whole to a request without a Range header.
    media_chunk_bytes: int = Field(
        default=1024 * 1024, ge=4 * 1024, le=16 * 1024 * 1024, validation_alias=_alias("MEDIA_CHUNK_BYTES")
    )
    media_max_full_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024 * 1024, validation_alias=_alias("MEDIA_MAX_FULL_BYTES")
    )

    # --- retention and legal holds (issue 8) ---
    # Retention classes as JSON: [{"name": "mifid2", "days": 1827, "legal_basis": "..."}, ...]. The class named
    # SEAL_DEFAULT_RETENTION_CLASS always exists (SEAL_DEFAULT_RETENTION_DAYS unless listed here). Classes are
    # stored in Cosmos and only ever lengthened: a shorter value here is refused and the longer one stays.
    retention_classes: list[RetentionClassConfig] = Field(
        default_factory=list, validation_alias=_alias("RETENTION_CLASSES")
    )
    # Legal basis text of the default class when RETENTION_CLASSES does not list it.
    retention_default_legal_basis: str = Field(
        default="MiFID II Art 16(7) and Delegated Regulation (EU) 2017/565 Art 76(8): kept for five years",
        validation_alias=_alias("RETENTION_DEFAULT_LEGAL_BASIS"),
    )
    # Entra group id -> retention class (JSON object), for users whose policy is assigned through that group.
    retention_group_classes: dict[str, str] = Field(
        default_factory=dict, validation_alias=_alias("RETENTION_GROUP_CLASSES")
    )
    # The retention sweep: NCRONTAB schedule (daily at 02:00 UTC by default), deletions per batch (the lease is
    # renewed between batches), recordings evaluated per query page, and an upper bound per run.
    retention_sweep_schedule: str = Field(default="0 0 2 * * *", validation_alias=_alias("RETENTION_SWEEP_SCHEDULE"))
    retention_sweep_batch_size: int = Field(
        default=50, ge=1, le=1000, validation_alias=_alias("RETENTION_SWEEP_BATCH_SIZE")
    )
    retention_sweep_page_size: int = Field(
        default=5000, ge=10, le=20_000, validation_alias=_alias("RETENTION_SWEEP_PAGE_SIZE")
    )
    retention_sweep_max_deletions: int = Field(
        default=20_000, ge=1, validation_alias=_alias("RETENTION_SWEEP_MAX_DELETIONS")
    )
    retention_sweep_lease_seconds: int = Field(
        default=600, ge=30, le=24 * 3600, validation_alias=_alias("RETENTION_SWEEP_LEASE_SECONDS")
    )

    # --- policy automation (issue 9) ---
    # The simulator's base URL for `verbatim policy plan/apply --target sim` (devstack only).
    policy_simulator_url: str | None = Field(default=None, validation_alias=_alias("POLICY_SIMULATOR_URL"))
    # Entra group ids whose (transitive) members must be recorded, besides those of the published desired
    # state; comma-separated.
    policy_must_record_groups: str = Field(default="", validation_alias=_alias("POLICY_MUST_RECORD_GROUPS"))

    def _runtime_blob_service_uri(self) -> str | None:
        return self.runtime_storage_blob_service_uri


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests, and the devstack after it changes the environment)."""
    get_settings.cache_clear()
    return get_settings()


def setting_names(model: type[BaseSettings]) -> set[str]:
    """Every app-setting name a settings model reads: the aliases of its fields."""
    names: set[str] = set()
    for field in model.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def app_setting_names() -> set[str]:
    """Every app-setting name the Function App reads (infra/ is cross-checked against this)."""
    return setting_names(Settings)
