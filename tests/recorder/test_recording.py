"""A recorded call, end to end against a real recorder process, real Azurite and the test platform."""

from __future__ import annotations

import numpy as np

from devstack.testkit.audio import best_alignment, decode, speech, with_silence
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory, log_of
from verbatim.contracts.recorder import ParticipantsChanged, RecordingStarted, RecordingStopped
from verbatim.evidence.capture import read_manifest


def _participants() -> list[dict[str, object]]:
    return [
        {
            "id": "observed-participant",
            "info": {"identity": {"user": {"id": "a1b2c3d4-0000-4000-8000-000000000001", "displayName": "Ada"}}},
            "mediaStreams": [{"mediaType": "audio", "sourceId": "1", "direction": "sendReceive"}],
            "isInLobby": False,
        },
        {
            "id": "pstn-participant",
            "info": {"identity": {"phone": {"id": "+441632960123"}}},
            "mediaStreams": [{"mediaType": "audio", "sourceId": "2", "direction": "sendReceive"}],
        },
    ]


def test_a_call_is_answered_in_time_and_its_audio_is_recorded_losslessly_in_time(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    source = with_silence(0.3, speech("The quarterly figures are final. Sell four hundred at market."), 0.5)
    script = CallScript(audio=source, participants=_participants(), speed=4.0)

    record = platform.run(platform.drive(recorder.url, script))

    assert record.answer_seconds is not None and record.answer_seconds < 5.0
    assert record.answer is not None
    assert record.answer["callbackUri"].endswith(f"/api/calling/notification/{recorder.instance_id}")
    assert record.answer["mediaConfig"]["@odata.type"] == "#microsoft.graph.appHostedMediaConfig"
    assert record.statuses == ["recording"]

    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    events = recorder.events()
    started = next(e for e in events if isinstance(e, RecordingStarted))
    stopped = next(e for e in events if isinstance(e, RecordingStopped))
    assert started.observed_user.upn == "ada@contoso.example"
    assert started.direction == "outbound" and started.policy.identifier == "Traders strict"
    # The roster may land before or after recording starts: either way the PSTN party is reported.
    rosters = [started.participants] + [e.participants for e in events if isinstance(e, ParticipantsChanged)]
    assert any("+441632960123" in [p.phone_number for p in roster] for roster in rosters)
    assert [e.sequence for e in events] == list(range(len(events)))
    assert stopped.reason == "call_ended" and stopped.result_info is not None and stopped.result_info.subcode == 4097

    container = recorder.container_client()
    evidence = container.download_blob(stopped.blob_name).readall()
    recorded = decode(evidence)
    assert abs(len(recorded) - len(source)) <= 1600, (len(recorded), len(source))  # within 100 ms
    assert np.array_equal(recorded[: len(source)], source[: len(recorded)])  # lossless: bit-exact
    shift, correlation = best_alignment(recorded, source)
    assert shift == 0 and correlation >= 0.9

    manifest = read_manifest(container, stopped.manifest_blob_name)
    assert manifest is not None and manifest.complete
    mixed = manifest.track()
    assert mixed.sha256 == stopped.sha256 and len(mixed.blocks) == stopped.block_count
    assert sum(block.size for block in mixed.blocks) == len(evidence) == stopped.bytes
    assert "test-secret-not-real" not in log_of(recorder)


def test_a_gap_in_the_media_is_kept_as_silence_so_the_timing_stays_true(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    source = with_silence(speech("Before the gap."), 0.2, speech("After the gap."))
    script = CallScript(audio=source, speed=4.0, gap=(0.6, 0.5))  # 25 frames never arrive
    platform.run(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    stopped = next(e for e in recorder.events() if isinstance(e, RecordingStopped))
    recorded = decode(recorder.container_client().download_blob(stopped.blob_name).readall())

    assert len(recorded) == len(source)
    start, end = int(0.6 * 16000), int(1.1 * 16000)
    assert np.array_equal(recorded[:start], source[:start]) and np.array_equal(recorded[end:], source[end:])
    assert not recorded[start:end].any()
    assert stopped.gaps_seconds == 0.5
    manifest = read_manifest(recorder.container_client(), stopped.manifest_blob_name)
    assert manifest is not None
    assert [(g.start_sample, g.samples) for g in manifest.track().gaps] == [(start, end - start)]


def test_unmixed_audio_gives_one_track_per_speaker_and_the_mixed_record(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder(RECORDER_UNMIXED_AUDIO="true")
    alice = with_silence(speech("Alice speaks first."), 2.0)
    bob = with_silence(2.0, speech("Then Bob answers."))
    n = min(len(alice), len(bob))
    alice, bob = alice[:n], bob[:n]
    mixed = np.clip(alice.astype(np.int32) + bob.astype(np.int32), -32768, 32767).astype("<i2")
    script = CallScript(audio=mixed, speed=4.0, unmixed=True, speakers=[alice, bob])
    platform.run(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    stopped = next(e for e in recorder.events() if isinstance(e, RecordingStopped))
    container = recorder.container_client()

    assert sorted(t.track for t in stopped.tracks) == ["mixed", "source-1", "source-2"]
    record = decode(container.download_blob(stopped.blob_name).readall())
    assert np.array_equal(record, mixed[: len(record)]) and abs(len(record) - len(mixed)) <= 320
    for track in stopped.tracks:
        if track.source_id is None:
            continue
        speaker = (alice, bob)[track.source_id - 1]
        audio = decode(container.download_blob(track.blob_name).readall())
        shift, correlation = best_alignment(audio, speaker)
        assert shift == 0 and correlation > 0.99, (track.track, correlation)
