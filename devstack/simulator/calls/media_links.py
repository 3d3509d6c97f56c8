"""The media side of a conversation: its timeline (scripted speech, gaps, end), injected media-stream
failures, and connecting the platform to each answered leg's media endpoint (a failed connection ends the
leg with 500/1005, a lost one with 410/301005)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial
from typing import TYPE_CHECKING

import aiohttp

from ..clock import Clock
from ..faults import Faults
from ..media import FRAME_MS, MediaSession, MediaTimeline, Segment, VideoFeed
from ..video import CAMERA, SCREEN
from .legs import BotLegs
from .model import BotLeg

if TYPE_CHECKING:
    from .conversation import Conversation

MEDIA_CONNECT_FAILED = (
    "Server encountered connectivity error with Bot's media. Please check media connectivity between Bot and Microsoft."
)


class MediaLinks:
    def __init__(self, clock: Clock, faults: Faults, legs: BotLegs) -> None:
        self.clock = clock
        self.faults = faults
        self.legs = legs
        self.http: aiohttp.ClientSession | None = None

    def build_timeline(self, conv: Conversation) -> MediaTimeline:
        keys = {p.key: p for p in conv.parties}
        segments = [
            Segment.build(keys[a.party].source_id, round(a.at * 1000 / FRAME_MS), a.pcm)
            for a in conv.audio
            if a.party in keys
        ]
        frames = None if conv.duration is None else max(1, round(conv.duration * 1000 / FRAME_MS))
        gaps = [
            (round(g.at * 1000 / FRAME_MS), round((g.at + g.duration_seconds) * 1000 / FRAME_MS))
            for g in conv.spec.media_gaps
        ]
        timeline = MediaTimeline(
            call_id=conv.call_chain_id,
            start_time=self.clock.now(),
            pace=conv.spec.media_pace,
            segments=segments,
            end_frame=frames,
            gaps=gaps,
        )
        timeline.videos = self._video_feeds(conv, timeline.start_ticks)
        timeline.on_end = conv.timeline_end
        if timeline.pace == "fast":
            timeline.held = partial(self.recorders_starting, conv)
        return timeline

    def recorders_starting(self, conv: Conversation) -> bool:
        """Whether a `fast` call must wait for a compliance recorder leg that is still starting.

        At `fast` pace seconds of media take milliseconds of wall time, while a recorder's answer and its
        recording status (Graph `call: answer`, `call: updateRecordingStatus`: nothing may be kept before it
        succeeds) take milliseconds of wall time too — so a 3-s call could end before the second invitation of
        ConcurrentInvitationCount 2 had been answered, or before an answered recorder could report `recording`,
        where at real-time pace it would have missed a few frames. "As fast as the recorders take frames" means
        waiting for them: the timeline holds while an invitation that was delivered is unanswered (within its
        answer window) or an answered leg has not reported a recording status yet (for as long again, so a bot
        that never reports one delays a call by at most that)."""
        now = time.monotonic()
        window = self.legs.config.fast_pace_start_wait_seconds
        for leg in conv.legs:
            if not leg.compliance or leg.group is None:
                continue
            if leg.state == "incoming":
                undelivered = any(n["kind"] == "incoming" and not n.get("delivered") for n in leg.notifications)
                if not undelivered and now - leg.invited_wall < window:
                    return True
            elif leg.state in ("answered", "established") and not leg.recording_history:
                answered = leg.invited_wall + (leg.answer_latency_ms or 0.0) / 1000
                if now - answered < window:
                    return True
        return False

    @staticmethod
    def _video_feeds(conv: Conversation, start_ticks: int) -> list[VideoFeed]:
        """Each camera and screen-share clip of the call as a feed of access units in 20 ms slots, stamped on the
        call's media clock (establishment + position)."""
        keys = {p.key: p for p in conv.parties}
        feeds: list[VideoFeed] = []
        for clip in conv.video_clips:
            party = keys.get(clip.party)
            if party is None or not clip.frames:
                continue
            profile = SCREEN if clip.kind == "vbss" else CAMERA
            units = [
                (
                    int(frame.seconds * 1000 // FRAME_MS),
                    start_ticks + round(frame.seconds * 10_000_000),
                    frame.data,
                    frame.key,
                )
                for frame in clip.frames
            ]
            source = party.screen_source_id if clip.kind == "vbss" else party.video_source_id
            feeds.append(VideoFeed(clip.kind, source, party.source_id, profile.width, profile.height, units))
        return feeds

    def schedule_faults(self, conv: Conversation) -> None:
        assert conv.timeline is not None
        scenario_id = conv.scenario.id
        spec = self.faults.take("mediaStreamFailure", lambda s: s.call_id in (None, scenario_id))
        if spec is None:
            return

        async def fail() -> None:
            conv.event("mediaStreamFailure", reason=spec.reason)
            for leg in conv.legs:
                if leg.session is not None and leg.session.state == "connected":
                    await leg.session.fail(spec.reason)
                    await self.legs.terminate(leg, (410, 301005, "Media connectivity failure."), reason=spec.reason)

        conv.timeline.at(spec.after_seconds, fail)

    async def connect(self, leg: BotLeg) -> None:
        """Connect the platform to the leg's media endpoint; concurrent callers wait for the first."""
        conv = leg.conv
        if leg.session is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.media_ready.wait(), timeout=15)
            return
        if leg.blob is None or conv.timeline is None or conv.state != "established":
            return
        try:
            await self._connect(leg)
        finally:
            leg.media_ready.set()

    async def _connect(self, leg: BotLeg) -> None:
        conv = leg.conv
        assert self.http is not None and leg.blob is not None and conv.timeline is not None
        unmixed = conv.spec.unmixed if conv.spec.unmixed is not None else leg.blob.receive_unmixed_meeting_audio

        async def lost(reason: str) -> None:
            await self.legs.terminate(leg, (410, 301005, "Media connectivity failure."), reason=reason)

        session = MediaSession(self.http, leg.blob, leg.id, unmixed, lost)
        leg.session = session
        if not conv.timeline.finished:
            # the leg receives the call from now on; frames made while the socket opens wait for it
            session.open()
            conv.timeline.attach(session)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leg.established_sent.wait(), timeout=5)
        try:
            await session.connect()
        except ConnectionError as error:
            if leg.state in ("answered", "established"):
                await self.legs.terminate(leg, (500, 1005, MEDIA_CONNECT_FAILED), reason=str(error))
            return
        if leg.state != "established" or conv.timeline.finished:
            await session.end()
