"""Parsing the platform's signalling payloads: documented shapes, tolerance, and never a crash."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.testkit.teams_platform import FakePlatform
from recorder_vm.notifications import Call, CallUpdate, OtherUpdate, RosterUpdate, parse_notifications
from recorder_vm.roster import Roster, call_type_of, direction_of, observed_user, policy_of
from tests.recorder.documented import documented_invitation
from verbatim.platform.errors import InvalidInput

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
CALL_STATES = ["incoming", "establishing", "established", "terminating", "terminated"]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_document_parses_or_is_refused_as_invalid_input(document: Any) -> None:
    with contextlib.suppress(InvalidInput):
        parse_notifications(json.dumps(document))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_as_invalid_input(body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_notifications(body)


extra_fields = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYZ", min_size=3, max_size=10).map(lambda name: "zz" + name),
    json_values,
    max_size=3,
)


@st.composite
def call_notifications(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    expected: list[tuple[str, str]] = []
    items = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        call_id = draw(st.uuids()).hex
        state = draw(st.sampled_from(CALL_STATES))
        data = {"@odata.type": "#microsoft.graph.call", "id": call_id, "state": state, **draw(extra_fields)}
        resource_data: Any = [data] if draw(st.booleans()) else data
        item = {
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": draw(st.sampled_from(["created", "updated", "deleted"])),
            "resourceUrl": f"/communications/calls/{call_id}",
            "resource": f"/app/calls/{call_id}",
            "resourceData": resource_data,
            **draw(extra_fields),
        }
        items.append(item)
        expected.append((call_id, state))
    single = len(items) == 1 and draw(st.booleans())
    document = items[0] if single else {"@odata.type": "#microsoft.graph.commsNotifications", "value": items}
    return document, expected


@settings(max_examples=200, deadline=None)
@given(call_notifications())
def test_call_notifications_single_or_batched_object_or_array_with_unknown_fields(
    case: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    document, expected = case
    updates = parse_notifications(json.dumps(document))
    assert [(u.call_id, u.call.state) for u in updates if isinstance(u, CallUpdate)] == expected


def test_the_test_platforms_policy_recording_invitation_is_understood() -> None:
    body = _invitation()
    (update,) = parse_notifications(json.dumps(body))
    assert isinstance(update, CallUpdate) and update.change_type == "created"
    call = update.call
    assert call.state == "incoming" and call.incoming_context is not None
    assert observed_user(call).upn == "ada@contoso.example"
    assert observed_user(call).participant_id == "observed-participant"
    assert direction_of(call) == "outbound" and call_type_of(call) == "peerToPeer"
    assert policy_of(call).identifier == "Traders strict"
    assert policy_of(call).invite_reasons == ["PolicyBasedRecording"]


def test_application_metadata_sent_as_json_text_is_read_too() -> None:
    body = _invitation()
    data = body["value"][0]["resourceData"]
    data["applicationMetadata"] = json.dumps(data["applicationMetadata"])
    (update,) = parse_notifications(json.dumps(body))
    assert isinstance(update, CallUpdate) and policy_of(update.call).identifier == "Traders strict"


def test_roster_operations_and_other_resources() -> None:
    body = {
        "value": [
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/c1/participants",
                "resourceData": [{"id": "p1", "info": {"identity": {"phone": {"id": "+15550100"}}}}],
            },
            {"changeType": "updated", "resourceUrl": "/communications/calls/c1/operations/op1", "resourceData": {}},
            {"changeType": "created", "resourceUrl": "/communications/calls/c1/contentsharingsessions/s1"},
            {"changeType": "updated", "resourceUrl": "/somewhere/else"},
        ]
    }
    updates = parse_notifications(json.dumps(body))
    assert isinstance(updates[0], RosterUpdate) and updates[0].participants[0].id == "p1"
    assert [type(update) for update in updates[1:]] == [OtherUpdate, OtherUpdate, OtherUpdate]


def _participant(pid: str, *, seq: int | None = None, removed: bool = False, source: str = "1") -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": pid,
        "info": {"identity": {"user": {"id": f"user-{pid}", "displayName": pid}}},
        "mediaStreams": [{"mediaType": "audio", "sourceId": source, "direction": "sendReceive"}],
    }
    if seq is not None:
        data["rosterSequenceNumber"] = seq
    if removed:
        data["removedState"] = {"reason": "left"}
    return data


def _roster(*participants: dict[str, Any]) -> Any:
    (update,) = parse_notifications(json.dumps(FakePlatform.roster_notification("c1", list(participants))))
    assert isinstance(update, RosterUpdate)
    return update.participants


NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_full_rosters_replace_and_report_joins_and_leaves_but_never_go_back_in_time() -> None:
    roster = Roster(delta=False)
    first = roster.apply(_roster(_participant("a", seq=1), _participant("b", seq=1)), NOW)
    assert sorted(first.joined) == ["a", "b"] and not first.left
    second = roster.apply(_roster(_participant("a", seq=3), _participant("c", seq=3)), NOW)
    assert second.joined == ["c"] and second.left == ["b"]
    stale = roster.apply(_roster(_participant("a", seq=2), _participant("b", seq=2)), NOW)
    assert not stale.any
    assert sorted(p.participant_id for p in roster.participants) == ["a", "c"]


def test_delta_rosters_add_update_and_remove_in_sequence_order() -> None:
    roster = Roster(delta=True)
    roster.apply(_roster(_participant("a", seq=1), _participant("b", seq=1)), NOW)
    change = roster.apply(_roster(_participant("b", seq=2, removed=True)), NOW)
    assert change.left == ["b"]
    late = roster.apply(_roster(_participant("b", seq=1)), NOW)  # older than the removal
    assert not late.any
    moved = roster.apply(_roster(_participant("a", seq=3, source="7")), NOW)
    assert moved.changed == ["a"]
    assert [p.source_ids for p in roster.participants] == [[7]]


@pytest.mark.parametrize("kind", ["phone", "guest", "applicationInstance", "encrypted"])
def test_identity_kinds_are_kept(kind: str) -> None:
    participant = {"id": "x", "info": {"identity": {kind: {"id": "+4420" if kind == "phone" else "id-x"}}}}
    roster = Roster(delta=False)
    roster.apply(_roster(participant), NOW)
    (entry,) = roster.participants
    assert entry.identity.kind == kind
    assert entry.is_recorder == (kind == "applicationInstance")
    assert (entry.phone_number is not None) == (kind == "phone")


def _invitation() -> dict[str, Any]:
    return FakePlatform.incoming_notification("call-1")


def _documented_call(**incoming_context: Any) -> Call:
    body = documented_invitation()  # Microsoft's published example (tests/fixtures/graph/calls)
    body["value"][0]["resourceData"]["incomingContext"].update(incoming_context)
    (update,) = parse_notifications(json.dumps(body))
    assert isinstance(update, CallUpdate)
    return update.call


def test_the_documented_policy_recording_invitation_identifies_the_observed_user() -> None:
    # In the example `source.id` differs from `observedParticipantId`; `sourceParticipantId` equals it, which
    # is what makes `source` the observed participant (PolicyRecordingBot, PlatformCallController.cs).
    call = _documented_call()
    observed = observed_user(call)
    assert observed.id == "8A34A46B-3D17-4ADC-8DCE-DC4E7D572698"
    assert observed.tenant_id == "932899f8-2ea1-4604-8413-27bd2892079f"
    assert observed.participant_id == "30fad2ce-8989-41a1-8a66-f6636e629a2a"
    assert (observed.upn, observed.display_name, observed.phone_number) == (None, None, None)
    assert direction_of(call) == "inbound" and call_type_of(call) == "peerToPeer"
    assert policy_of(call).identifier == "Test Policy"
    assert policy_of(call).paired_recorders == ["371f0300-2c1f-4d99-b5f4-2722e877d490"]


def test_names_the_invitation_leaves_out_come_from_the_roster() -> None:
    call = _documented_call()
    roster = Roster(delta=False)
    roster.apply(
        _roster(
            {
                "id": "30fad2ce-8989-41a1-8a66-f6636e629a2a",
                "info": {
                    "identity": {
                        "user": {
                            "id": "8A34A46B-3D17-4ADC-8DCE-DC4E7D572698",
                            "displayName": "Test User",
                            "userPrincipalName": "test.user@contoso.example",
                        }
                    }
                },
            }
        ),
        NOW,
    )
    observed = observed_user(call, roster)
    assert (observed.id, observed.display_name, observed.upn) == (
        "8A34A46B-3D17-4ADC-8DCE-DC4E7D572698", "Test User", "test.user@contoso.example",
    )  # fmt: skip


def test_a_delegated_call_is_recorded_for_the_user_it_is_on_behalf_of() -> None:
    # incomingContext.onBehalfOf: "The identity that the call is happening on behalf of" (Graph v1.0,
    # incomingContext); the sample evaluates `onBehalfOf ?? source.identity` for the observed participant, and
    # RecordReroutedCalls records calls re-routed (delegation among them) from the compliance-recording user.
    principal = {"user": {"id": "b0550000-0000-4000-8000-000000000001"}}
    delegate_leg = {
        "id": "30fad2ce-8989-41a1-8a66-f6636e629a2a",
        "info": {"identity": {"user": {"id": "8A34A46B-3D17-4ADC-8DCE-DC4E7D572698", "displayName": "Delegate"}}},
    }
    roster = Roster(delta=False)
    roster.apply(_roster(delegate_leg), NOW)
    observed = observed_user(_documented_call(onBehalfOf=principal), roster)
    assert observed.id == "b0550000-0000-4000-8000-000000000001"
    assert observed.display_name is None  # the delegate's name is not the principal's
    assert observed.participant_id == "30fad2ce-8989-41a1-8a66-f6636e629a2a"  # the delegate's leg is observed
    assert observed.tenant_id == "932899f8-2ea1-4604-8413-27bd2892079f"

    # The same when `source.id` happens to equal the observed participant (the test platform's invitation).
    body = _invitation()
    body["value"][0]["resourceData"]["incomingContext"]["onBehalfOf"] = principal
    (update,) = parse_notifications(json.dumps(body))
    assert isinstance(update, CallUpdate)
    assert observed_user(update.call).id == "b0550000-0000-4000-8000-000000000001"


def test_a_source_that_is_not_the_observed_participant_does_not_name_the_observed_user() -> None:
    # Microsoft's sample notes this "should never happen" for compliance-recording calls; if it does, the
    # source's identity is someone else's and must not be recorded as the observed user's.
    call = _documented_call(sourceParticipantId="someone-else")
    observed = observed_user(call)
    assert observed.id is None and observed.participant_id == "30fad2ce-8989-41a1-8a66-f6636e629a2a"


def test_enums_from_the_platform_are_read_case_insensitively() -> None:
    # The calling SDK's documentation prints call states capitalised ("Established"); Graph sends camelCase.
    body = {
        "value": [
            {
                "changeType": "Updated",
                "resourceUrl": "/communications/calls/c1",
                "resourceData": {"state": "Established"},
            },
            {
                "changeType": "DELETED",
                "resourceUrl": "/communications/calls/c2",
                "resourceData": {"state": "TERMINATED"},
            },
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/c3",
                "resourceData": {"state": "TransferAccepted"},
            },
        ]
    }
    updates = parse_notifications(json.dumps(body))
    assert [(u.change_type, u.call.state) for u in updates if isinstance(u, CallUpdate)] == [
        ("updated", "established"), ("deleted", "terminated"), ("updated", "transferAccepted"),
    ]  # fmt: skip


def test_unknown_states_and_change_types_are_kept_for_the_log_not_refused() -> None:
    body = {
        "value": [
            {"changeType": "updated", "resourceUrl": "/communications/calls/c1", "resourceData": {"state": "parked"}},
            {
                "changeType": "replaced",
                "resourceUrl": "/communications/calls/c1",
                "resourceData": {"state": "incoming"},
            },
        ]
    }
    first, second = parse_notifications(json.dumps(body))
    assert isinstance(first, CallUpdate) and first.call.state == "parked"
    assert isinstance(second, OtherUpdate) and second.change_type == "replaced"


def test_a_capitalised_media_type_still_names_the_audio_source() -> None:
    participant = _participant("a", source="7")
    participant["mediaStreams"][0]["mediaType"] = "Audio"
    roster = Roster(delta=False)
    roster.apply(_roster(participant), NOW)
    assert [p.source_ids for p in roster.participants] == [[7]]
