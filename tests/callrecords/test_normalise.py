"""The normaliser on Microsoft's documented examples, on the identity kinds, and on arbitrary payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.callrecords.fixtures import documented_record, load
from verbatim.callrecords.normalise import InvalidCallRecord, identity_of, normalise
from verbatim.contracts.callrecords import CallRecord
from verbatim.platform.times import canonical_datetime, parse_duration_ms

ABBIE = "821809f5-0000-0000-0000-3b5136c0e777"
OWEN = "f69e2c00-0000-0000-0000-185e5f5f5d8a"
TENANT = "dc368399-474c-4d40-900c-6265431fd81f"


def test_documented_basic_record_normalises_to_its_organizer_type_and_times() -> None:
    record = normalise(load("callrecord-get-basic.json"))

    assert record.id == "e523d2ed-2966-4b6b-925b-754a88034cc5"
    assert record.version == 1
    assert record.type == "peerToPeer"
    assert record.modalities == ["audio"]
    assert record.start_date_time == "2020-02-25T18:52:21.216988Z"
    assert record.end_date_time == "2020-02-25T18:52:46.764001Z"
    assert record.duration_seconds == 25.547
    assert record.organizer is not None and record.organizer.key == f"user:{ABBIE}"
    assert record.organizer.display_name == "Abbie Wilkins"
    assert record.tenant_id == TENANT  # from the organizer when the caller names no tenant
    assert record.participant_keys == [f"user:{ABBIE}"]


def test_documented_expanded_record_reads_associated_identities_user_agents_and_feedback() -> None:
    record = normalise(load("callrecord-get-expanded.json"), tenant_id="t-1")

    (session,) = record.sessions
    assert session.caller is not None and session.callee is not None
    assert session.caller.kind == "participant"
    assert session.caller.identity is not None and session.caller.identity.key == f"user:{ABBIE}"
    assert session.caller.identity.user_principal_name == "abbie.wilkins@contoso.com"
    assert session.caller.user_agent is not None
    assert (session.caller.user_agent.kind, session.caller.user_agent.platform) == ("client", "android")
    assert session.callee.feedback_rating == "poor"
    assert session.segment_count == 1
    assert session.quality.average_jitter_ms == 16.0
    assert record.tenant_id == "t-1"
    assert set(record.participant_keys) == {f"user:{ABBIE}", f"user:{OWEN}"}


def test_documented_participants_sharing_a_participant_id_stay_two_people() -> None:
    record = normalise(load("callrecord-get-participants-v2.json"))

    assert [p.key for p in record.participants] == [f"user:{ABBIE}", f"user:{OWEN}"]
    assert record.participants[1].user_principal_name == "owen.franklin@contoso.com"


def test_documented_sessions_give_a_media_quality_summary_and_join_times() -> None:
    record = normalise(documented_record())

    quality = record.sessions[0].quality
    assert quality.stream_count == 2
    assert quality.average_jitter_ms == 11.5  # mean of 16 ms and 7 ms
    assert quality.max_jitter_ms == 21.0
    assert quality.average_round_trip_time_ms == 62.5
    assert quality.max_round_trip_time_ms == 106.0
    assert quality.max_packet_loss_rate == 0.03738318
    assert quality.average_audio_degradation == 1.160898  # the null average is not a zero
    assert record.quality == quality
    owen = next(p for p in record.participants if p.id == OWEN)
    assert (owen.joined_at, owen.left_at) == ("2020-02-25T18:52:21.216988Z", "2020-02-25T18:52:46.764001Z")
    assert record.failed_session_count == 0


def test_identity_kinds_user_phone_guest_application_and_on_premises() -> None:
    assert identity_of({"user": {"id": "u1", "displayName": "U"}}).kind == "user"  # type: ignore[union-attr]
    assert identity_of({"phone": {"id": "+4930123"}}).key == "phone:+4930123"  # type: ignore[union-attr]
    assert identity_of({"guest": {"id": "g1", "displayName": "Visitor"}}).kind == "guest"  # type: ignore[union-attr]
    bot = identity_of({"application": {"id": "app1"}, "applicationInstance": {"id": "inst1"}})
    assert bot is not None and (bot.kind, bot.id) == ("application", "inst1")
    onprem = identity_of({"onPremises": {"id": "sfb1"}})
    assert onprem is not None and onprem.kind == "user" and onprem.on_premises
    # Graph often sends every member, most of them null.
    assert identity_of({"user": None, "phone": {"id": "+1555"}, "application": None}).kind == "phone"  # type: ignore[union-attr]
    assert identity_of({}) is None and identity_of(None) is None


def test_a_pstn_session_with_failed_segments_and_a_service_callee() -> None:
    raw = {
        "id": "pstn-call",
        "version": 3,
        "type": "peerToPeer",
        "startDateTime": "2024-05-01T10:00:00+02:00",
        "endDateTime": "2024-05-01T10:05:00+02:00",
        "participants_v2": [
            {"id": "p1", "identity": {"user": {"id": "u1", "displayName": "Trader"}}},
            {"id": "p2", "identity": {"phone": {"id": "+441234567890"}}},
        ],
        "sessions": [
            {
                "id": "s1",
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": "u1"}},
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                    "userAgent": {
                        "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                        "role": "mediationServer",
                    },
                },
                "failureInfo": {"reason": "Call dropped", "stage": "midcall"},
                "segments": [{"id": "a", "failureInfo": {"stage": "callSetup"}}, {"id": "b"}],
            }
        ],
    }
    record = normalise(raw)

    assert record.start_date_time == "2024-05-01T08:00:00.000000Z"  # offsets become UTC
    (session,) = record.sessions
    assert session.callee is not None and session.callee.kind == "service"
    assert session.callee.user_agent is not None and session.callee.user_agent.role == "mediationServer"
    assert session.failure_info is not None and session.failure_info.stage == "midcall"
    assert [f.stage for f in session.segment_failures] == ["callSetup"]
    assert record.failed_session_count == 1
    assert record.participant_keys == ["user:u1", "phone:+441234567890"]


def test_a_record_without_an_id_is_invalid() -> None:
    import pytest

    with pytest.raises(InvalidCallRecord):
        normalise({"version": 1})


def test_durations_and_datetimes_parse_graph_forms() -> None:
    assert parse_duration_ms("PT0.016S") == 16.0
    assert parse_duration_ms("PT1M2.5S") == 62500.0
    assert parse_duration_ms("P1DT1H") == 90_000_000.0
    assert parse_duration_ms("PT") is None and parse_duration_ms("16ms") is None and parse_duration_ms(16) is None
    assert canonical_datetime("0001-01-01T00:00:00Z") is None
    assert canonical_datetime("2019-11-01T00:00:25.105Z") == "2019-11-01T00:00:25.105000Z"
    assert canonical_datetime("2019-11-01T00:00:25.1234567-0130") == "2019-11-01T01:30:25.123456Z"
    assert canonical_datetime("yesterday") is None


# --- properties over arbitrary payloads -------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
graph_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
identity_members = st.sampled_from(
    ["user", "phone", "guest", "application", "applicationInstance", "onPremises", "acsUser"]
)
identity_sets = st.dictionaries(
    identity_members,
    st.none() | st.fixed_dictionaries({"id": st.text(min_size=1, max_size=10)}, optional={"displayName": json_scalars}),
    max_size=3,
)
endpoints = st.fixed_dictionaries(
    {},
    optional={
        "@odata.type": st.sampled_from(
            ["#microsoft.graph.callRecords.participantEndpoint", "#microsoft.graph.callRecords.serviceEndpoint"]
        ),
        "identity": identity_sets | json_values,
        "userAgent": json_values,
    },
)
streams = st.fixed_dictionaries(
    {},
    optional={
        "averageJitter": st.sampled_from(["PT0.016S", "PT1S", "bad"]) | json_scalars,
        "averagePacketLossRate": json_scalars,
        "averageAudioDegradation": json_scalars,
        "audioCodec": json_scalars,
    },
)
sessions = st.fixed_dictionaries(
    {},
    optional={
        "id": json_scalars,
        "caller": endpoints | json_values,
        "callee": endpoints | json_values,
        "startDateTime": graph_datetimes | json_scalars,
        "endDateTime": graph_datetimes | json_scalars,
        "failureInfo": json_values,
        "segments": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "media": st.lists(
                        st.fixed_dictionaries({}, optional={"streams": st.lists(streams, max_size=3)}), max_size=2
                    ),
                    "failureInfo": json_values,
                },
            ),
            max_size=3,
        ),
    },
)
call_records = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=40)},
    optional={
        "version": st.integers(-3, 2**40) | json_scalars,
        "type": json_scalars,
        "modalities": st.lists(json_scalars, max_size=5) | json_values,
        "startDateTime": graph_datetimes | json_scalars,
        "endDateTime": graph_datetimes | json_scalars,
        "organizer_v2": st.fixed_dictionaries({"identity": identity_sets}) | json_values,
        "participants_v2": st.lists(st.fixed_dictionaries({"identity": identity_sets}) | json_values, max_size=6),
        "participants": st.lists(identity_sets, max_size=3),
        "sessions": st.lists(sessions | json_values, max_size=4),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call_records)
def test_any_payload_with_an_id_normalises_to_a_valid_storable_record(raw: dict[str, Any]) -> None:
    record = normalise(raw)

    assert record.id == raw["id"]
    assert record.version >= 0
    # It survives the trip through JSON (Cosmos, the queue, the API) unchanged.
    wire = record.model_dump_json(by_alias=True)
    json.loads(wire)
    assert CallRecord.model_validate_json(wire) == record
    # Participants are unique identities, and the query keys are exactly theirs.
    assert len({p.key for p in record.participants}) == len(record.participants)
    assert record.participant_keys == [p.key for p in record.participants]
    for stamp in [record.start_date_time, record.end_date_time] + [s.start_date_time for s in record.sessions]:
        assert stamp is None or canonical_datetime(stamp) == stamp


@settings(max_examples=200, deadline=None)
@given(call_records)
def test_normalising_is_deterministic_and_ignores_key_order(raw: dict[str, Any]) -> None:
    reordered = dict(reversed(list(raw.items())))
    assert normalise(raw) == normalise(reordered)


@settings(max_examples=200, deadline=None)
@given(call_records, st.integers(0, 2**40))
def test_the_version_is_graphs_version_when_it_is_a_non_negative_integer(raw: dict[str, Any], version: int) -> None:
    assert normalise({**raw, "version": version}).version == version
