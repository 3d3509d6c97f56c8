"""The data flow of a recorded call, across the whole local stack: the Teams/Graph simulator places calls,
the real recorder answers and captures them, the local Functions host runs `function_app.py` (lifecycle
orchestration, call-record webhook and ingestion, reconciliation, compliance API) against Azurite and the
Cosmos emulator. Nothing is faked: these tests drive the same processes `verbatim-dev up` starts.

One stack serves the module: the demo of `verbatim-dev up --demo` runs once (five calls, including a call the
strict policy blocks and a recorder SIGKILLed mid-call), then a call survives a restart of the Functions host.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.demo import (
    AUDITOR,
    CORA,
    NED,
    OFFICER,
    SHARE,
    TARA,
    TOM,
    UNA,
    DemoResult,
    DemoStack,
    Scenario,
    play,
    scenarios,
    wait_until,
)
from devstack.emulators import REPO_ROOT
from devstack.funchost.state import load_or_create_keys
from devstack.simulator.video import pattern_rgb, read_timecode
from devstack.stack import WITNESS_NAME, StackConfig, StackPorts, app_environment, restart, running
from devstack.testkit.probe import ffprobe
from tests.exports.test_package import flip, run_verifier
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.contracts.evidence import RecordingManifest
from verbatim.evidence.seal import manifest_blob_name
from verbatim.ledger.log.anchors import TIME_STAMP_SUFFIX
from verbatim.ledger.log.maintenance import checkpoint_name
from verbatim.platform.layout import LEDGER_ANCHORS_BLOBS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

SAMPLE_RATE = 16_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    config = StackConfig(state_dir=tmp_path_factory.mktemp("e2e") / "state", ports=StackPorts.free())
    with running(config, echo=lambda _: None) as components:
        demo_stack = DemoStack(config, components, echo=lambda _: None)
        try:
            yield demo_stack
        finally:
            demo_stack.close()


@pytest.fixture(scope="module")
def demo(stack: DemoStack) -> DemoResult:
    return play(stack)


def recordings_container(stack: DemoStack) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    return service.get_container_client("recordings")


def detail(stack: DemoStack, recording_id: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.api(f"/recordings/{recording_id}", AUDITOR)
    return found


def decode(flac: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    """PyAV, not soundfile: the recorder's FLAC stream header carries no totals (it is written as it goes)."""
    with av.open(io.BytesIO(flac), mode="r") as container:
        stream = container.streams.audio[0]
        assert stream.rate == SAMPLE_RATE and stream.channels == 1
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    return np.concatenate(frames).astype(np.int16)


def verify(stack: DemoStack, recording_id: str) -> subprocess.CompletedProcess[str]:
    """`verbatim verify <id>` as an operator runs it, with the stack's app settings in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "verify", recording_id],
        env={**os.environ, **app_environment(stack.config)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- (a) one recorded call, all the way -------------------------------------------------------------------------


def test_a_traders_call_is_answered_in_time_recorded_sealed_ingested_verified_and_judged_recorded(
    stack: DemoStack, demo: DemoResult
) -> None:
    call = demo.call("voip")
    assert call.outcome == "ended"
    assert call.answer_ms and max(call.answer_ms) < 5000, call.answer_ms  # the policy-recording answer window

    verdict = call.verdict_of(TOM)
    assert verdict is not None and verdict["verdict"] == "recorded", verdict
    assert verdict["callId"] == call.call_id and len(verdict["recordingIds"]) == 1
    (recording_id,) = verdict["recordingIds"]

    found = detail(stack, recording_id)
    assert found["recording"]["status"] == "sealed" and not found["recording"]["interrupted"]
    assert found["manifestMatchesLedger"] is True

    # The sealed manifest is in Azurite beside the media, and the evidence decodes to the call's audio.
    container = recordings_container(stack)
    evidence_name = RecordingManifest.model_validate(found["manifest"]).track().blob_name
    manifest = RecordingManifest.model_validate_json(
        container.download_blob(manifest_blob_name(evidence_name)).readall()
    )
    assert manifest.recording_id == recording_id and manifest.call_chain_id == call.call_id
    # The evidence is sealed alone (manifest v2) and the verdict decided from it; the access copy is made and sealed
    # after it, in its own right, by an access-copy manifest naming this manifest's hash.
    assert manifest.status == "complete" and manifest.access_copy is None and manifest.access_sealed_separately
    copies = wait_until(
        lambda: detail(stack, recording_id).get("accessManifest"), 300, "the access copy sealed after the evidence"
    )
    assert copies["access_copy"]["source_sha256"] == manifest.track().sha256
    assert copies["recording_manifest"]["sha256"] == found["manifestSha256"]
    track = manifest.track()
    audio = decode(container.download_blob(track.blob_name).readall())
    assert len(audio) == track.samples
    # Media from before Teams accepted the `recording` status is not kept (call: updateRecordingStatus).
    expected = call.media_seconds - call.before_recording_seconds
    assert abs(len(audio) / SAMPLE_RATE - expected) <= 0.1, (len(audio) / SAMPLE_RATE, expected)
    assert np.abs(audio.astype(np.int32)).max() > 1000  # speech, not silence

    # The call record was ingested (through the Graph change notification and the queue trigger).
    record = stack.api(f"/calls/{call.call_id}", AUDITOR)
    assert record["id"] == call.call_id
    assert TOM in str(record)

    checked = verify(stack, recording_id)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VERIFIED" in checked.stdout


# --- (b) every demo scenario ends with the verdict it must --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "user"),
    [(key, expected.user) for key, scenario in scenarios().items() for expected in scenario.expected],
)
def test_each_demo_scenario_ends_with_the_right_verdict(demo: DemoResult, key: str, user: str) -> None:
    call = demo.call(key)
    expected = next(e for e in call.scenario.expected if e.user == user)
    verdict = call.verdict_of(user)
    assert verdict is not None, call.verdicts
    assert verdict["verdict"] == expected.verdict, verdict
    if expected.reason is not None:
        assert verdict["reason"] == expected.reason, verdict


def test_a_call_the_strict_policy_blocks_is_missing_with_the_recorders_refusal_as_reason(demo: DemoResult) -> None:
    call = demo.call("blocked")
    assert call.outcome == "blockedByPolicy"
    verdict = call.verdict_of(TARA)
    assert verdict is not None
    assert verdict["callBlocked"] is True and verdict["recordingIds"] == []
    assert "rejected" in verdict["reasonDetail"] and "RequiredBeforeCallEstablishment" in verdict["reasonDetail"]


def test_a_recorder_killed_mid_call_leaves_a_salvaged_sealed_recording_and_a_partial_verdict(
    stack: DemoStack, demo: DemoResult
) -> None:
    call = demo.call("crash")
    assert call.outcome == "ended"  # the advisory policy lets the call go on without the recorder
    verdict = call.verdict_of(NED)
    assert verdict is not None and verdict["verdict"] == "partial"
    assert 0.05 < verdict["coverage"] < 0.9 and verdict["gaps"], verdict
    (recording_id,) = verdict["recordingIds"]
    found = detail(stack, recording_id)
    assert found["recording"]["status"] == "sealed" and found["recording"]["interrupted"] is True
    manifest = RecordingManifest.model_validate(found["manifest"])
    assert manifest.salvaged and manifest.status == "interrupted"
    # What was staged before the kill is evidence like any other: it verifies.
    checked = verify(stack, recording_id)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_pstn_call_is_recorded_with_the_external_number_among_the_participants(
    stack: DemoStack, demo: DemoResult
) -> None:
    call = demo.call("pstn")
    (recording_id,) = call.verdict_of(TARA)["recordingIds"]  # type: ignore[index]
    found = detail(stack, recording_id)
    assert found["recording"]["status"] == "sealed"
    assert "+442079460999" in {p.get("phoneNumber") for p in found["recording"]["participants"]}


def test_the_meeting_records_each_policy_user_including_the_one_who_joined_late_and_left_early(
    demo: DemoResult,
) -> None:
    call = demo.call("meeting")
    tom, tara = call.verdict_of(TOM), call.verdict_of(TARA)
    assert tom is not None and tara is not None
    assert tom["recordingIds"] and tara["recordingIds"] and set(tom["recordingIds"]).isdisjoint(tara["recordingIds"])
    # Tara was in the meeting from about 2 s to 9 s of its 12 s.
    assert 5.0 < tara["presence"]["seconds"] < 9.0, tara["presence"]


def download_video_copy(stack: DemoStack, recording_id: str, reason: str, stream: str | None = None) -> bytes:
    """The MP4 access copy through the compliance API (`?copy=video`, or one stream's own copy with `&stream=`),
    range after range, as a player reads it."""
    received = bytearray()
    while True:
        response = stack.http.get(
            f"{stack.config.functions_url}/api/v1/recordings/{recording_id}/media",
            params={"copy": "video", **({"stream": stream} if stream else {})},
            headers={
                "Authorization": f"Bearer {stack.token(OFFICER)}",
                "X-Access-Reason": reason,
                "Range": f"bytes={len(received)}-",
            },
        )
        assert response.status_code == 206 and response.headers["Content-Type"] == "video/mp4", response.text[:300]
        received += response.content
        total = int(response.headers["Content-Range"].rsplit("/", 1)[1])
        if len(received) >= total:
            return bytes(received)


def test_the_demo_meetings_access_copy_plays_its_audio_cameras_and_screen_share_on_the_calls_timeline(
    stack: DemoStack, demo: DemoResult, tmp_path: Path
) -> None:
    call = demo.call("meeting")
    verdict = call.verdict_of(TOM)
    assert verdict is not None and verdict["verdict"] == "recorded", verdict
    (recording_id,) = verdict["recordingIds"]
    # The verdict comes from the evidence seal; the copies are sealed after it (until then: 409, accessReady false).
    found = wait_until(
        lambda: (d := detail(stack, recording_id))["media"]["accessReady"] and d, 300, "the access copies sealed"
    )
    manifest = RecordingManifest.model_validate(found["manifest"])
    assert found["media"]["video"].endswith("?copy=video")
    assert [v.kind for v in manifest.video][:1] == ["screenShare"] and "camera" in {v.kind for v in manifest.video}
    assert any(line.startswith("screen share (Una") for line in call.streams[recording_id])  # the demo's summary

    path = tmp_path / "meeting.mp4"
    path.write_bytes(download_video_copy(stack, recording_id, "e2e: the demo meeting with video"))
    probe = ffprobe(path)
    streams = probe["streams"]
    assert [s["codec_name"] for s in streams] == ["opus"] + ["h264"] * len(manifest.video)
    # The audio lasts as long as the call was recorded (media before the `recording` status is not kept).
    recorded = call.media_seconds - call.before_recording_seconds
    assert abs(float(streams[0]["duration"]) - recorded) <= 0.2, (streams[0]["duration"], recorded)
    # Tom's camera was on to the end: its track ends with the call.
    tom_camera_participant = manifest.observed_user.participant_id  # type: ignore[union-attr]
    tom_camera = next(
        s
        for s, v in zip(streams[1:], manifest.video, strict=True)
        if v.kind == "camera" and v.participant_id == tom_camera_participant
    )
    camera_end = float(tom_camera["start_time"]) + float(tom_camera["duration"])
    assert abs(camera_end - recorded) <= 0.2, (camera_end, recorded)
    # The screen-share track covers exactly the sharing interval, on the call's timeline.
    state = stack.call_state(call)
    established = state["conversations"][0]["establishedAt"]
    assert manifest.started_at is not None
    offset = (manifest.started_at - datetime.fromisoformat(established)).total_seconds()
    screen = streams[1]
    start = float(screen["start_time"])
    assert abs(start + offset - SHARE[0]) <= 1.0, (start, offset)
    assert abs(start + float(screen["duration"]) + offset - SHARE[1]) <= 1.0, (screen["duration"], offset)
    # A frame sampled from the copy shows, burned in, the moment of the call at which the copy places it.
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time is not None and frame.time > start + 1.0:
                shown = read_timecode(frame.to_ndarray(format="gray"))
                assert abs(shown - (frame.time + offset)) < 0.05, (shown, frame.time, offset)
                break
        else:
            pytest.fail("no frame after the first second of the share")
    # Tom's camera on its own (the player's camera switch): the call's audio and his camera alone, his picture (the
    # pattern painted in the colour the simulator seeds with his name, his UPN in the demo) showing the moment it is
    # placed at.
    tom_video = next(v for v in manifest.video if v.kind == "camera" and v.participant_id == tom_camera_participant)
    (link,) = [s for s in found["media"]["videoStreams"] if s["track"] == tom_video.track]
    own = tmp_path / "tom.mp4"
    own.write_bytes(download_video_copy(stack, recording_id, "e2e: Tom's camera", stream=link["track"]))
    with av.open(str(own)) as container:
        assert [s.type for s in container.streams] == ["audio", "video"]
        assert abs(float(container.streams.audio[0].duration * container.streams.audio[0].time_base) - recorded) <= 0.2
        for frame in container.decode(container.streams.video[0]):
            if frame.time is not None and frame.time > (tom_video.first_seconds or 0.0) + 1.0:
                assert abs(read_timecode(frame.to_ndarray(format="gray")) - (frame.time + offset)) < 0.05
                corner = frame.to_ndarray(format="rgb24")[-8:, -8:].reshape(-1, 3).mean(axis=0)
                assert np.abs(corner - np.array(pattern_rgb(TOM, screen=False))).max() < 12, corner
                break
        else:
            pytest.fail("no frame of Tom's camera after its first second")
    checked = verify(stack, recording_id)
    assert checked.returncode == 0 and "VERIFIED" in checked.stdout, checked.stdout + checked.stderr


def test_every_demo_recording_is_sealed(demo: DemoResult) -> None:
    recorded = [r for c in demo.calls for r in c.recordings]
    assert len(recorded) == 5  # voip, pstn, crash, and two in the meeting; none for the blocked call
    assert all(r["status"] == "sealed" for r in recorded), [(r["id"], r["status"]) for r in recorded]


def test_the_ledger_checkpoints_are_cosigned_by_the_witness_and_time_stamped_by_the_tsa(
    stack: DemoStack, demo: DemoResult
) -> None:
    """`verbatim-dev up` runs a local C2SP tlog-witness and an RFC 3161 TSA (devstack/witness.py, devstack/tsa.py):
    the checkpoint the API serves carries the witness's cosignature, and its anchor a time-stamp token."""
    stack.fire("ledger_checkpoint")
    response = stack.http.get(
        f"{stack.config.functions_url}/api/v1/ledger/checkpoint",
        headers={"Authorization": f"Bearer {stack.token(AUDITOR)}", "X-Access-Reason": "e2e: ledger witnesses"},
    )
    assert response.status_code == 200, response.text
    note = response.text
    size = int(note.split("\n")[1])
    assert any(line.startswith(f"\u2014 {WITNESS_NAME} ") for line in note.splitlines()), note
    anchors = BlobServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    names = {b.name for b in anchors.get_container_client(LEDGER_ANCHORS_BLOBS).list_blobs()}
    assert {checkpoint_name(size), checkpoint_name(size) + TIME_STAMP_SUFFIX} <= names


# --- (b') chats beside the calls -------------------------------------------------------------------------------


def test_the_meeting_chat_sits_beside_the_meeting_recording_with_every_version(
    stack: DemoStack, demo: DemoResult
) -> None:
    """Posted while the meeting ran: Graph's encrypted notifications, the webhook, ingestion, the call record's
    join URL linking the recording to its chat; an edit and a deletion are versions, not overwrites."""
    chat = next(c for c in demo.chats if c.key == "meeting-chat")
    assert chat.complete and chat.recording_id is not None
    beside = stack.api(f"/recordings/{chat.recording_id}/chat", AUDITOR)
    assert beside["chat"]["chat"]["chatId"] == chat.chat_id
    assert beside["joinWebUrl"] and chat.chat_id in beside["joinWebUrl"]
    messages = {m["versions"][0]["text"]: m for m in beside["chat"]["messages"]}
    assert set(messages) == {
        "Agenda: rates, then the auction.",
        "Sterling flat into the auction.",
        "Sorry, wrong chat.",
    }
    edited, deleted = messages["Sterling flat into the auction."], messages["Sorry, wrong chat."]
    assert [v["state"] for v in edited["versions"]] == ["posted", "edited"]
    assert edited["versions"][-1]["text"] == "Sterling flat into the auction at 10:00."
    assert [v["state"] for v in deleted["versions"]] == ["posted", "deleted"]
    # Each message on the recording's timeline: posted while the meeting (12 s) ran, give or take the
    # recorder's answer.
    offsets = [t["offsetSeconds"] for t in beside["timeline"]]
    assert len(offsets) == 3 and all(o is not None and -30 < o < 30 for o in offsets), offsets


def test_a_traders_one_to_one_chat_is_found_by_participant_and_searched(stack: DemoStack, demo: DemoResult) -> None:
    chat = next(c for c in demo.chats if c.key == "trader-chat")
    assert chat.complete
    tom = next(u for u in stack.sim("GET", "/sim/tenant")["users"] if u["userPrincipalName"] == TOM)
    page = stack.api("/chats", AUDITOR, params={"participant": tom["id"]})
    assert chat.chat_id in {c["chatId"] for c in page["items"]}
    found = stack.api("/chat-search", AUDITOR, params={"q": "alpha seven", "participant": tom["id"]})
    assert [hit["chatId"] for hit in found["items"]] == [chat.chat_id]


TOM_ID = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"  # devstack/simulator/demo_tenant.yaml


def test_a_call_being_recorded_is_live_while_it_lasts_and_leaves_the_live_view_when_it_ends(
    stack: DemoStack, demo: DemoResult
) -> None:
    """Issue 24's live view on a real call: the simulator places it, the real recorder captures it, and the API the
    portal's Live page reads (tests/e2e/test_portal.py drives the page itself) lists it with its person, capturing,
    while it lasts, then no more."""
    call = stack.place(
        Scenario(
            "live",
            "a call watched on the live view",
            {
                "type": "peerToPeer",
                "subject": "Watched live",
                "participants": [{"key": "tom", "user": TOM}, {"key": "cora", "user": CORA}],
                "durationSeconds": 25,
            },
            (),
        )
    )

    def live_now() -> list[dict[str, Any]]:
        page: dict[str, Any] = stack.api("/live", "Compliance.Officer")
        return [item for item in page["items"] if item.get("callChainId") == call.call_id]

    [item] = wait_until(live_now, 60, "the call to show on the live view")
    # The invitation names the observed user by object id (the simulator's incomingContext carries no UPN or name).
    assert item["observedUser"]["id"] == TOM_ID
    assert item["state"] == "capturing" and item["modalities"][0] == "audio"
    stack.wait_ended([call], timeout=90)
    wait_until(lambda: not live_now(), 120, "the ended call to leave the live view")


NED_ID = "3b2c4d5e-6f70-4b8c-9dae-c1d2e3f4a103"  # devstack/simulator/demo_tenant.yaml: the advisory policy's user


def test_an_unrecorded_call_during_a_recorded_call_of_the_same_person_is_missing_not_recorded(
    stack: DemoStack,
) -> None:
    """A person in two calls at once (a call-queue agent, a second line), only one of them recorded: the adviser's
    call A is recorded; while it lasts the adviser takes call B, whose recorder invitation the platform drops
    (simulator fault `recorderInvitation`, mode `drop`; the advisory policy is not strict, so B goes on unrecorded).
    B's verdict must be `missing` (`no_invitation`) with no recording, and A's must list only A's recording: a
    recording counts for the call whose chain id the recorder kept (tests/reconciliation/test_simultaneous_calls.py
    cites Microsoft's docs), not for any call of the same person it overlaps."""
    stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": 2.0})
    stack.fire("audit_policy_coverage")
    wait_until(lambda: stack.policies_observed([NED_ID]), 30, "the adviser's policy to be observed")
    wait_until(lambda: stack.active_recordings() == 0, 60, "the recorder to be idle")
    recorded = stack.place(
        Scenario(
            "simultaneous-a",
            "the adviser's recorded call",
            {
                "type": "peerToPeer",
                "subject": "Recorded call of an adviser in two calls",
                "participants": [{"key": "ned", "user": NED}, {"key": "una", "user": UNA}],
                "dialog": [{"speaker": "ned", "text": "Let me put you on hold for a moment, another line is ringing."}],
                "durationSeconds": 24,
            },
            (),
        )
    )
    wait_until(lambda: stack.active_recordings() == 1, 30, "the recorder to capture the adviser's first call")
    stack.sim("POST", "/sim/faults", {"kind": "recorderInvitation", "mode": "drop", "count": 1})
    unrecorded = stack.place(
        Scenario(
            "simultaneous-b",
            "the adviser's second call, never recorded",
            {
                "type": "peerToPeer",
                "subject": "Unrecorded call of an adviser in two calls",
                "participants": [{"key": "ned", "user": NED}, {"key": "cora", "user": CORA}],
                "dialog": [{"speaker": "cora", "text": "Quick question on the allocation, Ned."}],
                "durationSeconds": 8,
            },
            (),
        )
    )
    stack.wait_ended([recorded, unrecorded], timeout=90)
    b_legs = stack.call_state(unrecorded)["recorders"]
    assert b_legs and all(leg.get("answerLatencyMs") is None for leg in b_legs), b_legs  # B never reached a recorder

    def final(call: Any) -> dict[str, Any] | None:
        stack.verdicts(call)
        verdict = call.verdict_of(NED)
        return verdict if verdict is not None and verdict["verdict"] != "pending" else None

    a = wait_until(lambda: final(recorded), 120, "the verdict of the recorded call")
    b = wait_until(lambda: final(unrecorded), 120, "the verdict of the unrecorded call")
    (a_recording,) = stack.recordings(recorded)
    assert a["verdict"] == "recorded" and a_recording["callChainId"] == recorded.call_id, (a, a_recording)
    assert (b["verdict"], b["reason"], b["recordingIds"]) == ("missing", "no_invitation", []), b


# --- (c) the Functions host restarted in the middle of a call -----------------------------------------------------


def test_the_demos_recordings_exported_through_the_api_verify_offline_with_the_shipped_verifier(
    stack: DemoStack,
    demo: DemoResult,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    """Issue 18's end to end on `make run`'s own demo: every sealed demo recording exported through the API (the
    durable orchestration in the stack's host), downloaded in Range parts, verified by the verifier shipped inside the
    package in a Python holding only `cryptography`; then each tampering the issue lists, on its own copy, is caught
    and named by the finding that must name it."""
    ids = sorted(str(r["id"]) for r in demo.sealed)
    assert len(ids) >= 5
    headers = {
        "Authorization": f"Bearer {stack.token('Compliance.Officer')}",
        "X-Access-Reason": "e2e: production of the demo's calls",
    }
    base = f"{stack.config.functions_url}/api/v1"
    body = {"recordingIds": ids, "title": "Demo calls", "options": {"chats": True}}
    created = stack.http.post(f"{base}/exports", json=body, headers=headers)
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]

    def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = stack.http.get(f"{base}/exports/{export_id}", headers=headers).json()
        return view if view["export"]["status"] in ("completed", "failed") else None

    view = wait_until(finished, 240, "the export of the demo's recordings to finish")
    assert view["export"]["status"] == "completed", view
    assert view["export"]["result"]["recordings"] == len(ids)
    package = tmp_path / "demo-export.zip"
    size, offset = view["export"]["result"]["packageBytes"], 0
    with package.open("wb") as out:
        while offset < size:
            part = stack.http.get(
                f"{stack.config.functions_url}{view['download']}", headers={**headers, "Range": f"bytes={offset}-"}
            )
            assert part.status_code == 206, part.text
            out.write(part.content)
            offset += len(part.content)
    verified = run_verifier(isolated_python, package, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["recordings"] == len(ids)

    # Then each tampering of the issue, each on its own copy of the unpacked package, is caught and named.
    pristine = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(pristine)
    folders = sorted(p.relative_to(pristine).as_posix() for p in (pristine / "recordings").iterdir())
    first, second = folders[0], folders[1]
    other = json.loads((pristine / second / "recording.json").read_bytes())["record"]["id"]
    for tampering, findings in _tamperings(first, second, other).items():
        copy = tmp_path / tampering.__name__
        shutil.copytree(pristine, copy)
        tampering(copy)
        tampered = run_verifier(isolated_python, copy, "--json")
        assert tampered.returncode == 1, (tampering.__name__, tampered.stdout + tampered.stderr)
        found = [(f["code"], f["message"]) for f in json.loads(tampered.stdout)["findings"]]
        for code, words in findings:
            assert any(c == code and all(w(copy) in m for w in words) for c, m in found), (tampering.__name__, found)


Words = Callable[[Path], str]


def _said(text: str) -> Words:
    return lambda _: text


def _tamperings(first: str, second: str, other: str) -> dict[Callable[[Path], None], list[tuple[str, list[Words]]]]:
    """Issue 18's list: flip a byte in a media file, a manifest, the audit trail, a proof, a checkpoint; delete a
    file; add a file; swap two recordings' media; drop one audit entry — each with the findings that must name it."""
    evidence = f"{first}/media/evidence-mixed.flac"

    def flip_media(root: Path) -> None:
        flip(root / evidence)

    def flip_manifest(root: Path) -> None:
        flip(root / first / "manifest.json")

    def flip_trail(root: Path) -> None:
        trail = root / first / "audit-trail.jsonl"
        trail.write_bytes(trail.read_bytes().replace(b'"subject":"recording:', b'"subject":"recordinG:', 1))

    def flip_proof(root: Path) -> None:
        proof = sorted((root / second / "proofs").iterdir())[0]
        lines = proof.read_text().split("\n")
        at = next(i for i, line in enumerate(lines) if i > 1 and line and not line.startswith(("index", "extra")))
        lines[at] = ("B" if lines[at][0] != "B" else "C") + lines[at][1:]
        proof.write_text("\n".join(lines))

    def flip_checkpoint(root: Path) -> None:
        checkpoint = root / "ledger" / "checkpoint"
        lines = checkpoint.read_text().split("\n")
        lines[1] = str(int(lines[1]) + 1)  # the tree size
        checkpoint.write_text("\n".join(lines))

    def delete_file(root: Path) -> None:
        (root / second / "media" / "access-copy.ogg").unlink()

    def add_file(root: Path) -> None:
        (root / first / "media" / "extra.flac").write_bytes(b"not evidence")

    def swap_media(root: Path) -> None:
        a, b = root / evidence, root / second / "media" / "evidence-mixed.flac"
        first_bytes, second_bytes = a.read_bytes(), b.read_bytes()
        a.write_bytes(second_bytes)
        b.write_bytes(first_bytes)

    def drop_entry(root: Path) -> None:
        trail = root / first / "audit-trail.jsonl"
        lines = trail.read_bytes().split(b"\n")
        proof = next(p for p in (root / first / "proofs").iterdir() if _proven(p) == lines[0])
        root.with_name(f"{root.name}.dropped").write_text(proof.name.split(".")[0])  # for the expectation below
        proof.unlink()
        trail.write_bytes(b"\n".join(lines[1:]))

    def dropped(root: Path) -> str:
        return f"ledger entry {root.with_name(f'{root.name}.dropped').read_text()}"

    return {
        flip_media: [("file.hash_mismatch", [_said(evidence)]), ("evidence.media_mismatch", [_said(evidence)])],
        flip_manifest: [("evidence.manifest_mismatch", [_said(f"{first}/manifest.json")])],
        flip_trail: [("trail.entry_unproven", [_said(f"{first}/audit-trail.jsonl"), _said("line 1")])],
        flip_proof: [("proof.root_mismatch", [_said(f"{second}/proofs/")])],
        flip_checkpoint: [("note.signature_invalid", [_said("ledger/checkpoint")])],
        delete_file: [("file.missing", [_said(f"{second}/media/access-copy.ogg")])],
        add_file: [("file.unlisted", [_said(f"{first}/media/extra.flac")])],
        swap_media: [("evidence.media_mismatch", [_said(evidence), _said(f"the evidence of recording {other}")])],
        drop_entry: [("trail.entry_missing", [dropped, _said("exported")])],
    }


def _proven(proof: Path) -> bytes:
    """The entry a tlog-proof carries (its `extra` line)."""
    for line in proof.read_text().split("\n"):
        if line.startswith("extra "):
            return base64.b64decode(line[6:])
    return b""


RESTART_CALL = Scenario(
    "restart",
    "trader call across a Functions host restart",
    {
        "type": "peerToPeer",
        "subject": "Across a host restart",
        "participants": [
            {"key": "tom", "user": TOM},
            {"key": "cora", "user": "cora.compliance@contoso.onmicrosoft.com"},
        ],
        "dialog": [
            {"speaker": "tom", "text": "Selling two hundred at market while the host restarts."},
            {"speaker": "cora", "text": "Fine, confirm when it is done."},
        ],
        "durationSeconds": 12,
    },
    (),
)


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_a_call_survives_a_restart_of_the_functions_host_in_the_middle_and_ends_sealed(
    stack: DemoStack, demo: DemoResult, crash: bool
) -> None:
    call = stack.place(RESTART_CALL)
    (capturing,) = wait_until(lambda: stack.recorder_admin("GET", "/admin/calls")["calls"], 15, "the capture")
    recording_id = capturing["recording_id"]
    wait_until(
        lambda: stage(lifecycle_status(stack, recording_id)) == "capturing",
        20,
        "the lifecycle orchestration to wait for the recorder",
    )

    # SIGTERM (or SIGKILL) by PID, then started again on the same state dir
    restart(stack.components, "functions", stack.config, crash=crash)

    stack.wait_ended([call], timeout=30)
    verdicts = wait_until(
        lambda: [v for v in stack.verdicts(call) if v["verdict"] != "pending"], 120, "the verdict after the restart"
    )
    (verdict,) = verdicts
    assert verdict["userPrincipalName"] == TOM and verdict["verdict"] == "recorded", verdict
    assert verdict["recordingIds"] == [recording_id]
    status = lifecycle_status(stack, recording_id)
    assert status is not None and status["runtimeStatus"] == "Completed", status
    found = detail(stack, recording_id)
    assert found["recording"]["status"] == "sealed" and not found["recording"]["interrupted"]
    expected = call.media_seconds - call.before_recording_seconds
    assert abs(RecordingManifest.model_validate(found["manifest"]).duration_seconds - expected) <= 0.1
    checked = verify(stack, recording_id)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def stage(status: dict[str, Any] | None) -> str | None:
    custom = (status or {}).get("customStatus") or {}
    return custom.get("stage") if isinstance(custom, dict) else None


def lifecycle_status(stack: DemoStack, recording_id: str) -> dict[str, Any] | None:
    """The recording's orchestration as the Durable HTTP API of the Functions host reports it."""
    master = load_or_create_keys(stack.config.state_dir / "funchost").master
    response = stack.http.get(
        f"{stack.config.functions_url}/runtime/webhooks/durabletask/instances/recording-{recording_id}",
        params={"code": master},
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found
