"""Call-record contracts: the notification message on `callrecord-notifications`, the normalised call
record (stored in Cosmos `calls` and served by the read API), and `callrecord.stored`, the hand-off to
reconciliation on `reconciliation-requests`.

Field names are camelCase on the wire, like Graph's. Times are canonical UTC strings
(`2020-02-25T18:52:21.216988Z`) so they compare and sort as text in Cosmos queries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from verbatim.contracts import Contract, contract

IdentityKind = Literal["user", "phone", "guest", "application", "acsUser", "encrypted", "unknown"]
CallRecordSource = Literal["notification", "backfill", "admin"]


class CamelContract(Contract):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)


class Party(CamelContract):
    """One identity in a call: a participant, the organizer, or a session endpoint's identity."""

    kind: IdentityKind
    id: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    user_principal_name: str | None = None
    on_premises: bool = False
    endpoint_type: str | None = None
    # First join and last leave of this identity, from the sessions it appears in (when it does).
    joined_at: str | None = None
    left_at: str | None = None

    @property
    def key(self) -> str:
        """Stable identity key: `user:<object id>`, `phone:<number>`, ... (`unknown:` when there is no id)."""
        return f"{self.kind}:{self.id or ''}"


class UserAgentInfo(CamelContract):
    kind: Literal["client", "service", "unknown"] = "unknown"
    header_value: str | None = None
    platform: str | None = None
    product_family: str | None = None
    role: str | None = None
    application_version: str | None = None


class FailureInfo(CamelContract):
    reason: str | None = None
    stage: str | None = None


class EndpointSummary(CamelContract):
    kind: Literal["participant", "service", "unknown"] = "unknown"
    identity: Party | None = None
    name: str | None = None
    user_agent: UserAgentInfo | None = None
    feedback_rating: str | None = None


class QualitySummary(CamelContract):
    """Media-stream quality over the streams it summarises (segments' media of a session, or the call)."""

    stream_count: int = 0
    audio_codecs: list[str] = Field(default_factory=list)
    video_codecs: list[str] = Field(default_factory=list)
    average_jitter_ms: float | None = None
    max_jitter_ms: float | None = None
    average_packet_loss_rate: float | None = None
    max_packet_loss_rate: float | None = None
    average_round_trip_time_ms: float | None = None
    max_round_trip_time_ms: float | None = None
    average_audio_degradation: float | None = None
    max_audio_degradation: float | None = None


class SessionSummary(CamelContract):
    id: str | None = None
    start_date_time: str | None = None
    end_date_time: str | None = None
    modalities: list[str] = Field(default_factory=list)
    is_test: bool = False
    caller: EndpointSummary | None = None
    callee: EndpointSummary | None = None
    failure_info: FailureInfo | None = None
    segment_count: int = 0
    # Failures of the session's segments (PSTN legs often fail there, not on the session).
    segment_failures: list[FailureInfo] = Field(default_factory=list)
    quality: QualitySummary = Field(default_factory=QualitySummary)


@contract("callrecord", 1)
class CallRecord(CamelContract):
    """A Teams call record, normalised: who (participants with identity kinds, organizer), when, what
    (type, modalities), per session caller/callee with user agent and failure, and media quality."""

    schema_version: Literal[1] = 1
    id: str
    tenant_id: str | None = None
    version: int
    type: str = "unknown"
    modalities: list[str] = Field(default_factory=list)
    start_date_time: str | None = None
    end_date_time: str | None = None
    last_modified_date_time: str | None = None
    duration_seconds: float | None = None
    join_web_url: str | None = None
    organizer: Party | None = None
    participants: list[Party] = Field(default_factory=list)
    # Identity keys of every participant (`user:<oid>`, `phone:<number>`, ...), for single-field queries.
    participant_keys: list[str] = Field(default_factory=list)
    sessions: list[SessionSummary] = Field(default_factory=list)
    quality: QualitySummary = Field(default_factory=QualitySummary)
    failed_session_count: int = 0
    ingested_at: str | None = None
    source: CallRecordSource | None = None


@contract("callrecord.list", 1)
class CallRecordPage(CamelContract):
    """A page of `GET /api/v1/calls`: newest first; pass `continuation` back to get the next page."""

    items: list[CallRecord]
    continuation: str | None = None


@contract("callrecord.notification", 1)
class CallRecordNotification(CamelContract):
    """`callrecord-notifications` message: fetch call record `call_record_id` of `tenant_id` and store it."""

    schema_name: Literal["callrecord.notification"] = Field(default="callrecord.notification", alias="schema")
    schema_version: Literal[1] = 1
    call_record_id: str
    tenant_id: str
    change_type: str | None = None
    subscription_id: str | None = None
    source: CallRecordSource = "notification"
    # When we first heard of this id (UTC); a 404 within the grace period after it means "not yet".
    first_seen_at: str
    # Deliveries of this id that we re-enqueued ourselves (not-yet 404s, throttling beyond the client's patience).
    attempt: int = 0
    # The version that made us enqueue this (back-fill knows it; notifications do not).
    known_version: int | None = None


@contract("callrecord.stored", 1)
class CallRecordStored(CamelContract):
    """`reconciliation-requests` message: call record `call_record_id` is stored at `version`.

    Sent at least once per stored version; consumers must be idempotent per (call_record_id, version).
    The full normalised record is in Cosmos `calls` under `call_record_id`.
    """

    schema_name: Literal["callrecord.stored"] = Field(default="callrecord.stored", alias="schema")
    schema_version: Literal[1] = 1
    call_record_id: str
    tenant_id: str | None = None
    version: int
    previous_version: int | None = None
    type: str
    start_date_time: str | None = None
    end_date_time: str | None = None
    organizer: Party | None = None
    participants: list[Party] = Field(default_factory=list)
    stored_at: str


@contract("graph.lifecycle", 1)
class GraphLifecycleEvent(CamelContract):
    """`graph-lifecycle` message: Graph told us something about a subscription (reauthorizationRequired,
    subscriptionRemoved, missed); the subscription keeper acts on it."""

    schema_name: Literal["graph.lifecycle"] = Field(default="graph.lifecycle", alias="schema")
    schema_version: Literal[1] = 1
    subscription_id: str
    tenant_id: str | None = None
    lifecycle_event: str
    subscription_expiration_date_time: str | None = None
    received_at: str
