"""The simulated media transport (devstack/simulator/MEDIA_PROTOCOL.md) as a recorder sees it: hello,
20 ms frames of 16 kHz PCM with exact timestamps, speech where the script puts it, unmixed speakers
matching the roster, speaker events, gaps, real-time pace, stream failures and the end of media."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devstack.simulator.media import media_proof
from tests.simulator.harness import NED, TOM, UNA, Recorder, SimClient, wait_for

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]
FRAME_TICKS = 200_000


def ticks_of(iso: str) -> int:
    from devstack.simulator.media import ticks
    from devstack.simulator.odata import parse_datetime

    return ticks(parse_datetime(iso))


def rms(pcm: np.ndarray[Any, Any]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


DIALOG_CALL = {
    "type": "peerToPeer",
    "mediaPace": "fast",
    "durationSeconds": 6,
    "participants": [{"key": "tom", "user": TOM}, {"key": "una", "user": UNA}],
    "dialog": [
        {"speaker": "tom", "text": "Buy five hundred at par.", "pauseBefore": 0.8},
        {"speaker": "una", "text": "Done.", "pauseBefore": 0.5},
    ],
}


def test_mixed_audio_follows_the_contract_frame_by_frame(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim) as bot:
            call = await sim.place(DIALOG_CALL)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = state["recorders"][0]
            await wait_for(lambda: (c := bot.capture_for(leg["callId"])) is not None and c.closed, what="media end")
            capture = bot.capture_for(leg["callId"])
            assert capture is not None and capture.hello is not None
            assert capture.hello == {
                "type": "hello",
                "version": 1,
                "mediaSessionId": capture.hello["mediaSessionId"],
                "callId": leg["callId"],
                "format": "pcm-16khz-16bit-mono",
                "frameMs": 20,
                "unmixed": False,
                # the platform proves it holds the key the answer carried, for this session and call
                "proof": media_proof(
                    bot.media_keys[capture.hello["mediaSessionId"]], capture.hello["mediaSessionId"], leg["callId"]
                ),
            }
            frames = capture.frames
            assert len(frames) == 300  # 6 s of 20 ms frames, silence included
            assert {(kind, source, len(pcm)) for kind, source, _, pcm in frames} == {(1, 0, 640)}
            stamps = [t for _, _, t, _ in frames]
            assert stamps[0] == ticks_of(state["conversations"][0]["establishedAt"])
            assert all(b - a == FRAME_TICKS for a, b in itertools.pairwise(stamps))
            pcm = capture.pcm()
            assert rms(pcm[: int(0.6 * 16000)]) == 0.0  # before the first line: digital silence
            assert rms(pcm[int(1.0 * 16000) : int(2.0 * 16000)]) > 300  # Tom speaking
            assert capture.events[-1] == {"type": "end"}
            assert leg["media"]["framesSent"] == 300

    run(body)


def test_unmixed_meeting_audio_carries_roster_source_ids_and_speaker_events(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        meeting = {
            "type": "meeting",
            "mediaPace": "fast",
            "participants": [
                {"key": "una", "user": UNA},
                {"key": "tom", "user": TOM},
                {"key": "ned", "user": NED},
            ],
            "dialog": [
                {"speaker": "una", "text": "Morning all.", "pauseBefore": 0.3},
                {"speaker": "tom", "text": "Rates are steady.", "pauseBefore": 0.3},
                {"speaker": "ned", "text": "Thanks.", "pauseBefore": 0.3},
            ],
        }
        async with Recorder(sim, unmixed=True) as bot:
            call = await sim.place(meeting)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = next(r for r in state["recorders"] if r["observedParticipant"] == "tom")
            await wait_for(lambda: (c := bot.capture_for(leg["callId"])) is not None and c.closed, what="media end")
            capture = bot.capture_for(leg["callId"])
            assert capture is not None and capture.hello is not None and capture.hello["unmixed"] is True
            roster_sources = {
                int(p["mediaStreams"][0]["sourceId"]): p["info"]["identity"]["user"]["id"]
                for roster in bot.rosters(leg["callId"])
                for p in roster
                if "user" in p["info"]["identity"]
            }
            speakers = {source for _, source, _, _ in capture.frames if source != 0}
            assert speakers and speakers <= set(roster_sources)
            assert {roster_sources[s] for s in speakers} == {UNA, TOM, NED}
            per_frame: dict[int, int] = defaultdict(int)
            for _, _, ticks, _ in capture.frames:
                per_frame[ticks] += 1
            assert max(per_frame.values()) <= 4
            stamps = sorted(per_frame)
            assert all(b - a == FRAME_TICKS for a, b in itertools.pairwise(stamps))  # no time skipped
            dominant = [e["sourceId"] for e in capture.events if e["type"] == "dominantSpeakerChanged"]
            active = [e for e in capture.events if e["type"] == "activeSpeakers"]
            assert set(dominant) == speakers and active
            assert all(set(e["sourceIds"]) <= speakers for e in active)

    run(body)


def test_a_media_stream_failure_mid_call_closes_the_socket_and_drops_the_strict_user(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.ok(
            "POST", "/sim/faults", json={"kind": "mediaStreamFailure", "afterSeconds": 1.0, "reason": "network"}
        )
        async with Recorder(sim) as bot:
            call = await sim.place({**DIALOG_CALL, "mediaPace": "realtime", "durationSeconds": 30})
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = state["recorders"][0]
            assert leg["resultInfo"]["code"] == 410 and leg["resultInfo"]["subcode"] == 301005
            assert state["outcome"] == "userDropped"
            capture = bot.capture_for(leg["callId"])
            assert capture is not None
            await wait_for(lambda: capture.closed, what="socket closed")
            assert capture.events[-1] == {"type": "streamFailure", "reason": "network"}
            assert 45 <= len(capture.frames) <= 55  # about one second of audio before the failure

    run(body)


def test_real_time_pace_and_requested_gaps(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim) as bot:
            scenario = {**DIALOG_CALL, "mediaPace": "realtime", "durationSeconds": 1.0, "dialog": []}
            scenario["mediaGaps"] = [{"at": 0.4, "durationSeconds": 0.2}]
            started = time.monotonic()
            call = await sim.place(scenario)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            elapsed = time.monotonic() - started
            capture = bot.capture_for(state["recorders"][0]["callId"])
            assert capture is not None
            stamps = [t for _, _, t, _ in capture.frames]
            assert len(stamps) == 40  # 50 frames minus the 10 of the gap
            jumps = [b - a for a, b in itertools.pairwise(stamps)]
            assert jumps.count(11 * FRAME_TICKS) == 1 and jumps.count(FRAME_TICKS) == 38
            assert elapsed >= 0.9  # real-time pace: one second of audio is not sent faster

    run(body)


def test_an_unreachable_media_endpoint_ends_the_recorder_leg_with_500_1005(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim, behaviour="ignore") as bot:
            call = await sim.place({**DIALOG_CALL, "dialog": []})
            await wait_for(lambda: bot.incoming, what="invitation")
            blob = json.dumps(
                {
                    "platform": "verbatim-sim-media",
                    "version": 1,
                    "endpoint": "ws://127.0.0.1:9/media",
                    "mediaSessionId": "x",
                    "mediaKey": "k" * 43,
                }
            )
            await bot.answer(
                bot.call_ids()[0], mediaConfig={"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": blob}
            )
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = state["recorders"][0]
            assert (leg["resultInfo"]["code"], leg["resultInfo"]["subcode"]) == (500, 1005)
            assert state["outcome"] == "userDropped"

    run(body)


def test_a_recorder_joining_a_running_meeting_gets_every_frame_from_its_join_to_the_end(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        meeting = {
            "type": "meeting",
            "mediaPace": "realtime",
            "durationSeconds": 2.0,
            "participants": [{"key": "una", "user": UNA}, {"key": "ned", "user": NED}],
        }
        async with Recorder(sim, answer_delay=0.3) as bot:  # Ned's policy does not make the meeting wait
            call = await sim.place(meeting)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = state["recorders"][0]
            capture = bot.capture_for(leg["callId"])
            assert capture is not None
            await wait_for(lambda: capture.closed, what="media end")
            start = ticks_of(state["conversations"][0]["establishedAt"])
            stamps = [t for _, _, t, _ in capture.frames]
            joined = leg["media"]["joinedAtFrame"]
            assert joined > 0 and stamps[0] == start + joined * FRAME_TICKS
            assert stamps == [start + n * FRAME_TICKS for n in range(joined, 100)]  # through the last frame
            assert capture.events[-1] == {"type": "end"}

    run(body)


def test_an_audio_file_is_resampled_to_16_khz_and_placed_where_the_script_says(run: Run, tmp_path: Path) -> None:
    import soundfile

    rate = 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)  # 1 s at 440 Hz
    path = tmp_path / "tone.wav"
    soundfile.write(str(path), tone, rate)

    async def body(sim: SimClient) -> None:
        scenario = {
            **DIALOG_CALL,
            "dialog": [],
            "durationSeconds": 3,
            "participants": [
                {"key": "tom", "user": TOM, "speech": [{"at": 1.0, "audioFile": str(path)}]},
                {"key": "una", "user": UNA},
            ],
        }
        async with Recorder(sim) as bot:
            call = await sim.place(scenario)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            capture = bot.capture_for(state["recorders"][0]["callId"])
            assert capture is not None
            await wait_for(lambda: capture.closed, what="media end")
            pcm = capture.pcm().astype(np.float64)
            assert rms(pcm[: 16000 - 800]) == 0.0 and rms(pcm[2 * 16000 + 800 :]) == 0.0
            tone_part = pcm[16000 + 800 : 2 * 16000 - 800]
            spectrum = np.abs(np.fft.rfft(tone_part))
            peak_hz = np.argmax(spectrum) * 16000 / len(tone_part)
            assert abs(peak_hz - 440) < 5 and rms(tone_part) > 5000
        status, problem, _ = await sim.request(
            "POST",
            "/sim/calls",
            json={
                **scenario,
                "participants": [
                    {"key": "tom", "user": TOM, "speech": [{"audioFile": str(tmp_path / "missing.wav")}]},
                    {"key": "una", "user": UNA},
                ],
            },
        )
        assert status == 400 and "does not exist" in problem["detail"]

    run(body)
