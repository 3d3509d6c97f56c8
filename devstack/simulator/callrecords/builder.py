"""Building a Graph callRecord from a finished call's facts: sessions, segments with media streams,
networks and devices (quality telemetry from version 2 on, as clients upload it after the call),
``participants_v2`` and ``organizer_v2``; deterministic per record and version."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import datetime
from typing import Any

from ..odata import format_datetime, iso_duration
from .facts import CallFacts, PartyFacts


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


def _union(*modalities: list[str]) -> list[str]:
    """The modalities of several sessions, each once, in Graph's enum order."""
    order = ("audio", "video", "videoBasedScreenSharing", "data", "screenSharing")
    found = {m for group in modalities for m in group}
    return sorted(found, key=lambda m: order.index(m) if m in order else len(order)) or ["audio"]


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
                "modalities": _union(a.modalities, b.modalities),
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
                    "modalities": list(p.modalities),
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
        "modalities": _union(*(p.modalities for p in facts.parties)),
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
