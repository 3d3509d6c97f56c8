"""Teams call records: built from finished simulated calls (or stored as-is via ``PUT /sim/callRecords/{id}``),
published after a delay on the simulated clock, retained 30 days, and served like Graph: ``$expand`` of
sessions (with segments) and ``participants_v2`` with ``@odata.nextLink`` paging (60 / 130 per page), the
list with ``$filter`` on ``startDateTime`` and participants, ``getPstnCalls`` and ``getDirectRoutingCalls``
with their 90-day range and 1,000-row pages."""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from .clock import Clock
from .config import SimConfig
from .faults import Faults
from .identity import Identity
from .odata import (
    GraphError,
    bad_request,
    base_url,
    decode_skiptoken,
    encode_skiptoken,
    format_datetime,
    iso_duration,
    page_size,
    parse_datetime,
    read_json,
)

READ = ("CallRecords.Read.All",)
PSTN_READ = ("CallRecord-PstnCalls.Read.All", "CallRecords.Read.All")
SESSION_PAGE = 60
PARTICIPANT_PAGE = 130
LIST_PAGE = 60
PSTN_PAGE = 1000
PSTN_MAX_RANGE = timedelta(days=90)
ZERO_DATETIME = "0001-01-01T00:00:00Z"
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France", "CH": "Switzerland"}
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "CH": "CHF"}

Listener = Callable[[dict[str, Any], Literal["created", "updated"]], None]


@dataclass
class PartyFacts:
    """What a finished call knows about one human participant."""

    kind: Literal["user", "phone", "guest"]
    id: str
    display_name: str | None
    tenant_id: str | None
    upn: str | None
    joined_at: datetime
    left_at: datetime
    platform: str = "windows"
    country: str | None = None
    machine: str = "machine"
    failure: str | None = None


@dataclass
class CallFacts:
    """Everything the call-record builder needs from a finished (or failed) simulated call."""

    record_id: str
    call_type: Literal["peerToPeer", "groupCall"]
    start: datetime
    end: datetime
    organizer: PartyFacts
    parties: list[PartyFacts]
    join_web_url: str | None = None
    pstn: Literal["inbound", "outbound"] | None = None
    pstn_number: str | None = None
    pstn_user: PartyFacts | None = None
    user_number: str | None = None
    connectivity: Literal["callingPlan", "directRouting"] | None = None
    setup_failure: str | None = None
    delay_seconds: float | None = None
    later_versions: list[float] = field(default_factory=list)
    trunk_fqdn: str = "sbc.contoso.com"


@dataclass
class StoredRecord:
    data: dict[str, Any]
    stored_at: datetime

    @property
    def version(self) -> int:
        return int(self.data.get("version") or 1)


def _identity(p: PartyFacts, with_upn: bool = False) -> dict[str, Any]:
    if p.kind == "phone":
        return {"phone": {"id": p.id, "displayName": p.display_name, "tenantId": None}}
    if p.kind == "guest":
        return {"guest": {"id": p.id, "displayName": p.display_name, "tenantId": None}}
    user: dict[str, Any] = {"id": p.id, "displayName": p.display_name, "tenantId": p.tenant_id}
    if with_upn:
        user["userPrincipalName"] = p.upn
    return {"user": user}


_USER_AGENTS = {
    "windows": "RTCC/8.0.0.0 Teams/1.7.00.1234 (Windows 10; x64)",
    "macOS": "RTCC/8.0.0.0 Teams/1.7.00.1234 (macOS 14; arm64)",
    "android": "RTCC/8.0.0.0 Teams/1416/1.0.0.2024 (SM-S911B Android 14)",
    "iOS": "RTCC/8.0.0.0 Teams/6.2.1 (iPhone15,2 iOS 17.4)",
    "web": "RTCC/8.0.0.0 TeamsWeb/24000 (Chrome 124)",
}


def _participant_endpoint(p: PartyFacts, rng: random.Random, full: bool) -> dict[str, Any]:
    if p.kind == "phone":
        return {
            "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
            "name": None,
            "userAgent": {
                "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
                "headerValue": None,
                "platform": "unknown",
                "productFamily": "unknown",
            },
            "identity": {"@odata.type": "#microsoft.graph.identitySet", **_identity(p)},
            "associatedIdentity": {"id": p.id, "displayName": p.display_name, "tenantId": None},
        }
    endpoint: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "name": p.machine,
        "cpuName": "Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz",
        "cpuCoresCount": 4,
        "cpuProcessorSpeedInMhz": 2594,
        "userAgent": {
            "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
            "headerValue": _USER_AGENTS.get(p.platform, _USER_AGENTS["windows"]),
            "platform": p.platform,
            "productFamily": "teams",
        },
        "identity": {"@odata.type": "#microsoft.graph.identitySet", **_identity(p)},
        "associatedIdentity": {
            "id": p.id,
            "displayName": p.display_name,
            "tenantId": p.tenant_id,
            "userPrincipalName": p.upn,
        },
    }
    if full:
        tokens = ["NoSound", "OtherNoSound", "Echo", "Noisy", "LowVolume", "Stopped", "DistortedSound", "Interruptions"]
        endpoint["feedback"] = {
            "rating": rng.choice(["excellent", "good", "good", "fair"]),
            "tokens": {token: rng.random() < 0.05 for token in tokens},
        }
    return endpoint


def _service_endpoint(role: str, header: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
        "userAgent": {
            "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
            "headerValue": header,
            "role": role,
        },
    }


def _stream(rng: random.Random, direction: str, start: datetime, end: datetime, full: bool) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "streamId": str(rng.randrange(1_000_000_000, 2_000_000_000)),
        "streamDirection": direction,
        "startDateTime": format_datetime(start),
        "endDateTime": format_datetime(end),
        "audioCodec": "satin",
        "wasMediaBypassed": False,
    }
    if full:  # later versions carry the quality telemetry that clients upload after the call
        jitter = rng.uniform(0.003, 0.02)
        stream.update(
            {
                "averageAudioDegradation": round(rng.uniform(0.0, 1.2), 6),
                "averageJitter": iso_duration(jitter),
                "maxJitter": iso_duration(jitter * 1.6),
                "averagePacketLossRate": round(rng.uniform(0.0, 0.01), 8),
                "maxPacketLossRate": round(rng.uniform(0.01, 0.04), 8),
                "averageRatioOfConcealedSamples": round(rng.uniform(0.0, 0.05), 8),
                "maxRatioOfConcealedSamples": round(rng.uniform(0.05, 0.1), 8),
                "averageRoundTripTime": iso_duration(rng.uniform(0.02, 0.08)),
                "maxRoundTripTime": iso_duration(rng.uniform(0.08, 0.15)),
                "packetUtilization": rng.randrange(100, 5000),
                "averageBandwidthEstimate": rng.randrange(1_000_000, 20_000_000),
                "averageAudioNetworkJitter": iso_duration(jitter * 2),
                "maxAudioNetworkJitter": iso_duration(jitter * 3),
                "rmsFreezeDuration": None,
                "averageFreezeDuration": None,
                "isAudioForwardErrorCorrectionUsed": rng.random() < 0.5,
            }
        )
    return stream


def _network(rng: random.Random, full: bool) -> dict[str, Any]:
    network: dict[str, Any] = {
        "ipAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "subnet": f"10.{rng.randrange(256)}.0.0",
        "linkSpeed": rng.choice([54000000, 1000000000]),
        "connectionType": rng.choice(["wired", "wifi"]),
        "port": rng.randrange(50000, 60000),
        "reflexiveIPAddress": "127.0.0.2",
        "relayIPAddress": f"52.114.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "relayPort": rng.randrange(50000, 60000),
    }
    if full:
        network.update(
            {
                "macAddress": "00-00-00-00-00-00",
                "dnsSuffix": None,
                "sentQualityEventRatio": round(rng.uniform(0, 0.3), 2),
                "receivedQualityEventRatio": round(rng.uniform(0, 0.3), 2),
                "delayEventRatio": 0,
                "bandwidthLowEventRatio": 0,
            }
        )
    return network


def _device(rng: random.Random, full: bool) -> dict[str, Any]:
    device: dict[str, Any] = {"captureDeviceName": "Default input device", "renderDeviceName": "Default output device"}
    if full:
        device.update(
            {
                "receivedSignalLevel": rng.randrange(-20, -5),
                "receivedNoiseLevel": rng.randrange(-90, -60),
                "initialSignalLevelRootMeanSquare": round(rng.uniform(50, 150), 4),
                "micGlitchRate": rng.randrange(0, 200),
                "speakerGlitchRate": rng.randrange(0, 200),
                "renderZeroVolumeEventRatio": 0,
                "renderMuteEventRatio": 0,
                "captureDeviceDriver": "Microsoft: 10.0.22621.1",
                "renderDeviceDriver": "Microsoft: 10.0.22621.1",
            }
        )
    return device


def _segment(
    rng: random.Random,
    caller: dict[str, Any],
    callee: dict[str, Any],
    start: datetime,
    end: datetime,
    full: bool,
    failure: str | None = None,
) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "startDateTime": format_datetime(start),
        "endDateTime": format_datetime(end),
        "caller": copy.deepcopy(caller),
        "callee": copy.deepcopy(callee),
        "failureInfo": {"stage": "callSetup", "reason": failure} if failure else None,
        "media": [
            {
                "label": "main-audio",
                "callerNetwork": _network(rng, full),
                "calleeNetwork": _network(rng, full),
                "callerDevice": _device(rng, full),
                "calleeDevice": _device(rng, full),
                "streams": [
                    _stream(rng, "callerToCallee", start, end, full),
                    _stream(rng, "calleeToCaller", start, end, full),
                ],
            }
        ]
        if not failure
        else [],
    }


def build_record(facts: CallFacts, version: int, modified: datetime) -> dict[str, Any]:
    """A callRecord with sessions, segments, ``participants_v2`` and ``organizer_v2`` as Graph shapes it."""
    rng = random.Random(f"{facts.record_id}:{version}")  # noqa: S311 - telemetry values, not secrets
    full = version > 1
    organizer = facts.organizer
    sessions: list[dict[str, Any]] = []
    if facts.call_type == "peerToPeer":
        a, b = facts.parties[0], facts.parties[1]
        caller, callee = _participant_endpoint(a, rng, full), _participant_endpoint(b, rng, full)
        start, end = facts.start, facts.end
        if facts.pstn:
            gateway = _service_endpoint("mediationServer", "Microsoft.PSTNHub.SIPProxy")
            segments = [
                _segment(rng, caller, gateway, start, end, full, facts.setup_failure),
                _segment(rng, gateway, callee, start, end, full, facts.setup_failure),
            ]
        else:
            segments = [_segment(rng, caller, callee, start, end, full, facts.setup_failure)]
        sessions.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "modalities": ["audio"],
                "startDateTime": format_datetime(start),
                "endDateTime": format_datetime(end),
                "isTest": False,
                "caller": caller,
                "callee": callee,
                "failureInfo": {"stage": "callSetup", "reason": facts.setup_failure} if facts.setup_failure else None,
                "segments": segments,
            }
        )
    else:
        mcu = _service_endpoint("skypeForBusinessAudioVideoMcu", "AVMCU/16.0.0.0")
        for p in facts.parties:
            endpoint = _participant_endpoint(p, rng, full)
            sessions.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "modalities": ["audio"],
                    "startDateTime": format_datetime(p.joined_at),
                    "endDateTime": format_datetime(p.left_at),
                    "isTest": False,
                    "caller": endpoint,
                    "callee": copy.deepcopy(mcu),
                    "failureInfo": {"stage": "callSetup", "reason": p.failure} if p.failure else None,
                    "segments": [_segment(rng, endpoint, mcu, p.joined_at, p.left_at, full, p.failure)],
                }
            )
    participants = [
        {"id": p.id, "identity": _identity(p, with_upn=True), "administrativeUnitInfos": []} for p in facts.parties
    ]
    return {
        "id": facts.record_id,
        "version": version,
        "type": facts.call_type,
        "modalities": ["audio"],
        "lastModifiedDateTime": format_datetime(modified),
        "startDateTime": format_datetime(facts.start),
        "endDateTime": format_datetime(facts.end),
        "joinWebUrl": facts.join_web_url,
        "organizer": _identity(organizer),
        "participants": [_identity(p) for p in facts.parties][:130],
        "organizer_v2": {"id": organizer.id, "identity": _identity(organizer)},
        "participants_v2": participants,
        "sessions": sessions,
    }


def pstn_row(facts: CallFacts) -> dict[str, Any] | None:
    """The getPstnCalls / getDirectRoutingCalls row a PSTN call produces (None for other calls)."""
    user = facts.pstn_user
    if facts.pstn is None or user is None or facts.pstn_number is None:
        return None
    inbound = facts.pstn == "inbound"
    user_number = facts.user_number
    caller = facts.pstn_number if inbound else user_number
    callee = user_number if inbound else facts.pstn_number
    duration = 0 if facts.setup_failure else round((facts.end - facts.start).total_seconds())
    country = user.country or "US"
    rng = random.Random(facts.record_id)  # noqa: S311 - ids of simulated rows
    if facts.connectivity == "directRouting":
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "correlationId": facts.record_id,
            "userId": user.id,
            "userPrincipalName": user.upn,
            "userDisplayName": user.display_name,
            "startDateTime": format_datetime(facts.start, 3),
            "inviteDateTime": format_datetime(facts.start - timedelta(seconds=3), 3),
            "failureDateTime": format_datetime(facts.start, 3) if facts.setup_failure else ZERO_DATETIME,
            "endDateTime": ZERO_DATETIME if facts.setup_failure else format_datetime(facts.end, 3),
            "duration": duration,
            "callType": "ByotIn" if inbound else "ByotOut",
            "successfulCall": facts.setup_failure is None,
            "callerNumber": caller,
            "calleeNumber": callee,
            "mediaPathLocation": "EUWE",
            "signalingLocation": "EUWE",
            "finalSipCode": 480 if facts.setup_failure else 0,
            "callEndSubReason": 560000 if facts.setup_failure else 540000,
            "finalSipCodePhrase": "Temporarily Unavailable" if facts.setup_failure else "BYE",
            "trunkFullyQualifiedDomainName": facts.trunk_fqdn,
            "mediaBypassEnabled": False,
        }
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "callId": f"{rng.randrange(10**9, 10**10)}_{rng.randrange(10**8, 10**9)}@52.114.{rng.randrange(256)}.1",
        "userId": user.id,
        "userPrincipalName": user.upn,
        "userDisplayName": user.display_name,
        "startDateTime": format_datetime(facts.start),
        "endDateTime": format_datetime(facts.end),
        "duration": duration,
        "charge": 0.0 if inbound else round(duration / 60 * 0.02, 2),
        "callType": "user_in" if inbound else "user_out",
        "currency": CURRENCY.get(country, "USD"),
        "calleeNumber": callee,
        "usageCountryCode": country,
        "tenantCountryCode": country,
        "connectionCharge": 0.0,
        "callerNumber": caller,
        "destinationContext": None,
        "destinationName": COUNTRY_NAMES.get(country, country),
        "conferenceId": None,
        "licenseCapability": "MCOPSTNU",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
    }


_EXPAND_ITEM = re.compile(r"\s*([A-Za-z_0-9]+)\s*(?:\((.*)\))?\s*$")


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parse_expand(raw: str | None) -> dict[str, set[str]]:
    """``sessions($expand=segments),participants_v2`` -> {"sessions": {"segments"}, "participants_v2": set()}"""
    out: dict[str, set[str]] = {}
    if not raw:
        return out
    for item in _split_top(raw):
        match = _EXPAND_ITEM.match(item)
        if not match:
            raise bad_request(f"Invalid $expand item '{item.strip()}'.")
        name, inner = match.group(1), match.group(2)
        if name not in {"sessions", "participants_v2", "organizer_v2"}:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.callRecords.callRecord'."
            )
        nested: set[str] = set()
        if inner:
            inner_match = re.match(r"^\s*\$expand\s*=\s*([A-Za-z_]+)\s*$", inner)
            if not inner_match or inner_match.group(1) != "segments" or name != "sessions":
                raise bad_request(f"Unsupported nested expansion '{inner}'.")
            nested.add("segments")
        out[name] = nested
    return out


_CLAUSE_TIME = re.compile(r"^\s*startDateTime\s+(lt|le|gt|ge|eq)\s+(\S+)\s*$", re.IGNORECASE)
_CLAUSE_PARTICIPANT = re.compile(
    r"^\s*participants_v2/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'([^']+)'\s*\)\s*$", re.IGNORECASE
)


def parse_list_filter(raw: str | None) -> list[Callable[[StoredRecord], bool]]:
    if not raw:
        return []
    predicates: list[Callable[[StoredRecord], bool]] = []
    for clause in re.split(r"\s+and\s+", raw, flags=re.IGNORECASE):
        time_match = _CLAUSE_TIME.match(clause)
        if time_match:
            op = time_match.group(1).lower()
            try:
                bound = parse_datetime(time_match.group(2))
            except ValueError as error:
                raise bad_request(f"Invalid date in $filter: {time_match.group(2)}") from error
            predicates.append(_time_predicate(op, bound))
            continue
        participant = _CLAUSE_PARTICIPANT.match(clause)
        if participant:
            predicates.append(_participant_predicate(participant.group(2).lower()))
            continue
        raise bad_request(
            f"Unsupported $filter clause '{clause.strip()}': use startDateTime lt|le|gt|ge <DateTimeOffset> "
            "and participants_v2/any(p:p/id eq '<id>')."
        )
    return predicates


def _participant_predicate(wanted: str) -> Callable[[StoredRecord], bool]:
    def check(record: StoredRecord) -> bool:
        return wanted in record_participant_ids(record.data)

    return check


def _time_predicate(op: str, bound: datetime) -> Callable[[StoredRecord], bool]:
    def check(record: StoredRecord) -> bool:
        try:
            start = parse_datetime(str(record.data.get("startDateTime")))
        except ValueError:
            return False
        return {
            "lt": start < bound,
            "le": start <= bound,
            "gt": start > bound,
            "ge": start >= bound,
            "eq": start == bound,
        }[op]

    return check


def record_participant_ids(data: dict[str, Any]) -> set[str]:
    """Entra object ids (and phone numbers) of everyone in a record, however the record spells them."""
    ids: set[str] = set()

    def from_identity(identity: Any) -> None:
        if isinstance(identity, dict):
            for value in identity.values():
                if isinstance(value, dict) and value.get("id"):
                    ids.add(str(value["id"]).lower())

    for p in data.get("participants_v2") or []:
        if isinstance(p, dict):
            if p.get("id"):
                ids.add(str(p["id"]).lower())
            from_identity(p.get("identity"))
    for p in data.get("participants") or []:
        from_identity(p)
    organizer = data.get("organizer_v2")
    if isinstance(organizer, dict):
        from_identity(organizer.get("identity"))
    return ids


class CallRecords:
    """Stores, publishes and serves call records and PSTN / Direct Routing rows."""

    def __init__(self, clock: Clock, config: SimConfig, identity: Identity, faults: Faults) -> None:
        self.clock = clock
        self.config = config
        self.identity = identity
        self.faults = faults
        self.records: dict[str, StoredRecord] = {}
        self.pstn_rows: list[dict[str, Any]] = []
        self.dr_rows: list[dict[str, Any]] = []
        self.listeners: list[Listener] = []
        self.scheduled: dict[str, list[dict[str, Any]]] = {}

    # -- producing --------------------------------------------------------------------------------------
    def conversation_ended(self, facts: CallFacts) -> datetime:
        """Schedule version 1 after the delay (and any later versions); returns when v1 appears."""
        delay = self.config.call_record_delay_seconds if facts.delay_seconds is None else facts.delay_seconds
        fault = self.faults.take("callRecordDelay")
        if fault is not None:
            delay = fault.delay_seconds
        # measured on the clock from the moment the simulator ended the call (with fast media the call's
        # own timeline can run ahead of a simulated clock; the delay still counts from "now")
        first = self.clock.now() + timedelta(seconds=delay)
        self.scheduled.setdefault(facts.record_id, [])
        self._schedule(facts, 1, first, with_rows=True)
        for index, after in enumerate(facts.later_versions, start=2):
            self._schedule(facts, index, first + timedelta(seconds=after), with_rows=False)
        return first

    def _schedule(self, facts: CallFacts, version: int, when: datetime, with_rows: bool) -> None:
        entry = {"version": version, "at": format_datetime(when)}
        self.scheduled[facts.record_id].append(entry)

        def publish() -> None:
            self.scheduled[facts.record_id].remove(entry)
            self.publish(build_record(facts, version, self.clock.now()))
            if with_rows:
                row = pstn_row(facts)
                if row is not None:
                    (self.dr_rows if facts.connectivity == "directRouting" else self.pstn_rows).append(row)

        self.clock.call_at(when, publish, label=f"callRecord {facts.record_id} v{version}")

    def publish(self, data: dict[str, Any]) -> Literal["created", "updated"]:
        record_id = str(data["id"])
        existing = self.records.get(record_id)
        change: Literal["created", "updated"] = "updated" if existing is not None else "created"
        stored_at = existing.stored_at if existing is not None else self.clock.now()
        self.records[record_id] = StoredRecord(data, stored_at)
        for listener in self.listeners:
            listener(data, change)
        return change

    # -- reading ----------------------------------------------------------------------------------------
    def _visible(self, record: StoredRecord) -> bool:
        return self.clock.now() < record.stored_at + timedelta(days=self.config.call_record_retention_days)

    def _get(self, record_id: str) -> StoredRecord:
        record = self.records.get(record_id)
        if record is None or not self._visible(record):
            raise GraphError(404, "NotFound", f"The requested call record '{record_id}' was not found.")
        return record

    def routes(self) -> list[web.RouteDef]:
        prefix = "/v1.0/communications/callRecords"
        return [
            web.get(prefix, self.list_records),
            web.get(prefix + "/{rid}", self.get_record),
            web.get(prefix + "/{rid}/sessions", self.list_sessions),
            web.get(prefix + "/{rid}/participants_v2", self.list_participants),
            web.get("/sim/callRecords", self.sim_list),
            web.put("/sim/callRecords/{rid}", self.sim_put),
            web.get("/sim/callRecords/{rid}", self.sim_get),
            web.post("/sim/pstnCalls", self.sim_add_pstn),
            web.post("/sim/directRoutingCalls", self.sim_add_dr),
        ]

    async def get_record(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        for name, rows, inclusive_end in (
            ("getPstnCalls", self.pstn_rows, True),
            ("getDirectRoutingCalls", self.dr_rows, False),
        ):
            if rid.startswith((name + "(", f"microsoft.graph.callRecords.{name}(")):
                return await self._pstn(request, rid, rows, inclusive_end, name)
        self.identity.authorize(request, *READ)
        record = self._get(rid)
        expand = parse_expand(request.query.get("$expand"))
        base = base_url(request)
        data = record.data
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#communications/callRecords/$entity"}
        select = request.query.get("$select")
        wanted = {s.strip() for s in select.split(",")} | {"id"} if select else None
        for key, value in data.items():
            if key in {"sessions", "participants_v2"}:
                continue
            if wanted is not None and key not in wanted:
                continue
            body[key] = copy.deepcopy(value)
        rid_q = f"('{rid}')"
        if "organizer_v2" in data:
            body["organizer_v2@odata.context"] = (
                f"{base}/v1.0/$metadata#communications/callRecords{rid_q}/organizer_v2/$entity"
            )
        body["participants_v2@odata.context"] = (
            f"{base}/v1.0/$metadata#communications/callRecords{rid_q}/participants_v2/$entity"
        )
        if "participants_v2" in expand:
            items = data.get("participants_v2") or []
            size = page_size(request, PARTICIPANT_PAGE, PARTICIPANT_PAGE)
            body["participants_v2"] = copy.deepcopy(items[:size])
            if len(items) > size:
                token = encode_skiptoken({"offset": size})
                body["participants_v2@odata.nextLink"] = (
                    f"{base}/v1.0/communications/callRecords/{rid}/participants_v2?$skiptoken={token}"
                )
        if "sessions" in expand:
            items = data.get("sessions") or []
            size = page_size(request, SESSION_PAGE, SESSION_PAGE)
            with_segments = "segments" in expand["sessions"]
            body["sessions"] = [_session_view(s, with_segments) for s in items[:size]]
            if len(items) > size:
                token = encode_skiptoken({"offset": size})
                expand_q = "$expand=segments&" if with_segments else ""
                body["sessions@odata.nextLink"] = (
                    f"{base}/v1.0/communications/callRecords/{rid}/sessions?{expand_q}$skiptoken={token}"
                )
        return web.json_response(body)

    def _offset(self, request: web.Request) -> int:
        token = request.query.get("$skiptoken")
        return int(decode_skiptoken(token).get("offset", 0)) if token else 0

    async def list_sessions(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        rid = request.match_info["rid"]
        record = self._get(rid)
        expand = request.query.get("$expand", "")
        if expand and expand.strip() != "segments":
            raise bad_request(f"Unsupported $expand '{expand}' on sessions (only 'segments').")
        items = record.data.get("sessions") or []
        size = page_size(request, SESSION_PAGE, SESSION_PAGE)
        start = self._offset(request)
        base = base_url(request)
        body: dict[str, Any] = {
            "@odata.context": f"{base}/v1.0/$metadata#communications/callRecords('{rid}')/sessions",
            "value": [_session_view(s, bool(expand)) for s in items[start : start + size]],
        }
        if start + size < len(items):
            expand_q = "$expand=segments&" if expand else ""
            token = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = (
                f"{base}/v1.0/communications/callRecords/{rid}/sessions?{expand_q}$skiptoken={token}"
            )
        return web.json_response(body)

    async def list_participants(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        rid = request.match_info["rid"]
        record = self._get(rid)
        items = record.data.get("participants_v2") or []
        size = page_size(request, PARTICIPANT_PAGE, PARTICIPANT_PAGE)
        start = self._offset(request)
        base = base_url(request)
        body: dict[str, Any] = {
            "@odata.context": f"{base}/v1.0/$metadata#communications/callRecords('{rid}')/participants_v2",
            "value": copy.deepcopy(items[start : start + size]),
        }
        if start + size < len(items):
            token = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = f"{base}/v1.0/communications/callRecords/{rid}/participants_v2?$skiptoken={token}"
        return web.json_response(body)

    async def list_records(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        if "$expand" in request.query:
            raise bad_request("The list of call records does not support $expand; get each record instead.")
        predicates = parse_list_filter(request.query.get("$filter"))
        visible = [r for r in self.records.values() if self._visible(r) and all(p(r) for p in predicates)]
        visible.sort(key=lambda r: (str(r.data.get("startDateTime")), str(r.data.get("id"))))
        size = page_size(request, LIST_PAGE, LIST_PAGE)
        start = self._offset(request)
        base = base_url(request)
        value = []
        for record in visible[start : start + size]:
            item = {k: copy.deepcopy(v) for k, v in record.data.items() if k not in {"sessions", "participants_v2"}}
            if "organizer_v2" in item:
                item["organizer_v2@odata.context"] = (
                    f"{base}/v1.0/$metadata#communications/callRecords('{item['id']}')/organizer_v2/$entity"
                )
            value.append(item)
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#communications/callRecords", "value": value}
        if start + size < len(visible):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)

    async def _pstn(
        self, request: web.Request, call: str, rows: list[dict[str, Any]], inclusive_end: bool, name: str
    ) -> web.Response:
        self.identity.authorize(request, *PSTN_READ)
        args = dict(re.findall(r"(\w+)\s*=\s*'?([^,')]+)'?", call[call.index("(") :]))
        for short, full in (("from", "fromDateTime"), ("to", "toDateTime")):  # the docs' nextLink abbreviates
            if short in args and full not in args:
                args[full] = args.pop(short)
        if "fromDateTime" not in args or "toDateTime" not in args:
            raise bad_request(f"{name} needs fromDateTime and toDateTime.")
        try:
            start, end = parse_datetime(args["fromDateTime"]), parse_datetime(args["toDateTime"])
        except ValueError as error:
            raise bad_request(f"{name}: fromDateTime and toDateTime must be DateTimeOffset values.") from error
        if end < start:
            raise bad_request(f"{name}: toDateTime is before fromDateTime.")
        if end - start > PSTN_MAX_RANGE:
            raise bad_request(f"{name}: the date range cannot be more than 90 days.")
        selected = []
        for row in rows:
            try:
                when = parse_datetime(str(row.get("startDateTime")))
            except ValueError:
                continue
            if start <= when and (when <= end if inclusive_end else when < end):
                selected.append(row)
        selected.sort(key=lambda r: (str(r.get("startDateTime")), str(r.get("id"))))
        skip_raw = request.query.get("$skip", "0")
        if not skip_raw.isdigit():
            raise bad_request("$skip must be a non-negative integer.")
        skip = int(skip_raw)
        page = selected[skip : skip + PSTN_PAGE]
        kind = "pstnCallLogRow" if name == "getPstnCalls" else "directRoutingLogRow"
        body: dict[str, Any] = {
            "@odata.context": f"{base_url(request)}/v1.0/$metadata#Collection(microsoft.graph.callRecords.{kind})",
            "@odata.count": len(page),
            "value": copy.deepcopy(page),
        }
        if skip + PSTN_PAGE < len(selected):
            query = dict(request.query)
            query["$skip"] = str(skip + PSTN_PAGE)
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)

    # -- /sim -----------------------------------------------------------------------------------------
    async def sim_put(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        data = await read_json(request, max_bytes=16 * 1024 * 1024)
        if not isinstance(data, dict):
            raise bad_request("A callRecord must be a JSON object.")
        if "id" in data and str(data["id"]) != rid:
            raise bad_request(f"The body's id '{data['id']}' differs from the URL's '{rid}'.")
        stored = {
            k: v
            for k, v in data.items()
            if not (k == "@odata.context" or "@odata.nextLink" in k or k.endswith("@odata.context"))
        }
        stored["id"] = rid
        if "version" not in stored:
            existing = self.records.get(rid)
            stored["version"] = existing.version + 1 if existing else 1
        change = self.publish(stored)
        return web.json_response(
            {"id": rid, "version": stored["version"], "change": change}, status=201 if change == "created" else 200
        )

    async def sim_get(self, request: web.Request) -> web.Response:
        record = self.records.get(request.match_info["rid"])
        if record is None:
            scheduled = self.scheduled.get(request.match_info["rid"])
            if scheduled:
                return web.json_response({"id": request.match_info["rid"], "published": False, "scheduled": scheduled})
            raise GraphError(404, "NotFound", "No such call record.")
        return web.json_response(
            {
                "id": request.match_info["rid"],
                "published": True,
                "version": record.version,
                "storedAt": format_datetime(record.stored_at),
                "expired": not self._visible(record),
                "scheduled": self.scheduled.get(request.match_info["rid"], []),
                "record": record.data,
            }
        )

    async def sim_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "value": [
                    {
                        "id": rid,
                        "version": r.version,
                        "storedAt": format_datetime(r.stored_at),
                        "expired": not self._visible(r),
                    }
                    for rid, r in self.records.items()
                ],
                "scheduled": {k: v for k, v in self.scheduled.items() if v},
                "pstnRows": len(self.pstn_rows),
                "directRoutingRows": len(self.dr_rows),
            }
        )

    async def _add_rows(self, request: web.Request, target: list[dict[str, Any]]) -> web.Response:
        data = await read_json(request, max_bytes=64 * 1024 * 1024)
        rows = data.get("value") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise bad_request('Send {"value": [rows...]}.')
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or "id" not in row or "startDateTime" not in row:
                raise bad_request(f"value[{index}] needs at least id and startDateTime.")
            try:
                parse_datetime(str(row["startDateTime"]))
            except ValueError as error:
                raise bad_request(f"value[{index}].startDateTime is not a DateTimeOffset.") from error
        target.extend(rows)
        return web.json_response({"added": len(rows), "total": len(target)}, status=201)

    async def sim_add_pstn(self, request: web.Request) -> web.Response:
        return await self._add_rows(request, self.pstn_rows)

    async def sim_add_dr(self, request: web.Request) -> web.Response:
        return await self._add_rows(request, self.dr_rows)


def _session_view(session: dict[str, Any], with_segments: bool) -> dict[str, Any]:
    view = copy.deepcopy(session)
    if not with_segments:
        view.pop("segments", None)
    return view
