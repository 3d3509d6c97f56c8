"""Turn a Graph callRecord (sessions, segments and participants_v2 already gathered) into our `CallRecord`.

Graph payloads are external and evolve: every field may be missing, null or of an unexpected type, and
new enum members appear. The normaliser never fails on such input; it fails only when the record has no
id (`InvalidCallRecord`), because nothing could be stored then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from verbatim.contracts.callrecords import (
    CallRecord,
    CallRecordSource,
    EndpointSummary,
    FailureInfo,
    IdentityKind,
    Party,
    QualitySummary,
    SessionSummary,
    UserAgentInfo,
)
from verbatim.platform.times import canonical_datetime, format_datetime, parse_datetime, parse_duration_ms


class InvalidCallRecord(ValueError):
    """The payload cannot be a call record (no id)."""


# communicationsIdentitySet members, most specific first: a participant that is both an application
# instance and a phone (a resource account answering a PSTN call) is reported by the first that is set.
_IDENTITY_MEMBERS: tuple[tuple[str, IdentityKind, bool], ...] = (
    ("user", "user", False),
    ("onPremises", "user", True),
    ("guest", "guest", False),
    ("phone", "phone", False),
    ("applicationInstance", "application", False),
    ("application", "application", False),
    ("azureCommunicationServicesUser", "acsUser", False),
    ("acsUser", "acsUser", False),
    ("spoolUser", "acsUser", False),
    ("encrypted", "encrypted", False),
)


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    seen: dict[str, None] = {}
    for item in value:
        if isinstance(item, str) and item:
            seen.setdefault(item, None)
    return list(seen)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None  # no NaN / inf


def _odata_type(value: Mapping[str, Any]) -> str:
    return (_str(value.get("@odata.type")) or "").lower()


def identity_of(identity_set: Any) -> Party | None:
    """The party an identitySet / communicationsIdentitySet names, by its most specific member."""
    identities = _dict(identity_set)
    for member, kind, on_premises in _IDENTITY_MEMBERS:
        identity = identities.get(member)
        if isinstance(identity, Mapping) and any(v is not None for k, v in identity.items() if k != "@odata.type"):
            return Party(
                kind=kind,
                id=_str(identity.get("id")),
                display_name=_str(identity.get("displayName")),
                tenant_id=_str(identity.get("tenantId")),
                user_principal_name=_str(identity.get("userPrincipalName")),
                on_premises=on_premises,
                endpoint_type=_str(identities.get("endpointType")),
            )
    return None


def _user_identity(identity: Any) -> Party | None:
    """A bare communicationsUserIdentity (an endpoint's `associatedIdentity`)."""
    value = _dict(identity)
    if not _str(value.get("id")):
        return None
    return Party(
        kind="user",
        id=_str(value.get("id")),
        display_name=_str(value.get("displayName")),
        tenant_id=_str(value.get("tenantId")),
        user_principal_name=_str(value.get("userPrincipalName")),
    )


def _user_agent(agent: Any) -> UserAgentInfo | None:
    value = _dict(agent)
    if not value:
        return None
    odata = _odata_type(value)
    kind = "client" if "clientuseragent" in odata else "service" if "serviceuseragent" in odata else "unknown"
    if kind == "unknown" and (value.get("platform") or value.get("productFamily")):
        kind = "client"
    return UserAgentInfo(
        kind=kind,
        header_value=_str(value.get("headerValue")),
        platform=_str(value.get("platform")),
        product_family=_str(value.get("productFamily")),
        role=_str(value.get("role")),
        application_version=_str(value.get("applicationVersion")) or _str(value.get("azureADAppId")),
    )


def endpoint_of(endpoint: Any) -> EndpointSummary | None:
    value = _dict(endpoint)
    if not value:
        return None
    odata = _odata_type(value)
    identity = identity_of(value.get("identity")) or _user_identity(value.get("associatedIdentity"))
    if "serviceendpoint" in odata:
        kind = "service"
    elif "participantendpoint" in odata or identity is not None:
        kind = "participant"
    else:
        kind = "unknown"
    return EndpointSummary(
        kind=kind,
        identity=identity,
        name=_str(value.get("name")),
        user_agent=_user_agent(value.get("userAgent")),
        feedback_rating=_str(_dict(value.get("feedback")).get("rating")),
    )


def _failure(value: Any) -> FailureInfo | None:
    failure = _dict(value)
    reason, stage = _str(failure.get("reason")), _str(failure.get("stage"))
    if reason is None and stage is None:
        return None
    return FailureInfo(reason=reason, stage=stage)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def quality_of(streams: Iterable[Mapping[str, Any]]) -> QualitySummary:
    """Codecs, jitter, packet loss, round trip and audio degradation over media streams.

    Averages are the mean of the streams' averages; maxima the largest of their maxima (or averages).
    """
    audio: dict[str, None] = {}
    video: dict[str, None] = {}
    avg_jitter: list[float] = []
    max_jitter: list[float] = []
    avg_loss: list[float] = []
    max_loss: list[float] = []
    avg_rtt: list[float] = []
    max_rtt: list[float] = []
    degradation: list[float] = []
    count = 0
    for stream in streams:
        count += 1
        if (codec := _str(stream.get("audioCodec"))) and codec not in {"unknown", "unknownFutureValue"}:
            audio.setdefault(codec, None)
        if (codec := _str(stream.get("videoCodec"))) and codec not in {"unknown", "unknownFutureValue"}:
            video.setdefault(codec, None)
        for source, target, parse in (
            ("averageJitter", avg_jitter, parse_duration_ms),
            ("maxJitter", max_jitter, parse_duration_ms),
            ("averageRoundTripTime", avg_rtt, parse_duration_ms),
            ("maxRoundTripTime", max_rtt, parse_duration_ms),
            ("averagePacketLossRate", avg_loss, _number),
            ("maxPacketLossRate", max_loss, _number),
            ("averageAudioDegradation", degradation, _number),
        ):
            value = parse(stream.get(source))
            if value is not None:
                target.append(value)
    return QualitySummary(
        stream_count=count,
        audio_codecs=list(audio),
        video_codecs=list(video),
        average_jitter_ms=_mean(avg_jitter),
        max_jitter_ms=_max(max_jitter + avg_jitter),
        average_packet_loss_rate=_mean(avg_loss),
        max_packet_loss_rate=_max(max_loss + avg_loss),
        average_round_trip_time_ms=_mean(avg_rtt),
        max_round_trip_time_ms=_max(max_rtt + avg_rtt),
        average_audio_degradation=_mean(degradation),
        max_audio_degradation=_max(degradation),
    )


def _streams(segments: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        stream
        for segment in segments
        for media in _dicts(segment.get("media"))
        for stream in _dicts(media.get("streams"))
    ]


def session_of(session: Mapping[str, Any]) -> SessionSummary:
    segments = _dicts(session.get("segments"))
    segment_failures = [failure for segment in segments if (failure := _failure(segment.get("failureInfo")))]
    return SessionSummary(
        id=_str(session.get("id")),
        start_date_time=canonical_datetime(session.get("startDateTime")),
        end_date_time=canonical_datetime(session.get("endDateTime")),
        modalities=_strings(session.get("modalities")),
        is_test=session.get("isTest") is True,
        caller=endpoint_of(session.get("caller")),
        callee=endpoint_of(session.get("callee")),
        failure_info=_failure(session.get("failureInfo")),
        segment_count=len(segments),
        segment_failures=segment_failures,
        quality=quality_of(_streams(segments)),
    )


def _with_times(party: Party, sessions: list[SessionSummary]) -> Party:
    """The party with its first join / last leave over the sessions where it is caller or callee."""
    starts: list[str] = []
    ends: list[str] = []
    for session in sessions:
        for endpoint in (session.caller, session.callee):
            if endpoint is not None and endpoint.identity is not None and endpoint.identity.key == party.key:
                if session.start_date_time:
                    starts.append(session.start_date_time)
                if session.end_date_time:
                    ends.append(session.end_date_time)
    if not starts and not ends:
        return party
    return party.model_copy(
        update={"joined_at": min(starts) if starts else None, "left_at": max(ends) if ends else None}
    )


def _participants(raw: Mapping[str, Any], sessions: list[SessionSummary], organizer: Party | None) -> list[Party]:
    parties: dict[str, Party] = {}

    def add(party: Party | None) -> None:
        if party is None or party.id is None:
            return
        existing = parties.get(party.key)
        if existing is None:
            parties[party.key] = party
        else:  # keep the richer description of the same identity
            parties[party.key] = existing.model_copy(
                update={
                    field: getattr(party, field)
                    for field in ("display_name", "tenant_id", "user_principal_name", "endpoint_type")
                    if getattr(existing, field) is None and getattr(party, field) is not None
                }
            )

    v2 = _dicts(raw.get("participants_v2"))
    for participant in v2:
        add(identity_of(participant.get("identity")))
    if not v2:
        for identity_set in _dicts(raw.get("participants")):  # deprecated; until June 2026
            add(identity_of(identity_set))
    add(organizer)
    for session in sessions:
        for endpoint in (session.caller, session.callee):
            if endpoint is not None:
                add(endpoint.identity)
    return [_with_times(party, sessions) for party in parties.values()]


def normalise(
    raw: Mapping[str, Any],
    *,
    tenant_id: str | None = None,
    ingested_at: datetime | None = None,
    source: CallRecordSource | None = None,
) -> CallRecord:
    """The normalised call record of a Graph callRecord payload (with its sessions and participants_v2)."""
    record_id = _str(raw.get("id"))
    if record_id is None:
        raise InvalidCallRecord("the call record has no id")
    version = raw.get("version")
    version = version if isinstance(version, int) and not isinstance(version, bool) and version >= 0 else 0
    organizer = identity_of(_dict(raw.get("organizer_v2")).get("identity")) or identity_of(raw.get("organizer"))
    sessions = [session_of(session) for session in _dicts(raw.get("sessions"))]
    participants = _participants(raw, sessions, organizer)
    if organizer is not None:
        organizer = next((party for party in participants if party.key == organizer.key), organizer)
    start, end = parse_datetime(raw.get("startDateTime")), parse_datetime(raw.get("endDateTime"))
    all_streams = [
        stream for session in _dicts(raw.get("sessions")) for stream in _streams(_dicts(session.get("segments")))
    ]
    tenant = tenant_id or (organizer.tenant_id if organizer else None)
    return CallRecord(
        id=record_id,
        tenant_id=tenant,
        version=version,
        type=_str(raw.get("type")) or "unknown",
        modalities=_strings(raw.get("modalities")),
        start_date_time=format_datetime(start) if start else None,
        end_date_time=format_datetime(end) if end else None,
        last_modified_date_time=canonical_datetime(raw.get("lastModifiedDateTime")),
        duration_seconds=round((end - start).total_seconds(), 3) if start and end and end >= start else None,
        join_web_url=_str(raw.get("joinWebUrl")),
        organizer=organizer,
        participants=participants,
        participant_keys=[party.key for party in participants],
        sessions=sessions,
        quality=quality_of(all_streams),
        failed_session_count=sum(
            1 for session in sessions if session.failure_info is not None or session.segment_failures
        ),
        ingested_at=format_datetime(ingested_at) if ingested_at else None,
        source=source,
    )
