"""Chat capture contracts: the captured message version on `chat-messages`, back-fill requests on
`chat-backfill`, the sealed chat bundle's manifest, the `chat.sealed` ledger details, the daily chat
completeness result and the compliance API's chat bodies.

camelCase on the wire; times are canonical UTC text so they sort as text in Cosmos.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field
from pydantic.alias_generators import to_camel

from verbatim.contracts import Contract, contract
from verbatim.contracts.evidence import BlobRef, RetentionTerm

CaptureSource = Literal["notification", "export"]
VersionState = Literal["posted", "edited", "deleted"]
# `undecryptable`: Graph's own batch (its validation tokens hold) that we could not decrypt or read, e.g. for
# a certificate we no longer have during a rotation; the export API has what it carried.
BackfillReason = Literal[
    "missed",
    "reauthorizationRequired",
    "subscriptionRemoved",
    "startup",
    "timer",
    "admin",
    "reconciliation",
    "undecryptable",
]


class CamelContract(Contract):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)


@contract("chat.message-captured", 1)
class ChatMessageCaptured(CamelContract):
    """One chat message version as Graph delivered it (already authenticated and decrypted), for ingestion."""

    tenant_id: str = Field(max_length=64)
    source: CaptureSource
    received_at: str
    raw: str = Field(min_length=2, max_length=4 * 1024 * 1024, description="the chatMessage JSON, exact text")
    subscription_id: str | None = Field(default=None, max_length=128)
    change_type: Literal["created", "updated", "deleted"] | None = None


@contract("chat.backfill-request", 1)
class ChatBackfillRequest(CamelContract):
    """Read a window of the export API for the policy users of a tenant (all when `userIds` is empty)."""

    tenant_id: str = Field(max_length=64)
    reason: BackfillReason
    since: str | None = None
    until: str | None = None
    user_ids: list[str] = Field(default_factory=list, max_length=10_000)


class ChatVersionRef(CamelContract):
    """One line of a sealed bundle: a message version and the SHA-256 of its canonical line."""

    message_id: str
    etag: str
    state: VersionState
    last_modified: str
    sender_id: str | None = None
    source: CaptureSource
    line: int = Field(ge=0)
    line_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class HostedContentRef(BlobRef):
    """An inline image of a message, stored content-addressed beside the bundle."""

    message_id: str
    hosted_content_id: str = Field(max_length=1024)
    content_type: str | None = None


@contract("chat-bundle-manifest", 1)
class ChatBundleManifest(CamelContract):
    """The seal of a chat's versions of one UTC day (and part): what was captured, hashed and protected."""

    bundle_id: str
    chat_id: str
    chat_type: str | None = None
    topic: str | None = None
    join_web_url: str | None = None
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    part: int = Field(ge=1)
    members: list[str] = Field(default_factory=list)
    policy_users: list[str] = Field(default_factory=list)
    messages: BlobRef
    versions: list[ChatVersionRef]
    hosted_contents: list[HostedContentRef] = Field(default_factory=list)
    retention: RetentionTerm
    legal_holds: list[str] = Field(default_factory=list)
    sealed_at: AwareDatetime
    sealed_by: str


@contract("chat.sealed-details", 1)
class ChatSealedDetails(Contract):
    """The details of a `chat.sealed` ledger entry: enough to verify the bundle from the ledger alone."""

    bundle_id: str
    chat_id: str
    day: str
    part: int
    manifest: dict[str, str | int | None]
    messages: dict[str, str | int | None]
    versions: int
    hosted_contents: int
    retention_class: str
    retention_until: str
    legal_holds: list[str]
    worm: str


@contract("chat.completeness", 1)
class ChatCompleteness(CamelContract):
    """The daily chat reconciliation of one policy user: what notifications delivered against the export
    API's view of the same window, and what back-fill recovered."""

    user_id: str
    day: str
    window_start: str
    window_end: str
    export_versions: int = Field(ge=0)
    captured_before: int = Field(ge=0, description="of the export's versions, captured before reconciliation")
    backfilled: int = Field(ge=0)
    missing_after: int = Field(ge=0, description="still not captured after back-fill (an alert)")
    status: Literal["complete", "gaps-filled", "gaps"]


class ChatVersionView(CamelContract):
    etag: str
    state: VersionState
    last_modified: str
    captured_at: str
    source: CaptureSource
    content_type: str
    text: str
    hosted_contents: list[str] = Field(default_factory=list)
    sealed_in: str | None = None


class ChatMessageView(CamelContract):
    message_id: str
    sender_id: str | None = None
    sender_name: str | None = None
    created: str
    state: VersionState
    versions: list[ChatVersionView]


@contract("api.chat-summary", 1)
class ChatSummary(CamelContract):
    chat_id: str
    chat_type: str | None = None
    topic: str | None = None
    members: list[str] = Field(default_factory=list)
    member_names: list[str] = Field(default_factory=list)
    policy_users: list[str] = Field(default_factory=list)
    thread_id: str | None = None
    join_web_url: str | None = None
    first_message_at: str | None = None
    last_message_at: str | None = None
    messages: int = 0
    versions: int = 0


@contract("api.chat-page", 1)
class ChatPage(CamelContract):
    items: list[ChatSummary]
    continuation: str | None = None


@contract("api.chat-detail", 1)
class ChatDetail(CamelContract):
    chat: ChatSummary
    messages: list[ChatMessageView]
    bundles: list[str] = Field(default_factory=list)
    continuation: str | None = None


class ChatSearchHit(CamelContract):
    chat_id: str
    message_id: str
    etag: str
    state: VersionState
    sender_id: str | None = None
    last_modified: str
    text: str


@contract("api.chat-search-page", 1)
class ChatSearchPage(CamelContract):
    items: list[ChatSearchHit]
    mode: Literal["terms", "substring"]
    continuation: str | None = None
