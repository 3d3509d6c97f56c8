"""A recording with video in the portal, in a real browser (Debian chromium through playwright): an officer opens
it, gives a reason, and the player plays the MP4 access copy (audio with the screen share) as a <video>; the
timeline says when the screen was shared; a screenshot is kept (docs/video.md). Then the picture choice: the officer
switches between the screen share and each camera at the same position (each stream's own sealed MP4)."""

from __future__ import annotations

import io
import json
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from devstack.simulator.video import pattern_rgb, read_timecode
from devstack.testkit.captures import RATE, speech
from tests.api.world import World, seal_recording
from tests.e2e.test_portal import axe, browser, load_and_play, open_recording, shot, simulator, stack  # noqa: F401
from tests.funchost.conftest import RunningHost, wait_for
from verbatim.wiring import container_for


def test_an_officer_plays_a_recording_with_its_screen_share_in_the_portal(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    world, host = stack
    sealed = seal_recording(world.settings, seconds=6.0, video=True, phone_number=None)
    page = open_recording(browser, host, sealed.recording_id)
    assert page.locator("video#player").count() == 1
    assert "shared their screen" in page.inner_text("#rec-timeline")
    load_and_play(page, "Case 2025-131: screen share review")
    # The picture is decoded: the browser knows the video's size (1280x720, the simulator's screen share).
    size = page.evaluate(
        "[document.querySelector('#player').videoWidth, document.querySelector('#player').videoHeight]"
    )
    assert size == [1280, 720], size
    page.evaluate("(() => { const p = document.querySelector('#player'); p.pause(); p.currentTime = 2.5; })()")
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=20)
    assert "access copy with video" in page.inner_text("#play-status")
    axe(page, "recording with video")
    shot(page, "recording-video")
    ledger = container_for(world.settings).ledger
    entries = ledger.entries_for_subject(f"recording:{sealed.recording_id}", limit=50)
    played = [e for e in entries if e.kind == "accessed" and e.details["action"] == "media.video"]
    assert played and played[0].details["reason"] == "Case 2025-131: screen share review"


SCREEN, TOM_CAMERA, GUEST_CAMERA = "screen-30001", "video-30002", "video-30003"


def _shown(page: Any) -> tuple[float, npt.NDArray[np.uint8]]:
    """The player as the browser painted it: a screenshot of the <video> element (PNG, decoded by PyAV), the picture
    cut out of its box (object-fit: contain) and brought back to the video's own size; returns the timecode burned
    into it and its pixels (RGB)."""
    png = page.locator("#player").screenshot()
    with av.open(io.BytesIO(png)) as image:
        shot = next(image.decode(video=0)).to_ndarray(format="rgb24")
    box_h, box_w = shot.shape[:2]
    width, height = page.evaluate(
        "[document.querySelector('#player').videoWidth, document.querySelector('#player').videoHeight]"
    )
    scale = min(box_w / width, box_h / height)
    left, top = (box_w - width * scale) / 2, (box_h - height * scale) / 2
    rows = np.clip((top + (np.arange(height) + 0.5) * scale).astype(int), 0, box_h - 1)
    cols = np.clip((left + (np.arange(width) + 0.5) * scale).astype(int), 0, box_w - 1)
    picture = shot[rows][:, cols]
    luma = (0.299 * picture[..., 0] + 0.587 * picture[..., 1] + 0.114 * picture[..., 2]).astype(np.uint8)
    return read_timecode(luma), picture


def _whose(picture: npt.NDArray[np.uint8]) -> str:
    """Whose pattern the picture shows: the source whose colour the background is nearest to (sampled at the right,
    between the timecode strip and the top of the moving bar, clear of the player's controls and spinner)."""
    height, width = picture.shape[:2]
    cell = max(4, width // 26)
    corner = picture[cell * 2 + 4 : height // 3 - 4, width * 9 // 10 : width - 4].reshape(-1, 3).mean(axis=0)
    colours = {
        SCREEN: pattern_rgb("source 30001", screen=True),
        TOM_CAMERA: pattern_rgb("source 30002", screen=False),
        GUEST_CAMERA: pattern_rgb("source 30003", screen=False),
    }
    return min(colours, key=lambda track: float(np.abs(corner - np.array(colours[track])).sum()))


def _switch_to(page: Any, track: str, width: int) -> None:
    page.check(f"#pictures input[value='{track}']")
    wait_for(
        lambda: (
            page.evaluate(
                "(() => { const p = document.querySelector('#player'); return [p.dataset.picture, p.videoWidth, "
                "p.readyState >= 2 && !p.seeking]; })()"
            )
            == [track, width, True]
        ),
        timeout=60,
    )


def test_an_officer_switches_between_the_screen_share_and_each_camera_at_the_same_position(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Issue 19's player: the picture choice lists the screen share and each camera; switching loads that stream's
    own sealed MP4 and keeps the position, and the frame the browser paints is the chosen participant's (its
    pattern's colour) at that position (its burned-in timecode)."""
    world, host = stack
    sealed = seal_recording(
        world.settings,
        seconds=10.0,
        video=True,
        phone_number=None,
        cameras=[(30_002, "p1", 0.0, 10.0), (30_003, None, 2.0, 9.0)],
    )
    page = open_recording(browser, host, sealed.recording_id)
    choices = page.locator("#pictures input[name=picture]")
    assert [choices.nth(i).get_attribute("value") for i in range(choices.count())] == [SCREEN, TOM_CAMERA, GUEST_CAMERA]
    assert page.is_checked(f"#pictures input[value='{SCREEN}']")
    assert "camera of Tom Trader" in page.inner_text("#pictures")
    load_and_play(page, "Case 2025-140: who was on camera")
    page.evaluate("(() => { const p = document.querySelector('#player'); p.pause(); p.currentTime = 4.5; })()")
    wait_for(
        lambda: page.evaluate(
            "(() => { const p = document.querySelector('#player'); return p.readyState >= 2 && !p.seeking; })()"
        ),
        timeout=20,
    )
    timecode, picture = _shown(page)
    assert _whose(picture) == SCREEN
    assert 4.5 - 0.6 <= timecode <= 4.5, timecode  # a screen share sends 1.875 frames a second

    for track, width in ((GUEST_CAMERA, 320), (TOM_CAMERA, 320), (SCREEN, 1280)):
        _switch_to(page, track, width)
        position = page.evaluate("document.querySelector('#player').currentTime")
        assert abs(position - 4.5) < 0.01, (track, position)  # the same moment of the call
        assert page.evaluate("document.querySelector('#player').paused")  # paused before, paused after
        timecode, picture = _shown(page)
        assert _whose(picture) == track, track
        assert position - (0.6 if track == SCREEN else 0.1) <= timecode <= position + 0.01, (track, timecode)
        shot(page, f"recording-video-{track}")
    assert "screen share of Tom Trader" in page.inner_text("#play-status")

    assert page.get_attribute("#picture-live", "data-live") == "yes"
    # Where the chosen camera was not on (the guest's came on at 2 s), the page says the picture is not live.
    _switch_to(page, GUEST_CAMERA, 320)
    page.evaluate("document.querySelector('#player').currentTime = 1.0")
    wait_for(lambda: page.get_attribute("#picture-live", "data-live") == "no", timeout=20)
    assert "was on 0:02\u20130:09" in page.inner_text("#picture-live")

    # While playing, a switch goes on playing the other picture from where the first one was.
    page.evaluate("document.querySelector('#player').play()")
    wait_for(lambda: page.evaluate("document.querySelector('#player').currentTime") > 2.5, timeout=20)
    _switch_to(page, TOM_CAMERA, 320)
    wait_for(lambda: page.evaluate("document.querySelector('#player').currentTime") > 3.0, timeout=20)
    assert not page.evaluate("document.querySelector('#player').paused")
    assert page.get_attribute("#picture-live", "data-live") == "yes"
    axe(page, "recording with a picture choice")
    ledger = container_for(world.settings).ledger
    entries = ledger.entries_for_subject(f"recording:{sealed.recording_id}", limit=100)
    reads = [e for e in entries if e.kind == "accessed" and e.details["action"] == "media.video"]
    assert {e.details.get("stream") for e in reads} == {SCREEN, TOM_CAMERA, GUEST_CAMERA}
    assert all(e.details["reason"] == "Case 2025-140: who was on camera" for e in reads)


def test_the_timeline_says_who_spoke_when_from_the_speakers_own_tracks(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Speakers with a track of their own (unmixed audio): the sealed manifest holds when each spoke (voice activity
    over real speech placed at known moments) and the portal's timeline lists it beside cameras and shares."""
    world, host = stack
    tom, caller = np.zeros(8 * RATE, dtype=np.int16), np.zeros(8 * RATE, dtype=np.int16)
    tom[1 * RATE : 3 * RATE] = speech(2.0)
    caller[4 * RATE : int(5.5 * RATE)] = speech(1.5)
    sealed = seal_recording(
        world.settings, seconds=8.0, video=True, speakers={"p1": (40_001, tom), "p2": (40_002, caller)}
    )
    page = open_recording(browser, host, sealed.recording_id)
    manifest = json.loads(page.text_content("#rec-manifest") or "")
    spans = {
        t["source_id"]: [(s["start_seconds"], s["end_seconds"]) for s in t["speech"]]
        for t in manifest["evidence"]
        if t["kind"] == "unmixed"
    }
    ((tom_start, tom_end),) = spans[40_001]
    ((caller_start, caller_end),) = spans[40_002]
    assert abs(tom_start - 1.0) <= 0.2 and abs(tom_end - 3.0) <= 0.3, spans
    assert abs(caller_start - 4.0) <= 0.2 and abs(caller_end - 5.5) <= 0.3, spans
    lines = [line.strip() for line in page.inner_text("#rec-timeline").splitlines()]
    assert "0:01 Tom Trader spoke until 0:03" in lines, lines
    assert "0:04 +41445550100 spoke until 0:06" in lines, lines
    assert "0:01 Tom Trader shared their screen until 0:06" in lines, lines  # its last frame: 6.3 s
    assert not any("no per-speaker tracks" in line for line in lines)
    shot(page, "recording-speakers")


def test_the_timeline_says_who_the_platform_named_dominant_speaker_in_mixed_audio(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Mixed audio (the default) has no track per speaker; the platform's dominant-speaker changes
    (`AudioSocket.DominantSpeakerChanged`, `DominantSpeakerChangedEventArgs.CurrentDominantSpeaker`, documented at
    https://microsoftgraph.github.io/microsoft-graph-comms-samples/docs/bot_media/Microsoft.Skype.Bots.Media.DominantSpeakerChangedEventArgs.html
    ) are sealed as spans of the mixed track and the timeline lists them, labelled as the dominant speaker Teams
    reported."""
    world, host = stack
    sealed = seal_recording(world.settings, seconds=8.0, dominant=[(1.0, "p1"), (4.0, "p2"), (6.0, None)])
    page = open_recording(browser, host, sealed.recording_id)
    manifest = json.loads(page.text_content("#rec-manifest") or "")
    (mixed,) = [t for t in manifest["evidence"] if t["kind"] == "mixed"]
    assert [(s["source_id"], s["basis"], s["start_seconds"], s["end_seconds"]) for s in mixed["speech"]] == [
        (50_001, "dominant-speaker", 1.0, 4.0),
        (50_002, "dominant-speaker", 4.0, 6.0),
    ]
    lines = [line.strip() for line in page.inner_text("#rec-timeline").splitlines()]
    assert "0:01 Tom Trader spoke until 0:04 (dominant speaker, as Teams reported it)" in lines, lines
    assert "0:04 +41445550100 spoke until 0:06 (dominant speaker, as Teams reported it)" in lines, lines
    assert any(line.startswith("Who spoke when: the dominant speaker Teams reported") for line in lines), lines
    assert not any("no per-speaker tracks" in line for line in lines)
