"""The signalling payloads Teams POSTs to the bot (`commsNotifications`), as typed models.

Tolerant where the platform is loose (unknown fields kept, `resourceData` an object or an array, a single
`commsNotification` or a batch, `applicationMetadata` an object or JSON text, enum values in any case, call
states and change types we do not know kept for the log rather than refused), strict where we rely on a
value's type. Anything that does not parse raises `InvalidInput`, which the HTTP layer turns into a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from verbatim.platform.errors import InvalidInput

CALL_URL = re.compile(r"^/(?:communications|app)/calls/(?P<call_id>[^/?#]+)(?P<rest>/[^?#]*)?$", re.IGNORECASE)

IDENTITY_KINDS = (
    "user",
    "phone",
    "guest",
    "applicationInstance",
    "application",
    "onPremises",
    "encrypted",
    "azureCommunicationServicesUser",
    "assertedIdentity",
)


class GraphModel(BaseModel):
    """Graph JSON: camelCase names, `@odata.type` kept, unknown properties kept but not interpreted."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
    )

    odata_type: str | None = Field(default=None, alias="@odata.type")


class IdentityRef(GraphModel):
    id: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    identity_provider: str | None = None
    user_principal_name: str | None = None


class IdentitySet(GraphModel):
    user: IdentityRef | None = None
    phone: IdentityRef | None = None
    guest: IdentityRef | None = None
    application: IdentityRef | None = None
    application_instance: IdentityRef | None = None
    on_premises: IdentityRef | None = None
    encrypted: IdentityRef | None = None
    azure_communication_services_user: IdentityRef | None = None
    asserted_identity: IdentityRef | None = None

    def primary(self) -> tuple[str, IdentityRef] | None:
        """The identity that says who this is, in the order that matters for recording (user first)."""
        for kind in IDENTITY_KINDS:
            ref = getattr(self, _snake(kind))
            if ref is not None:
                return kind, ref
        return None


class ParticipantInfo(GraphModel):
    id: str | None = None
    identity: IdentitySet | None = None
    endpoint_type: str | None = None
    region: str | None = None
    country_code: str | None = None
    language_id: str | None = None


class MediaStream(GraphModel):
    media_type: str | None = None
    label: str | None = None
    source_id: str | int | None = None
    direction: str | None = None
    server_muted: bool | None = None

    @property
    def source_number(self) -> int | None:
        try:
            return int(self.source_id) if self.source_id is not None else None
        except ValueError:
            return None


class RemovedState(GraphModel):
    reason: str | None = None


class Participant(GraphModel):
    id: str
    info: ParticipantInfo | None = None
    is_in_lobby: bool | None = None
    is_muted: bool | None = None
    media_streams: list[MediaStream] | None = None
    metadata: str | None = None
    removed_state: RemovedState | None = None
    roster_sequence_number: int | None = None


class ResultInfo(GraphModel):
    code: int | None = None
    subcode: int | None = None
    message: str | None = None


class IncomingContext(GraphModel):
    source_participant_id: str | None = None
    observed_participant_id: str | None = None
    on_behalf_of: IdentitySet | None = None
    transferor: IdentitySet | None = None


class RecorderRef(GraphModel):
    id: str | None = None
    participant_id: str | None = None


class BotUser(GraphModel):
    participation_method: str | None = None
    client_location: str | None = None


class BotData(GraphModel):
    media_hosted_region: str | None = None
    user: BotUser | None = None
    invite_reasons: list[str] | None = None
    policy_identifier: str | None = None
    paired_recorders: list[RecorderRef] | None = None
    other_recorders: list[RecorderRef] | None = None


class ApplicationMetadata(GraphModel):
    bot_data: BotData | None = None


class ChatInfo(GraphModel):
    thread_id: str | None = None
    message_id: str | None = None
    reply_chain_message_id: str | None = None


# Graph v1.0 `call` resource, `state`; a value outside it (a newer one, `unknownFutureValue`) is kept as sent.
CALL_STATES = (
    "incoming",
    "establishing",
    "ringing",
    "established",
    "hold",
    "transferring",
    "transferAccepted",
    "redirecting",
    "terminating",
    "terminated",
)
ChangeType = Literal["created", "updated", "deleted"]
_CHANGE_TYPES: dict[str, ChangeType] = {"created": "created", "updated": "updated", "deleted": "deleted"}
CHANGE_TYPES = tuple(_CHANGE_TYPES)


def _canonical(known: tuple[str, ...]) -> Any:
    """A before-validator: a known enum value in whatever case becomes its documented spelling."""
    by_lower = {value.lower(): value for value in known}

    def normalise(value: Any) -> Any:
        return by_lower.get(value.lower(), value) if isinstance(value, str) else value

    return normalise


class Call(GraphModel):
    id: str | None = None
    state: str | None = None  # one of CALL_STATES when known
    direction: str | None = None
    source: ParticipantInfo | None = None
    targets: list[ParticipantInfo] | None = None
    tenant_id: str | None = None
    my_participant_id: str | None = None
    call_chain_id: str | None = None
    incoming_context: IncomingContext | None = None
    application_metadata: ApplicationMetadata | None = None
    chat_info: ChatInfo | None = None
    meeting_info: dict[str, Any] | None = None
    result_info: ResultInfo | None = None
    requested_modalities: list[str] | None = None

    _state = field_validator("state", mode="before")(_canonical(CALL_STATES))

    @field_validator("application_metadata", mode="before")
    @classmethod
    def _metadata_may_be_json_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return None
        return value


class CommsNotification(GraphModel):
    change_type: str  # one of CHANGE_TYPES when known

    _change_type = field_validator("change_type", mode="before")(_canonical(CHANGE_TYPES))
    resource: str | None = None
    resource_url: str | None = None
    resource_data: dict[str, Any] | list[dict[str, Any]] | None = None

    @property
    def url(self) -> str:
        return self.resource_url or self.resource or ""

    @property
    def items(self) -> list[dict[str, Any]]:
        if self.resource_data is None:
            return []
        return self.resource_data if isinstance(self.resource_data, list) else [self.resource_data]


class CommsNotifications(GraphModel):
    value: list[CommsNotification]


# --- what a notification means to the recorder ---------------------------------------------------------------


class CallUpdate(BaseModel):
    """A change of the call resource itself (incoming, establishing, established, terminated, ...)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["call"] = "call"
    call_id: str
    change_type: ChangeType
    call: Call


class RosterUpdate(BaseModel):
    """Participants of the call: the whole roster, or only the changes when delta roster is on."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["roster"] = "roster"
    call_id: str
    change_type: ChangeType
    participants: list[Participant]


class OtherUpdate(BaseModel):
    """Operations, content sharing, change types we do not know and anything else we only log."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["other"] = "other"
    call_id: str | None
    change_type: str
    resource_url: str


SignallingUpdate = CallUpdate | RosterUpdate | OtherUpdate


def parse_notifications(body: bytes | str) -> list[SignallingUpdate]:
    """Parse a signalling request body into what changed, in order. `InvalidInput` when malformed."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput("body is not JSON") from error
    if not isinstance(document, dict):
        raise InvalidInput("body is not a JSON object")
    try:
        if "value" in document:
            notifications = CommsNotifications.model_validate(document).value
        else:
            notifications = [CommsNotification.model_validate(document)]
    except ValidationError as error:
        raise InvalidInput(f"not a commsNotifications document: {_first_error(error)}") from error
    return [update for notification in notifications for update in _interpret(notification)]


def _interpret(notification: CommsNotification) -> list[SignallingUpdate]:
    match = CALL_URL.match(notification.url)
    if match is None:
        return [OtherUpdate(call_id=None, change_type=notification.change_type, resource_url=notification.url)]
    call_id, rest = match["call_id"], (match["rest"] or "").rstrip("/").lower()
    change_type = _CHANGE_TYPES.get(notification.change_type)
    if change_type is None:
        return [OtherUpdate(call_id=call_id, change_type=notification.change_type, resource_url=notification.url)]
    try:
        if rest == "":
            updates: list[SignallingUpdate] = []
            for item in notification.items or [{}]:
                call = Call.model_validate(item)
                updates.append(CallUpdate(call_id=call.id or call_id, change_type=change_type, call=call))
            return updates
        if rest == "/participants":
            participants = [Participant.model_validate(item) for item in notification.items]
            return [RosterUpdate(call_id=call_id, change_type=change_type, participants=participants)]
    except ValidationError as error:
        raise InvalidInput(f"malformed resourceData for {notification.url}: {_first_error(error)}") from error
    return [OtherUpdate(call_id=call_id, change_type=notification.change_type, resource_url=notification.url)]


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid"))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
