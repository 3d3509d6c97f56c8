"""Every setting the recorder bot reads, in one typed model (environment variables / VM app settings).

Names are the ones the VM scale set's install script writes (infra/ is cross-checked against
`app_setting_names()`); storage and Graph settings share their names with `verbatim.platform.settings` so one set of
values serves both. Command-line options of `python -m recorder_vm` override the listen addresses.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from verbatim import __version__
from verbatim.platform.settings import StorageSettings, setting_names

MediaPlatformName = Literal["sim", "windows"]
CaptureModality = Literal["audio", "video", "videoBasedScreenSharing"]

SKYPE_OPENID_CONFIGURATION = "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration"
PLATFORM_ISSUERS = "https://api.botframework.com,https://graph.microsoft.com"
SCHEDULED_EVENTS_URL = "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01"


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class RecorderSettings(StorageSettings):
    """The recorder's configuration; defaults suit the local devstack."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, populate_by_name=True)

    version: str = Field(default=__version__, validation_alias=_alias("VERBATIM_VERSION"))
    log_level: str = Field(default="INFO", validation_alias=_alias("VERBATIM_LOG_LEVEL"))
    # On Windows, records at this level and above also go to the Application log for the Azure Monitor Agent
    # (recorder_vm.event_log); empty: not at all.
    event_log_level: str = Field(default="WARNING", validation_alias=_alias("RECORDER_EVENT_LOG_LEVEL"))
    instance_id: str = Field(default_factory=socket.gethostname, validation_alias=_alias("RECORDER_INSTANCE_ID"))
    state_dir: Path = Field(default=Path(".devstack/recorder"), validation_alias=_alias("RECORDER_STATE_DIR"))

    # --- signalling: where we listen, and the per-instance callback URL the answer carries ---
    listen_host: str = Field(default="127.0.0.1", validation_alias=_alias("RECORDER_LISTEN_HOST"))
    listen_port: int = Field(default=9441, validation_alias=_alias("RECORDER_LISTEN_PORT"))
    # A plain-HTTP listener on 127.0.0.1 only, for the admin routes and health checks of local scripts
    # (drain.ps1, the Windows service) when the public listeners speak TLS with the public name's certificate.
    admin_port: int | None = Field(default=None, validation_alias=_alias("RECORDER_ADMIN_PORT"))
    # A second port serving the same routes, for deployments that keep the load-balanced webhook and the
    # per-instance callbacks apart (Azure: signalling 9442 behind the LB, notifications 9441 by NAT).
    callback_listen_port: int | None = Field(default=None, validation_alias=_alias("RECORDER_CALLBACK_LISTEN_PORT"))
    # TLS for the listener (Azure: the certificate the Key Vault extension put on the VM, exported as PEM).
    tls_cert_file: str | None = Field(default=None, validation_alias=_alias("RECORDER_TLS_CERT_FILE"))
    tls_key_file: str | None = Field(default=None, validation_alias=_alias("RECORDER_TLS_KEY_FILE"))
    # Public base URL of THIS instance (Azure: https://<service fqdn>:<instance NAT port>); when unset it is
    # built from the service FQDN and the instance's public callback port, or the listen address locally.
    callback_base_url: str | None = Field(default=None, validation_alias=_alias("RECORDER_CALLBACK_BASE_URL"))
    service_fqdn: str | None = Field(default=None, validation_alias=_alias("RECORDER_SERVICE_FQDN"))
    callback_public_port: int | None = Field(default=None, validation_alias=_alias("RECORDER_CALLBACK_PUBLIC_PORT"))
    max_notification_bytes: int = Field(
        default=256 * 1024, ge=4096, validation_alias=_alias("RECORDER_MAX_NOTIFICATION_BYTES")
    )

    # --- platform (Teams → bot) JWT ---
    platform_openid_config_url: str = Field(
        default=SKYPE_OPENID_CONFIGURATION, validation_alias=_alias("RECORDER_PLATFORM_OPENID_CONFIG_URL")
    )
    platform_issuers_raw: str = Field(default=PLATFORM_ISSUERS, validation_alias=_alias("RECORDER_PLATFORM_ISSUERS"))
    # A CA bundle for the platform's OpenID endpoint when it speaks TLS with a local CA (the simulator);
    # GRAPH_CA_CERT is used when this is unset.
    platform_ca_cert: str | None = Field(default=None, validation_alias=_alias("RECORDER_PLATFORM_CA_CERT"))
    platform_keys_refresh_seconds: float = Field(
        default=7200.0, ge=60, validation_alias=_alias("RECORDER_PLATFORM_KEYS_REFRESH_SECONDS")
    )
    platform_leeway_seconds: int = Field(
        default=60, ge=0, le=600, validation_alias=_alias("RECORDER_PLATFORM_LEEWAY_SECONDS")
    )

    # --- the lifecycle's question "is this capture alive?" (GET /api/captures/{recording id}): a bearer token
    # of the tenant for our API's audience, holding the Recorder.Lifecycle app role. Unset: the route answers 503.
    control_openid_config_url: str | None = Field(default=None, validation_alias=_alias("AUTH_OPENID_CONFIG_URL"))
    control_audience: str | None = Field(default=None, validation_alias=_alias("AUTH_AUDIENCE"))
    control_ca_cert: str | None = Field(default=None, validation_alias=_alias("AUTH_CA_CERT"))

    # --- Graph (bot → Graph): the bot's app registration; its app id is the platform token's audience ---
    graph_base_url: str = Field(default="https://graph.microsoft.com", validation_alias=_alias("GRAPH_BASE_URL"))
    graph_authority_host: str = Field(
        default="https://login.microsoftonline.com", validation_alias=_alias("GRAPH_AUTHORITY_HOST")
    )
    graph_scope: str = Field(default="https://graph.microsoft.com/.default", validation_alias=_alias("GRAPH_SCOPE"))
    graph_ca_cert: str | None = Field(default=None, validation_alias=_alias("GRAPH_CA_CERT"))
    graph_tenant_id: str | None = Field(default=None, validation_alias=_alias("GRAPH_TENANT_ID"))
    # More tenants whose calls this recorder answers (comma-separated), besides GRAPH_TENANT_ID. The platform
    # signs every tenant's calling notifications with the same keys: a token whose `tid` is none of these
    # tenants is refused (403).
    tenant_ids_raw: str = Field(default="", validation_alias=_alias("RECORDER_TENANT_IDS"))
    bot_app_id: str | None = Field(default=None, validation_alias=_alias("GRAPH_CLIENT_ID"))
    graph_client_secret: SecretStr | None = Field(default=None, validation_alias=_alias("GRAPH_CLIENT_SECRET"))

    # --- calls ---
    max_concurrent_calls: int = Field(default=100, ge=1, validation_alias=_alias("RECORDER_MAX_CONCURRENT_CALLS"))
    answer_budget_seconds: float = Field(
        default=4.0, gt=0, le=5.0, validation_alias=_alias("RECORDER_ANSWER_BUDGET_SECONDS")
    )
    keepalive_seconds: float = Field(
        default=900.0, gt=0, le=2700, validation_alias=_alias("RECORDER_KEEPALIVE_SECONDS")
    )
    delta_roster: bool = Field(default=False, validation_alias=_alias("RECORDER_DELTA_ROSTER"))
    unmixed_audio: bool = Field(default=False, validation_alias=_alias("RECORDER_UNMIXED_AUDIO"))
    # Receive-only H.264 video sockets per call (cameras; the platform allows at most 10 main-video streams per
    # media session) and the screen-sharing (VBSS) socket. 0 / false: audio only (docs/video.md).
    video_sockets: int = Field(default=0, ge=0, le=10, validation_alias=_alias("RECORDER_VIDEO_SOCKETS"))
    screen_share: bool = Field(default=False, validation_alias=_alias("RECORDER_SCREEN_SHARE"))
    video_queue_units: int = Field(default=2000, ge=10, validation_alias=_alias("RECORDER_VIDEO_QUEUE_UNITS"))
    # The capture policy: each recording policy's name (an invitation's `policyIdentifier`) → the modalities to keep
    # of its calls (audio, video, videoBasedScreenSharing), as JSON; `verbatim policy capture-setting FILE` writes it
    # from the desired state. A policy not named keeps everything the sockets above receive.
    capture_policies: dict[str, list[CaptureModality]] = Field(
        default_factory=dict, validation_alias=_alias("RECORDER_CAPTURE_POLICIES")
    )
    # How long to wait for the terminated notification after the media stream ended, before stopping anyway.
    media_end_grace_seconds: float = Field(
        default=10.0, ge=0, validation_alias=_alias("RECORDER_MEDIA_END_GRACE_SECONDS")
    )

    # --- media platform ---
    media_platform: MediaPlatformName = Field(default="sim", validation_alias=_alias("RECORDER_MEDIA_PLATFORM"))
    media_host: str = Field(default="127.0.0.1", validation_alias=_alias("RECORDER_MEDIA_HOST"))
    media_port: int = Field(default=9443, validation_alias=_alias("RECORDER_MEDIA_PORT"))  # Azure: 8445 internal
    media_public_port: int | None = Field(default=None, validation_alias=_alias("RECORDER_MEDIA_PUBLIC_PORT"))
    media_public_ip: str | None = Field(default=None, validation_alias=_alias("RECORDER_MEDIA_PUBLIC_IP"))
    certificate_thumbprint: str | None = Field(default=None, validation_alias=_alias("RECORDER_CERTIFICATE_THUMBPRINT"))
    media_library_dir: str | None = Field(default=None, validation_alias=_alias("RECORDER_MEDIA_LIBRARY_DIR"))

    # --- capture ---
    block_seconds: float = Field(default=1.5, gt=0.1, le=2.0, validation_alias=_alias("RECORDER_BLOCK_SECONDS"))
    frame_queue_frames: int = Field(default=3000, ge=50, validation_alias=_alias("RECORDER_FRAME_QUEUE_FRAMES"))
    spill_dir: Path | None = Field(default=None, validation_alias=_alias("RECORDER_SPILL_DIR"))
    spill_max_bytes: int = Field(default=2 * 1024**3, ge=0, validation_alias=_alias("RECORDER_SPILL_MAX_BYTES"))
    storage_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias=_alias("RECORDER_STORAGE_TIMEOUT_SECONDS")
    )
    # How long stopping a capture keeps retrying spilled blocks before it reports a storage failure.
    stop_drain_seconds: float = Field(default=30.0, ge=0, validation_alias=_alias("RECORDER_STOP_DRAIN_SECONDS"))
    # For how long after a drain begins invitations are still answered: the time the load balancer takes to see
    # `/health` fail (its probe interval times its threshold, plus one interval). An invitation it still sends
    # meanwhile would otherwise be declined `busy` — and a policy user with one invitation blocked — although
    # another instance is healthy. 0 (local): the simulator's balancer probes before every invitation.
    drain_accept_seconds: float = Field(
        default=0.0, ge=0, le=120, validation_alias=_alias("RECORDER_DRAIN_ACCEPT_SECONDS")
    )
    heartbeat_seconds: float = Field(default=5.0, gt=0, validation_alias=_alias("RECORDER_HEARTBEAT_SECONDS"))

    # --- operations ---
    scheduled_events_enabled: bool = Field(default=False, validation_alias=_alias("RECORDER_SCHEDULED_EVENTS_ENABLED"))
    scheduled_events_url: str = Field(
        default=SCHEDULED_EVENTS_URL, validation_alias=_alias("RECORDER_SCHEDULED_EVENTS_URL")
    )
    scheduled_events_poll_seconds: float = Field(
        default=10.0, gt=0, validation_alias=_alias("RECORDER_SCHEDULED_EVENTS_POLL_SECONDS")
    )
    # This VM's ARM resource id (scale-set instance): when set, the recorder protects itself from scale-in
    # while it holds calls (managed identity; ARM_ENDPOINT only changes for sovereign clouds and tests).
    vm_resource_id: str | None = Field(default=None, validation_alias=_alias("RECORDER_VM_RESOURCE_ID"))
    arm_endpoint: str = Field(default="https://management.azure.com", validation_alias=_alias("RECORDER_ARM_ENDPOINT"))
    scale_in_release_seconds: float = Field(
        default=120.0, ge=0, validation_alias=_alias("RECORDER_SCALE_IN_RELEASE_SECONDS")
    )
    shutdown_grace_seconds: float = Field(
        default=60.0, ge=0, validation_alias=_alias("RECORDER_SHUTDOWN_GRACE_SECONDS")
    )
    # Calls per instance as an Azure Monitor custom metric (recorder_vm.metrics), for autoscale: the regional
    # ingestion endpoint (https://<region>.monitoring.azure.com) and the scale set's resource id. Unset: not published.
    metrics_endpoint: str | None = Field(default=None, validation_alias=_alias("RECORDER_METRICS_ENDPOINT"))
    metrics_resource_id: str | None = Field(default=None, validation_alias=_alias("RECORDER_METRICS_RESOURCE_ID"))

    # --- storage: StorageSettings (the same app-setting names as the Function App's) ---

    @model_validator(mode="after")
    def _windows_needs_instance_settings(self) -> RecorderSettings:
        if self.media_platform == "windows":
            missing = [
                name
                for name, value in (
                    ("RECORDER_CERTIFICATE_THUMBPRINT", self.certificate_thumbprint),
                    ("RECORDER_SERVICE_FQDN", self.service_fqdn),
                    ("RECORDER_MEDIA_PUBLIC_PORT", self.media_public_port),
                    ("RECORDER_MEDIA_PUBLIC_IP", self.media_public_ip),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"the windows media platform needs {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _capture_keeps_the_audio(self) -> RecorderSettings:
        for name, modalities in self.capture_policies.items():
            if "audio" not in modalities:
                raise ValueError(f"RECORDER_CAPTURE_POLICIES: policy {name!r} must capture audio")
        return self

    def capture_for(self, policy_identifier: str | None) -> list[str] | None:
        """The modalities the capture policy keeps of a call invited under this policy (matched without regard
        to case, as Teams policy names are), or None when it names no such policy."""
        if not policy_identifier:
            return None
        wanted = policy_identifier.casefold()
        for name, modalities in self.capture_policies.items():
            if name.casefold() == wanted:
                return list(modalities)
        return None

    @property
    def platform_issuers(self) -> list[str]:
        return [part.strip() for part in self.platform_issuers_raw.split(",") if part.strip()]

    @property
    def tenant_ids(self) -> frozenset[str]:
        """The tenants whose calls this recorder answers, lower-cased; empty: none (every call is refused)."""
        named = [self.graph_tenant_id or "", *self.tenant_ids_raw.split(",")]
        return frozenset(tenant.strip().lower() for tenant in named if tenant.strip())

    @property
    def graph_configured(self) -> bool:
        return bool(self.bot_app_id and self.graph_client_secret is not None)

    @property
    def public_base_url(self) -> str:
        """The base of this instance's callback URL, as Teams must reach it."""
        if self.callback_base_url:
            return self.callback_base_url.rstrip("/")
        if self.service_fqdn and self.callback_public_port:
            return f"https://{self.service_fqdn}:{self.callback_public_port}"
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{self.listen_host}:{self.callback_listen_port or self.listen_port}"

    @property
    def callback_uri(self) -> str:
        """The per-instance notification route (the answer's callbackUri)."""
        return f"{self.public_base_url}/api/calling/notification/{self.instance_id}"

    @property
    def spill_path(self) -> Path:
        return self.spill_dir or self.state_dir / "spill"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox"


@lru_cache(maxsize=1)
def get_settings() -> RecorderSettings:
    return RecorderSettings()


def reload_settings() -> RecorderSettings:
    get_settings.cache_clear()
    return get_settings()


def app_setting_names() -> set[str]:
    """Every app-setting name the recorder reads (the scale set's settings are cross-checked against this)."""
    return setting_names(RecorderSettings)
