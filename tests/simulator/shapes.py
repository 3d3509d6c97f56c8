"""Field-by-field comparison of the simulator's payloads with Microsoft's documented examples.

Every property of the example must be present in ours with a compatible JSON type (a ``null`` in the
example accepts any type; ``@odata.type`` values must match). Properties we add beyond the example are
reported separately so a test can check them against the resource's documented property list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph"


def fixture(name: str) -> Any:
    data = json.loads((FIXTURES / name).read_text())
    if isinstance(data, dict):
        data.pop("_source", None)
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def missing_or_mistyped(
    ours: Any,
    theirs: Any,
    path: str = "$",
    *,
    lenient: dict[str, set[str]] | None = None,
    optional: frozenset[str] = frozenset(),
) -> list[str]:
    """What the example has that ours lacks or types differently. ``lenient`` maps a property name to
    extra JSON types accepted for it (for example Int32 codes that the example prints as strings);
    ``optional`` names properties the example shows for a situation ours is not in (say, delegation)."""
    lenient = lenient or {}
    problems: list[str] = []
    if theirs is None:
        return problems
    expected, actual = _kind(theirs), _kind(ours)
    name = path.rsplit(".", 1)[-1]
    if expected != actual and actual not in lenient.get(name, set()):
        return [f"{path}: example has {expected}, simulator has {actual}"]
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            if key.endswith("@odata.nextLink") or key.endswith("@odata.context") or key == "@odata.count":
                continue  # paging annotations: present only when the data calls for them
            if key not in ours:
                if key not in optional:
                    problems.append(f"{path}.{key}: missing")
                continue
            if key == "@odata.type" and str(ours[key]).lower() != str(value).lower():
                problems.append(f"{path}.@odata.type: example {value!r}, simulator {ours[key]!r}")
                continue
            problems += missing_or_mistyped(ours[key], value, f"{path}.{key}", lenient=lenient, optional=optional)
    elif isinstance(theirs, list) and theirs and ours:
        for index, item in enumerate(ours):
            example = theirs[min(index, len(theirs) - 1)]
            problems += missing_or_mistyped(item, example, f"{path}[{index}]", lenient=lenient, optional=optional)
    return problems


def extra_names(ours: Any, theirs: Any) -> set[str]:
    """Property names the simulator sends that the example does not show (anywhere in the tree)."""
    names: set[str] = set()
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key, value in ours.items():
            if key not in theirs:
                names.add(key)
                names |= _all_names(value)
            else:
                names |= extra_names(value, theirs[key])
    elif isinstance(ours, list) and isinstance(theirs, list) and theirs:
        for index, item in enumerate(ours):
            names |= extra_names(item, theirs[min(index, len(theirs) - 1)])
    return names


def extra_paths(ours: Any, theirs: Any, path: str = "$") -> set[str]:
    """Property paths (``$.a.b``; list items as ``[]``) the simulator sends that the example does not have:
    the field-by-field counterpart of `missing_or_mistyped`."""
    paths: set[str] = set()
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key, value in ours.items():
            if key not in theirs:
                paths.add(f"{path}.{key}")
            else:
                paths |= extra_paths(value, theirs[key], f"{path}.{key}")
    elif isinstance(ours, list) and isinstance(theirs, list) and theirs:
        for index, item in enumerate(ours):
            paths |= extra_paths(item, theirs[min(index, len(theirs) - 1)], f"{path}[]")
    return paths


def _all_names(value: Any) -> set[str]:
    if isinstance(value, dict):
        out = set(value)
        for item in value.values():
            out |= _all_names(item)
        return out
    if isinstance(value, list):
        out: set[str] = set()
        for item in value:
            out |= _all_names(item)
        return out
    return set()


# Documented properties (Graph v1.0 resource pages) that our payloads may carry beyond an example.
DOCUMENTED = {
    # callRecord, session, segment, endpoints, media
    "joinWebUrl",
    "organizer",
    "participants",
    "participants_v2",
    "administrativeUnitInfos",
    "failureInfo",
    "identity",
    "associatedIdentity",
    "feedback",
    "tokens",
    "rating",
    "cpuName",
    "cpuCoresCount",
    "cpuProcessorSpeedInMhz",
    "name",
    "caller",
    "callee",
    "segments",
    "userPrincipalName",
    "phone",
    "guest",
    "calleeNetwork",
    "calleeDevice",
    "callerNetwork",
    "callerDevice",
    "connectionType",
    "port",
    "reflexiveIPAddress",
    "relayIPAddress",
    "relayPort",
    "startDateTime",
    "endDateTime",
    "audioCodec",
    "wasMediaBypassed",
    "maxJitter",
    "averagePacketLossRate",
    "maxPacketLossRate",
    "averageRatioOfConcealedSamples",
    "maxRatioOfConcealedSamples",
    "averageRoundTripTime",
    "maxRoundTripTime",
    "packetUtilization",
    "averageBandwidthEstimate",
    "averageAudioNetworkJitter",
    "maxAudioNetworkJitter",
    "rmsFreezeDuration",
    "averageFreezeDuration",
    "isAudioForwardErrorCorrectionUsed",
    "@odata.type",
    "role",
    "stage",
    "reason",
    "userAgent",
    "headerValue",
    "platform",
    "productFamily",
    "id",
    "displayName",
    "tenantId",
    "user",
    "sessions",
    "media",
    "label",
    "streams",
    "streamId",
    "streamDirection",
    "averageJitter",
    "averageAudioDegradation",
    "ipAddress",
    "subnet",
    "linkSpeed",
    "captureDeviceName",
    "renderDeviceName",
    "modalities",
    "isTest",
    "receivedSignalLevel",
    "receivedNoiseLevel",
    "initialSignalLevelRootMeanSquare",
    "micGlitchRate",
    "speakerGlitchRate",
    "renderZeroVolumeEventRatio",
    "renderMuteEventRatio",
    "captureDeviceDriver",
    "renderDeviceDriver",
    "macAddress",
    "dnsSuffix",
    "sentQualityEventRatio",
    "receivedQualityEventRatio",
    "delayEventRatio",
    "bandwidthLowEventRatio",
    "NoSound",
    "OtherNoSound",
    "Echo",
    "Noisy",
    "LowVolume",
    "Stopped",
    "DistortedSound",
    "Interruptions",
    # call, participantInfo, participant, mediaStream, chatInfo
    "countryCode",
    "chatInfo",
    "threadId",
    "messageId",
    "requestedModalities",
    "languageId",
    "region",
    "recordingInfo",
    "removedState",
    "metadata",
    "rosterSequenceNumber",
    "initiator",
    "recordingStatus",
    "transferor",
    "onBehalfOf",
    "applicationInstance",
    "identityProvider",
}
