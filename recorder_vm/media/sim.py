"""The simulated media platform: the bot listens on a WebSocket, the simulator connects and streams audio.

Transport (shared with `devstack/simulator`): the answer's blob is JSON text
`{"platform": "verbatim-sim-media", "version": 1, "endpoint": "ws://host:port/media", "mediaSessionId": id}`.
The simulator sends a `hello` text message, then binary frames (16-byte little-endian header
`<kind u32, source_id u32, timestamp_ticks i64>` + 640 bytes of PCM) and text events
(`dominantSpeakerChanged`, `activeSpeakers`, `streamFailure`, `end`).

Like the real media library, it calls back on its own thread (an event loop of its own), so a busy
signalling loop never delays audio and vice versa.

Authentication, as Microsoft's platform does it (devstack/simulator/MEDIA_PROTOCOL.md, "Authentication"):
each session gets a fresh random key that only the answer carries (the signalling channel), the platform's
`hello` proves it holds the key for this session and call, one connection per session; with a certificate
(RECORDER_TLS_CERT_FILE) the listener speaks TLS and the endpoint is `wss://`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import ssl
import struct
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from recorder_vm.media.base import FRAME_BYTES, MAX_VIDEO_SOCKETS, AudioFrame, MediaHandler, VideoFrame, VideoSocketKind

log = logging.getLogger(__name__)

PLATFORM = "verbatim-sim-media"
VERSION = 1
HEADER = struct.Struct("<IIq")
# Video and screen-sharing frames (MEDIA_PROTOCOL.md, section 6): kind, source id, ticks, socket id, width, height,
# reserved; then one H.264 access unit.
VIDEO_HEADER = struct.Struct("<IIqHHHH")
KIND_AUDIO = 1
KIND_VIDEO = 2
KIND_VBSS = 3
FORMAT = "pcm-16khz-16bit-mono"
RESOLUTION = "hd1080p"  # VideoResolution.HD1080p, what Microsoft's PolicyRecordingBot subscribes with


@dataclass
class SimMediaSession:
    call_id: str
    handler: MediaHandler
    unmixed: bool
    endpoint: str
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key: str = field(default_factory=lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())
    connected: bool = False
    frames: int = 0
    malformed: int = 0
    closed: bool = False
    videos: int = 0  # receive-only H.264 video sockets
    vbss: bool = False
    video_units: int = 0
    _platform: SimMediaPlatform | None = field(default=None, repr=False)
    # What each socket is subscribed to ("video:<n>" / "vbss" -> message), sent again if the socket reconnects.
    _subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def video_sockets(self) -> int:
        return self.videos

    @property
    def vbss_socket(self) -> bool:
        return self.vbss

    def media_config(self) -> dict[str, Any]:
        blob: dict[str, Any] = {
            "platform": PLATFORM,
            "version": VERSION,
            "endpoint": self.endpoint,
            "mediaSessionId": self.session_id,
            "mediaKey": self.key,
            "receiveUnmixedMeetingAudio": self.unmixed,
        }
        if self.videos or self.vbss:
            blob.update({"videoSockets": self.videos, "vbssSocket": self.vbss, "videoFormat": "h264"})
        return {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": json.dumps(blob)}

    def subscribe_video(self, socket_id: int, source_id: int) -> None:
        if not 0 <= socket_id < self.videos:
            raise ValueError(f"video socket {socket_id} does not exist (the session has {self.videos})")
        self._send(
            f"video:{socket_id}",
            {"type": "videoSubscribe", "socketId": socket_id, "sourceId": source_id, "resolution": RESOLUTION},
        )

    def unsubscribe_video(self, socket_id: int) -> None:
        self._send(f"video:{socket_id}", {"type": "videoUnsubscribe", "socketId": socket_id})

    def subscribe_vbss(self, source_id: int) -> None:
        if not self.vbss:
            raise ValueError("the session has no VBSS socket")
        self._send("vbss", {"type": "vbssSubscribe", "sourceId": source_id, "resolution": RESOLUTION})

    def _send(self, key: str, message: dict[str, Any]) -> None:
        self._subscriptions[key] = message
        if self._platform is not None:
            self._platform.send(self, message)

    def proves(self, call_id: object, proof: object) -> bool:
        """True when a hello's `callId` is this session's call and its `proof` is made with this session's key."""
        if not isinstance(call_id, str) or not isinstance(proof, str) or call_id != self.call_id:
            return False
        return hmac.compare_digest(proof.encode(), media_proof(self.key, self.session_id, call_id).encode())

    def close(self) -> None:
        self.closed = True
        if self._platform is not None:
            self._platform.forget(self)


def media_proof(media_key: str, media_session_id: str, call_id: str) -> str:
    """base64url(HMAC-SHA256(key, "verbatim-sim-media/1\n" + mediaSessionId + "\n" + callId)), unpadded."""
    key = base64.urlsafe_b64decode(media_key + "=" * (-len(media_key) % 4))
    message = f"{PLATFORM}/{VERSION}\n{media_session_id}\n{call_id}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


class SimMediaPlatform:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9443,
        advertised_host: str | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._advertised = advertised_host or host
        self._ssl: ssl.SSLContext | None = None
        if tls_cert_file:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(tls_cert_file, tls_key_file)
        self._sessions: dict[str, SimMediaSession] = {}
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None

    @property
    def endpoint(self) -> str:
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://{self._advertised}:{self.port}/media"

    @property
    def healthy(self) -> bool:
        return self._started.is_set() and self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-media", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait, 10.0)
        if self._error is not None:
            raise RuntimeError(f"sim media listener on {self.host}:{self.port} failed: {self._error}")
        if not self._started.is_set():
            raise RuntimeError(f"sim media listener on {self.host}:{self.port} did not start")
        log.info("sim media platform listening", extra={"endpoint": self.endpoint})

    async def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        loop.call_soon_threadsafe(self._stopped.set)
        await asyncio.to_thread(self._thread.join, 10.0)

    def create_session(
        self, call_id: str, handler: MediaHandler, *, unmixed: bool, video_sockets: int = 0, vbss: bool = False
    ) -> SimMediaSession:
        session = SimMediaSession(
            call_id=call_id,
            handler=handler,
            unmixed=unmixed,
            endpoint=self.endpoint,
            videos=max(0, min(video_sockets, MAX_VIDEO_SOCKETS)),
            vbss=vbss,
        )
        session._platform = self
        self._sessions[session.session_id] = session
        return session

    def send(self, session: SimMediaSession, message: dict[str, Any]) -> None:
        """Send a control message to the platform on the session's socket (from any thread); a session not connected
        yet gets its subscriptions when it connects."""
        socket = self._sockets.get(session.session_id)
        if socket is None or self._loop is None or self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(_send_quietly(socket, json.dumps(message)), self._loop)

    def forget(self, session: SimMediaSession) -> None:
        self._sessions.pop(session.session_id, None)
        socket = self._sockets.pop(session.session_id, None)
        if socket is not None and self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(socket.close(), self._loop)

    # --- the listener's own thread and loop ---

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start()
            self._error = error
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/media", self._media)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl).start()
        self._started.set()
        await asyncio.to_thread(self._stopped.wait)
        for socket in list(self._sockets.values()):
            await socket.close()
        await self._runner.cleanup()

    async def _media(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(heartbeat=None, max_msg_size=1024 * 1024)
        await socket.prepare(request)
        session = await self._hello(socket)
        if session is None:
            return socket
        self._sockets[session.session_id] = socket
        for subscription in list(session._subscriptions.values()):
            await socket.send_str(json.dumps(subscription))
        handler = session.handler
        ended = False
        try:
            async for message in socket:
                if message.type == WSMsgType.BINARY:
                    data: bytes = message.data
                    if len(data) != HEADER.size + FRAME_BYTES:
                        self._video(session, data)
                        continue
                    kind, source_id, ticks = HEADER.unpack_from(data)
                    if kind != KIND_AUDIO:
                        continue
                    session.frames += 1
                    handler.on_audio(AudioFrame(source_id, ticks, data[HEADER.size :]))
                elif message.type == WSMsgType.TEXT:
                    ended = self._event(session, message.data) or ended
                    if ended:
                        break
                else:
                    break
        finally:
            self._sockets.pop(session.session_id, None)
            if not ended and not session.closed:
                handler.on_media_failure("media connection closed without an end message")
            await socket.close()
        return socket

    @staticmethod
    def _video(session: SimMediaSession, data: bytes) -> None:
        """A video or screen-sharing access unit (any other binary message is malformed)."""
        if len(data) <= VIDEO_HEADER.size:
            session.malformed += 1
            return
        kind, source_id, ticks, socket_id, width, height, _ = VIDEO_HEADER.unpack_from(data)
        socket: VideoSocketKind
        if kind == KIND_VIDEO and socket_id < session.videos:
            socket = "video"
        elif kind == KIND_VBSS and session.vbss:
            socket = "vbss"
        else:
            session.malformed += 1
            return
        session.video_units += 1
        session.handler.on_video(
            VideoFrame(socket, socket_id, source_id, ticks, data[VIDEO_HEADER.size :], width, height)
        )

    async def _hello(self, socket: web.WebSocketResponse) -> SimMediaSession | None:
        try:
            message = await socket.receive(timeout=10.0)
            hello = json.loads(message.data) if message.type == WSMsgType.TEXT else None
        except (TimeoutError, json.JSONDecodeError):
            hello = None
        if not isinstance(hello, dict):
            hello = {}
        session = self._sessions.get(str(hello.get("mediaSessionId")))
        problem, code = None, 4400
        if hello.get("type") != "hello" or hello.get("version") != VERSION:
            problem = "expected a version 1 hello"
        elif session is None or session.closed:
            problem = "unknown media session"
        elif not session.proves(hello.get("callId"), hello.get("proof")):
            # Whoever knows a session id (it is logged) but not the key the answer carried is not the platform.
            problem, code = "the hello does not prove the media session's key for this call", 4401
        elif session.connected:
            problem, code = "the media session is already connected", 4409
        elif hello.get("format") != FORMAT or hello.get("frameMs") != 20:
            problem = "unsupported audio format"
        if problem is not None or session is None:
            log.warning("sim media connection refused", extra={"reason": problem})
            await socket.close(code=code, message=(problem or "refused").encode())
            return None
        session.connected = True
        log.info(
            "sim media connected",
            extra={"call_id": session.call_id, "unmixed": bool(hello.get("unmixed"))},
        )
        return session

    @staticmethod
    def _event(session: SimMediaSession, text: str) -> bool:
        """Handle a text event; True when the stream has ended (normally or by failure)."""
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            session.malformed += 1
            return False
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "dominantSpeakerChanged":
            source = event.get("sourceId")
            session.handler.on_dominant_speaker(source if isinstance(source, int) and source >= 0 else None)
        elif kind == "streamFailure":
            session.handler.on_media_failure(str(event.get("reason") or "media stream failure"))
            return True
        elif kind == "end":
            session.handler.on_media_ended()
            return True
        return False


async def _send_quietly(socket: web.WebSocketResponse, text: str) -> None:
    """A control message to the platform; a socket that closed meanwhile has nothing left to subscribe."""
    try:
        await socket.send_str(text)
    except (ConnectionError, RuntimeError) as error:
        log.info("video subscription not sent: the media socket closed", extra={"reason": str(error)[:200]})
