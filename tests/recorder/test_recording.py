"""A recorded call, end to end against a real recorder process, real Azurite and the test platform."""

from __future__ import annotations

import numpy as np

from tests.recorder.audio import best_alignment, decode, speech, with_silence
from tests.recorder.conftest import RecorderFactory, log_of
from tests.recorder.platform import CallScript, FakePlatform, wait_until
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
    assert any(
        isinstance(e, ParticipantsChanged) and "+441632960123" in [p.phone_number for p in e.participants]
        for e in events
    )
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
