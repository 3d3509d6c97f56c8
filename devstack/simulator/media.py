"""The simulated media platform (see MEDIA_PROTOCOL.md): after a recorder's leg is established the
simulator connects to the WebSocket named in the answer's ``appHostedMediaConfig`` blob and streams the
call's audio as 20 ms frames of 16 kHz 16-bit mono PCM, mixed or unmixed (up to 4 speakers), with
active/dominant speaker events, at real-time pace or as fast as the receiver takes them.

Each call has one :class:`MediaTimeline`: its scripted audio laid out in frames. The timeline's position
is the call's own media time; scripted events (joins, leaves, transfers, hang-up, injected stream
failures) fire when the position reaches them, and every attached session receives the same frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .speech import SAMPLE_RATE

log = logging.getLogger("simulator.media")

PLATFORM = "verbatim-sim-media"
VERSION = 1
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320
FRAME_BYTES = FRAME_SAMPLES * 2  # 640
FRAME_TICKS = FRAME_MS * 10_000  # 100-ns ticks per frame
HEADER = struct.Struct("<IIq")
# Video and screen sharing (section 6): kind, source id, ticks, socket id, width, height, reserved; then an access unit.
VIDEO_HEADER = struct.Struct("<IIqHHHH")
KIND_AUDIO = 1
KIND_VIDEO = 2
KIND_VBSS = 3
MAX_VIDEO_SOCKETS = 10  # main-video receive streams per media session (Microsoft's real-time media concepts)
MIXED_SOURCE = 0
MAX_UNMIXED = 4
SILENCE = bytes(FRAME_BYTES)
VOICED_THRESHOLD = 400  # peak amplitude above which a frame counts as speech
ACTIVE_WINDOW = 10  # frames (200 ms) a source stays "active" after it was last heard
MAX_PENDING = 1500  # messages kept while a connection opens (30 s of mixed audio)
SLOW_RECEIVER_BYTES = 2 * 1024 * 1024  # real-time sessions buffering more than ~3 s of audio have failed
FAST_BUFFER_BYTES = 256 * 1024  # fast sessions wait when this much is queued
HOLD_POLL_SECONDS = 0.002  # how often a held fast timeline looks again

Pace = Literal["realtime", "fast"]


def media_proof(media_key: str, media_session_id: str, call_id: str) -> str:
    """What the platform's `hello` proves it holds the session's key with (MEDIA_PROTOCOL.md, "Authentication"):
    base64url(HMAC-SHA256(key, "verbatim-sim-media/1\n" + mediaSessionId + "\n" + callId)), unpadded."""
    key = base64.urlsafe_b64decode(media_key + "=" * (-len(media_key) % 4))
    message = f"{PLATFORM}/{VERSION}\n{media_session_id}\n{call_id}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def ticks(when: datetime) -> int:
    """100-ns ticks since the Unix epoch, computed exactly (no float rounding)."""
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


class MediaBlob(BaseModel):
    """The ``appHostedMediaConfig.blob`` a recorder answers with, for the simulated platform."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")
    platform: Literal["verbatim-sim-media"]
    version: Literal[1]
    endpoint: str = Field(min_length=6, max_length=2048)
    media_session_id: str = Field(alias="mediaSessionId", min_length=1, max_length=128)
    # The session's key (256 random bits, base64url): it travels only in the answer, over the authenticated
    # signalling channel, and the hello proves the platform holds it.
    media_key: str = Field(alias="mediaKey", min_length=43, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    receive_unmixed_meeting_audio: bool = Field(default=False, alias="receiveUnmixedMeetingAudio")
    # Receive-only H.264 video sockets and the VBSS socket the bot's media session has (section 6).
    video_sockets: int = Field(default=0, alias="videoSockets", ge=0, le=MAX_VIDEO_SOCKETS)
    vbss_socket: bool = Field(default=False, alias="vbssSocket")
    video_format: Literal["h264"] = Field(default="h264", alias="videoFormat")

    @field_validator("endpoint")
    @classmethod
    def _websocket(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("endpoint must be a ws:// or wss:// URL")
        return value


@dataclass
class Segment:
    """One stretch of a speaker's audio placed on the call's timeline."""

    source_id: int
    start_frame: int
    pcm: bytes
    voiced: npt.NDArray[np.bool_]
    peak: npt.NDArray[np.int32]

    @property
    def end_frame(self) -> int:
        return self.start_frame + len(self.pcm) // FRAME_BYTES

    @classmethod
    def build(cls, source_id: int, start_frame: int, samples: npt.NDArray[np.int16]) -> Segment:
        pcm, voiced, peak = _framed(samples)
        return cls(source_id, start_frame, pcm, voiced, peak)


_FRAMED: OrderedDict[int, tuple[npt.NDArray[np.int16], bytes, npt.NDArray[np.bool_], npt.NDArray[np.int32]]] = (
    OrderedDict()
)


def _framed(samples: npt.NDArray[np.int16]) -> tuple[bytes, npt.NDArray[np.bool_], npt.NDArray[np.int32]]:
    """Pad to whole frames and measure each frame; shared by every segment made from the same array
    (the speech renderer hands out one array per rendered line)."""
    key = id(samples)
    hit = _FRAMED.get(key)
    if hit is not None and hit[0] is samples:
        _FRAMED.move_to_end(key)
        return hit[1], hit[2], hit[3]
    frames = -(-len(samples) // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES, dtype="<i2")
    padded[: len(samples)] = samples
    peaks = np.abs(padded.reshape(frames, FRAME_SAMPLES).astype(np.int32)).max(axis=1)
    result = (samples, padded.tobytes(), peaks > VOICED_THRESHOLD, peaks)
    _FRAMED[key] = result  # holding `samples` keeps its id from being reused while cached
    while len(_FRAMED) > 1024:
        _FRAMED.popitem(last=False)
    return result[1], result[2], result[3]


FrameEvent = Callable[[], Awaitable[None]]


class MediaSession:
    """The platform's WebSocket connection to one recorder leg's media endpoint."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        blob: MediaBlob,
        call_id: str,
        unmixed: bool,
        on_failure: Callable[[str], Awaitable[None]],
    ) -> None:
        self.http = http
        self.blob = blob
        self.call_id = call_id
        self.unmixed = unmixed
        self.on_failure = on_failure
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames_sent = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.events_sent = 0
        self.state: Literal["new", "connecting", "connected", "ended", "failed"] = "new"
        self.error: str | None = None
        self.joined_frame: int | None = None
        # what the call produced while the connection was opening: sent first, in order, once it is open
        self._pending: list[bytes | str] = []
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        # Video subscriptions the bot made: ("video", socket id) / ("vbss", 0) -> media source id, and which of them
        # have had their first key frame (a subscription starts at a key frame).
        self.subscriptions: dict[tuple[str, int], int] = {}
        self._keyed: set[tuple[str, int]] = set()
        self.video_units_sent = 0
        self.control_messages = 0
        self.rejected_messages = 0

    def summary(self) -> dict[str, Any]:
        return {
            "endpoint": self.blob.endpoint,
            "mediaSessionId": self.blob.media_session_id,
            "unmixed": self.unmixed,
            "state": self.state,
            "framesSent": self.frames_sent,
            "messagesSent": self.messages_sent,
            "bytesSent": self.bytes_sent,
            "eventsSent": self.events_sent,
            "videoUnitsSent": self.video_units_sent,
            "videoSubscriptions": {f"{kind}:{socket}": source for (kind, socket), source in self.subscriptions.items()},
            "rejectedMessages": self.rejected_messages,
            "joinedAtFrame": self.joined_frame,
            "error": self.error,
        }

    async def connect(self) -> None:
        try:
            self.ws = await self.http.ws_connect(
                self.blob.endpoint, timeout=aiohttp.ClientWSTimeout(ws_close=5), autoping=True, max_msg_size=1 << 20
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self.state, self.error = "failed", f"cannot connect to {self.blob.endpoint}: {error!s}"[:300]
            self._pending.clear()
            raise ConnectionError(self.error) from error
        if self.state == "failed":  # gave up while connecting
            await self.ws.close()
            raise ConnectionError(self.error or "media session failed")
        # aiohttp keeps the socket's transport on the upgraded response's connection
        connection = self.ws._response.connection
        transport = connection.transport if connection is not None else None
        if transport is not None:
            transport.set_write_buffer_limits(high=4 * SLOW_RECEIVER_BYTES)
        self._transport = transport
        self.state = "connected"
        hello = {
            "type": "hello",
            "version": VERSION,
            "mediaSessionId": self.blob.media_session_id,
            "callId": self.call_id,
            "format": "pcm-16khz-16bit-mono",
            "frameMs": FRAME_MS,
            "unmixed": self.unmixed,
            "proof": media_proof(self.blob.media_key, self.blob.media_session_id, self.call_id),
        }
        if self.blob.video_sockets or self.blob.vbss_socket:
            hello.update(
                {"videoSockets": self.blob.video_sockets, "vbssSocket": self.blob.vbss_socket, "videoFormat": "h264"}
            )
        await self.ws.send_str(json.dumps(hello))
        while self._pending:  # frames produced while connecting, oldest first (the list may grow meanwhile)
            item = self._pending.pop(0)
            if isinstance(item, str):
                await self.ws.send_str(item)
                self.events_sent += 1
            else:
                await self.ws.send_bytes(item)
                self.messages_sent += 1
                self.bytes_sent += len(item)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def buffered(self) -> int:
        transport = getattr(self, "_transport", None)
        return int(transport.get_write_buffer_size()) if transport is not None else 0

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.control(message.data)
        if not self._closing and self.state == "connected":
            self.state, self.error = "failed", "the receiver closed the media socket"
            await self.on_failure(self.error)

    def control(self, text: str) -> None:
        """A control message from the bot: a video or VBSS (un)subscription (section 6.2); anything else is
        ignored and counted."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.rejected_messages += 1
            return
        kind = message.get("type")
        socket = _index(message.get("socketId"), self.blob.video_sockets)
        source = _source(message.get("sourceId"))
        if kind == "videoSubscribe" and socket is not None and source is not None:
            self._subscribe(("video", socket), source)
        elif kind == "videoUnsubscribe" and socket is not None:
            self._unsubscribe(("video", socket))
        elif kind == "vbssSubscribe" and self.blob.vbss_socket and source is not None:
            self._subscribe(("vbss", 0), source)
        elif kind == "vbssUnsubscribe" and self.blob.vbss_socket:
            self._unsubscribe(("vbss", 0))
        else:
            self.rejected_messages += 1
            return
        self.control_messages += 1

    def _subscribe(self, key: tuple[str, int], source: int) -> None:
        if self.subscriptions.get(key) != source:
            self.subscriptions[key] = source
            self._keyed.discard(key)

    def _unsubscribe(self, key: tuple[str, int]) -> None:
        self.subscriptions.pop(key, None)
        self._keyed.discard(key)

    def video_for(self, kind: str, source: int, key: bool) -> list[int]:
        """The sockets of this session that receive a `kind` frame of `source` now (a new subscription's first
        frame is a key frame)."""
        sockets: list[int] = []
        for (sub_kind, socket), subscribed in self.subscriptions.items():
            if sub_kind != kind or subscribed != source:
                continue
            if (sub_kind, socket) not in self._keyed:
                if not key:
                    continue
                self._keyed.add((sub_kind, socket))
            sockets.append(socket)
        return sockets

    def open(self) -> None:
        """From now on the call's frames are kept for this session until its connection is open."""
        self.state = "connecting"

    def pending(self) -> int:
        return len(self._pending)

    async def _hold(self, item: bytes | str) -> bool:
        if len(self._pending) >= MAX_PENDING:
            await self.fail_locally("the media connection did not open in time")
            return False
        self._pending.append(item)
        return True

    async def fail_locally(self, reason: str) -> None:
        self.state, self.error = "failed", reason
        self._pending.clear()
        await self.on_failure(reason)

    async def send_binary(self, data: bytes) -> bool:
        if self.state == "connecting":
            return await self._hold(data)
        if self.state != "connected" or self.ws is None:
            return False
        try:
            await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as error:
            await self._lost(f"media send failed: {error!s}"[:300])
            return False
        self.messages_sent += 1
        self.bytes_sent += len(data)
        return True

    async def send_event(self, event: dict[str, Any]) -> None:
        if self.state == "connecting":
            await self._hold(json.dumps(event))
            return
        if self.state != "connected" or self.ws is None:
            return
        try:
            await self.ws.send_str(json.dumps(event))
            self.events_sent += 1
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as error:
            await self._lost(f"media send failed: {error!s}"[:300])

    async def _lost(self, reason: str) -> None:
        if self.state == "connected":
            self.state, self.error = "failed", reason
            await self._close()
            await self.on_failure(reason)

    async def fail(self, reason: str) -> None:
        """Platform-side stream failure: tell the receiver, then close."""
        if self.state != "connected":
            return
        await self.send_event({"type": "streamFailure", "reason": reason})
        self.state, self.error = "failed", reason
        await self._close()

    async def end(self) -> None:
        if self.state != "connected":
            return
        await self.send_event({"type": "end"})
        self.state = "ended"
        await self._close()

    async def _close(self) -> None:
        self._closing = True
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), timeout=2)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()


@dataclass
class VideoFeed:
    """One participant's camera or screen share on the call's timeline: access units in order, each in its 20 ms
    slot. Sent only while its participant is in the call (their audio source is audible)."""

    kind: Literal["video", "vbss"]
    source_id: int
    audio_source: int
    width: int
    height: int
    units: list[tuple[int, int, bytes, bool]]  # (slot, ticks, access unit, key frame)
    next: int = 0


def _index(value: object, limit: int) -> int | None:
    """A socket id below `limit`, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit else None


def _source(value: object) -> int | None:
    """A media source id (u32), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32 else None


@dataclass(eq=False)
class MediaTimeline:
    """A call's audio and scripted events, frame by frame, shared by every recorder session on the call."""

    call_id: str
    start_time: datetime
    pace: Pace
    segments: list[Segment] = field(default_factory=list)
    end_frame: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)
    position: int = 0
    audible: set[int] = field(default_factory=set)
    sessions: list[MediaSession] = field(default_factory=list)
    finished: bool = False
    on_end: Callable[[], Awaitable[None]] | None = None
    _events: dict[int, list[FrameEvent]] = field(default_factory=dict)
    _next_segment: int = 0
    _live: list[Segment] = field(default_factory=list)
    _last_heard: dict[int, int] = field(default_factory=dict)
    _active: tuple[int, ...] = ()
    _dominant: int | None = None
    wall_start: float = 0.0
    videos: list[VideoFeed] = field(default_factory=list)
    # At `fast` pace: true while the timeline must not run on (a recorder leg of the call is still starting).
    held: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        self.segments.sort(key=lambda s: s.start_frame)
        self.start_ticks = ticks(self.start_time)

    def at(self, seconds: float, event: FrameEvent) -> None:
        """Run ``event`` when the timeline reaches ``seconds`` (immediately if it already has)."""
        frame = max(self.position, round(seconds * 1000 / FRAME_MS))
        self._events.setdefault(frame, []).append(event)

    def seconds(self, frame: int | None = None) -> float:
        return (self.position if frame is None else frame) * FRAME_MS / 1000

    def attach(self, session: MediaSession) -> None:
        session.joined_frame = self.position
        self.sessions.append(session)

    def in_gap(self, frame: int) -> bool:
        return any(start <= frame < end for start, end in self.gaps)

    # -- frame generation -----------------------------------------------------------------------------
    def _advance_live(self, n: int) -> None:
        segments = self.segments
        while self._next_segment < len(segments) and segments[self._next_segment].start_frame <= n:
            self._live.append(segments[self._next_segment])
            self._next_segment += 1
        if self._live:
            self._live = [s for s in self._live if s.end_frame > n]

    def _sources(self, n: int) -> list[tuple[int, int, bytes]]:
        """(peak, source id, pcm) of each audible source with audio in frame ``n``."""
        out: list[tuple[int, int, bytes]] = []
        for seg in self._live:
            if seg.source_id not in self.audible:
                continue
            index = n - seg.start_frame
            offset = index * FRAME_BYTES
            out.append((int(seg.peak[index]), seg.source_id, seg.pcm[offset : offset + FRAME_BYTES]))
            if seg.voiced[index]:
                self._last_heard[seg.source_id] = n
        return out

    @staticmethod
    def _mix(parts: list[bytes]) -> bytes:
        if not parts:
            return SILENCE
        if len(parts) == 1:
            return parts[0]
        total = np.zeros(FRAME_SAMPLES, dtype=np.int32)
        for part in parts:
            total += np.frombuffer(part, dtype="<i2")
        return np.clip(total, -32768, 32767).astype("<i2").tobytes()

    async def step(self) -> None:
        """Emit one frame: fire its events, send its audio to every session, move on."""
        n = self.position
        events = self._events.pop(n, None)
        if events:
            for event in events:
                await event()
        if self.finished:
            return
        self._advance_live(n)
        sources = self._sources(n)
        if self.sessions and not self.in_gap(n):
            await self._send(n, sources)
            if self.videos:
                await self._send_video(n)
        await self._speaker_events(n)
        self.position = n + 1
        if self.end_frame is not None and self.position >= self.end_frame and not self.finished:
            if self.on_end is not None:
                await self.on_end()
            self.finished = True

    async def _send(self, n: int, sources: list[tuple[int, int, bytes]]) -> None:
        timestamp = self.start_ticks + n * FRAME_TICKS
        mixed: bytes | None = None
        unmixed: list[bytes] | None = None
        for session in self.sessions:
            if session.state not in ("connected", "connecting"):
                continue
            if session.unmixed:
                if unmixed is None:
                    talking = sorted((s for s in sources if self._last_heard.get(s[1]) == n), key=lambda s: -s[0])[
                        :MAX_UNMIXED
                    ]
                    unmixed = [HEADER.pack(KIND_AUDIO, sid, timestamp) + pcm for _, sid, pcm in talking] or [
                        HEADER.pack(KIND_AUDIO, MIXED_SOURCE, timestamp) + SILENCE
                    ]
                messages = unmixed
            else:
                if mixed is None:
                    mixed = HEADER.pack(KIND_AUDIO, MIXED_SOURCE, timestamp) + self._mix([s[2] for s in sources])
                messages = [mixed]
            if self.pace == "realtime" and session.state == "connected" and session.buffered() > SLOW_RECEIVER_BYTES:
                await session._lost("the receiver is not keeping up with real-time audio")
                continue
            for message in messages:
                if not await session.send_binary(message):
                    break
            else:
                session.frames_sent += 1

    async def _send_video(self, n: int) -> None:
        """The access units due in slot `n`, to each session subscribed to their source (section 6.3)."""
        for feed in self.videos:
            units = feed.units
            while feed.next < len(units) and units[feed.next][0] <= n:
                _, stamp, data, key = units[feed.next]
                feed.next += 1
                if feed.audio_source not in self.audible:
                    continue  # not in the call (yet, or any more)
                kind = KIND_VBSS if feed.kind == "vbss" else KIND_VIDEO
                for session in self.sessions:
                    if session.state not in ("connected", "connecting") or not session.subscriptions:
                        continue
                    for socket in session.video_for(feed.kind, feed.source_id, key):
                        header = VIDEO_HEADER.pack(kind, feed.source_id, stamp, socket, feed.width, feed.height, 0)
                        if await session.send_binary(header + data):
                            session.video_units_sent += 1

    async def _speaker_events(self, n: int) -> None:
        active = tuple(sorted(s for s, last in self._last_heard.items() if n - last < ACTIVE_WINDOW))
        if active == self._active:
            return
        self._active = active
        events: list[dict[str, Any]] = [{"type": "activeSpeakers", "sourceIds": list(active)}]
        if active and (self._dominant not in active):
            # the newest voice takes over only when the current dominant speaker has gone quiet
            newest = max(active, key=lambda s: self._last_heard[s])
            if newest != self._dominant:
                self._dominant = newest
                events.append({"type": "dominantSpeakerChanged", "sourceId": newest})
        for session in self.sessions:
            for event in events:
                await session.send_event(event)

    async def stop(self) -> None:
        """The call's media ends: every connected session gets ``end`` and is closed."""
        self.finished = True
        for session in self.sessions:
            await session.end()


class MediaPump:
    """Drives every timeline: real-time ones together on one 20 ms tick, fast ones as fast as they drain."""

    def __init__(self) -> None:
        self.realtime: set[MediaTimeline] = set()
        self.fast: dict[MediaTimeline, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.late_ticks = 0
        self.ticks = 0
        # recent ticks: how late each started (scheduling) and how long its work took (our CPU)
        self.tick_lateness: deque[float] = deque(maxlen=5000)
        self.tick_work: deque[float] = deque(maxlen=5000)
        self.tick_cpu: deque[float] = deque(maxlen=5000)  # CPU time only: what the tick itself costs

    def reset_stats(self) -> None:
        self.tick_lateness.clear()
        self.tick_work.clear()
        self.tick_cpu.clear()
        self.late_ticks = 0

    def stats(self) -> dict[str, Any]:
        def pct(values: deque[float], q: float) -> float:
            return round(float(np.percentile(np.array(values), q)) * 1000, 2) if values else 0.0

        return {
            "realtimeCalls": len(self.realtime),
            "fastCalls": len(self.fast),
            "ticks": self.ticks,
            "lateTicks": self.late_ticks,
            "tickLatenessP50Ms": pct(self.tick_lateness, 50),
            "tickLatenessP99Ms": pct(self.tick_lateness, 99),
            "tickWorkP50Ms": pct(self.tick_work, 50),
            "tickWorkP99Ms": pct(self.tick_work, 99),
            "tickCpuP50Ms": pct(self.tick_cpu, 50),
            "tickCpuP99Ms": pct(self.tick_cpu, 99),
        }

    def start(self, timeline: MediaTimeline) -> None:
        loop = asyncio.get_running_loop()
        timeline.wall_start = loop.time()
        if timeline.pace == "realtime":
            self.realtime.add(timeline)
            if self._task is None or self._task.done():
                self._task = loop.create_task(self._tick_forever())
        else:
            self.fast[timeline] = loop.create_task(self._run_fast(timeline))

    async def _run_fast(self, timeline: MediaTimeline) -> None:
        try:
            while not timeline.finished:
                if timeline.held is not None and timeline.held():
                    await asyncio.sleep(HOLD_POLL_SECONDS)
                    continue
                await timeline.step()
                if timeline.position % 25 == 0:
                    await asyncio.sleep(0)
                    while any(_backlogged(s) for s in timeline.sessions):  # noqa: ASYNC110 - polls the socket buffer
                        await asyncio.sleep(0.002)
        except Exception:
            log.exception("fast media timeline %s failed", timeline.call_id)
        finally:
            self.fast.pop(timeline, None)

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while self.realtime:
            now = loop.time()
            self.ticks += 1
            self.tick_lateness.append(max(0.0, now - next_tick))
            cpu_start = time.thread_time()
            for timeline in list(self.realtime):
                due = int((now - timeline.wall_start) * 1000 // FRAME_MS) + 1
                try:
                    while timeline.position < due and not timeline.finished:
                        await timeline.step()
                except Exception:
                    log.exception("media timeline %s failed", timeline.call_id)
                    timeline.finished = True
                if timeline.finished:
                    self.realtime.discard(timeline)
            self.tick_work.append(loop.time() - now)
            self.tick_cpu.append(time.thread_time() - cpu_start)
            next_tick += FRAME_MS / 1000
            delay = next_tick - loop.time()
            if delay < 0:
                self.late_ticks += 1
                next_tick = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self.fast.values()] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _backlogged(session: MediaSession) -> bool:
    """A fast timeline waits for sessions that are still connecting or have much queued."""
    if session.state == "connecting":
        return session.pending() > 250
    return session.state == "connected" and session.buffered() > FAST_BUFFER_BYTES
