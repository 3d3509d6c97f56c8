"""A test-side Teams platform for the recorder: what the recorder talks to, and nothing more.

It signs platform JWTs with an RSA key the test generates (OpenID configuration + JWKS served over HTTPS
from a local CA), issues client-credentials tokens to MSAL, answers the Graph call-control requests
(answer, reject, updateRecordingStatus, keepAlive, DELETE) and drives calls the way graph-teams.md
documents: incoming notification → answer → establishing/established on the callbackUri → after
`updateRecordingStatus(recording)`, audio over the simulated media transport → roster → terminated.

It runs on its own event loop in a thread so synchronous tests can drive it while the recorder runs as a
real process. The Teams/Graph simulator (devstack/simulator) is the full platform; this is the minimum
a recorder test needs, under the test's control (latencies, failures, keys).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import jwt
import numpy as np
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.emulators import REPO_ROOT, AzuritePorts, azurite, ensure_tls
from devstack.processes import ManagedProcess, free_port, http_ready
from devstack.simulator.media import media_proof
from recorder_vm import launch_argv as recorder_argv

T = TypeVar("T")

PLATFORM_ISSUER = "https://api.botframework.com"
HEADER = struct.Struct("<IIq")
FRAME_SAMPLES = 320
FRAME_TICKS = 200_000
TENANT = "7b0c3f4e-0000-4000-8000-00000000c0de"
BOT_APP_ID = "5c1e0b6a-0000-4000-8000-0000000000b0"
API_AUDIENCE = "api://verbatim"  # our API: the audience of the lifecycle's tokens to a recorder
FUNCTIONS_PRINCIPAL = "9d2f4c1a-0000-4000-8000-0000000000f1"  # the Function App's service principal
FUNCTIONS_APP_ID = "9d2f4c1a-0000-4000-8000-0000000000a1"  # its app registration's client id


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url(numbers.n),
            "e": _b64url(numbers.e),
        }


@dataclass
class CallScript:
    """What a test call does: its audio (int16 mono 16 kHz), pace, roster and how it ends."""

    audio: np.ndarray
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    call_chain_id: str | None = None
    realtime: bool = True
    speed: float = 1.0  # > 1 sends faster than real time (when realtime)
    unmixed: bool = False
    speakers: list[np.ndarray] | None = None  # unmixed: one track per speaker, same length as audio
    participants: list[dict[str, Any]] = field(default_factory=list)
    establish_order: tuple[str, ...] = ("establishing", "established")
    stop_after_seconds: float | None = None  # stop sending media (the test will kill the recorder)
    stream_failure: bool = False  # end the media with a streamFailure event instead of "end"
    gap: tuple[float, float] | None = None  # (start s, length s): frames not sent at all
    terminate: bool = True
    result_info: dict[str, Any] = field(
        default_factory=lambda: {"@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 4097}
    )


@dataclass
class CallRecord:
    """What happened to one call on the platform side."""

    call_id: str
    invited_at: float = 0.0
    answered_at: float | None = None
    answer: dict[str, Any] | None = None
    rejected: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)
    status_event: asyncio.Event = field(default_factory=asyncio.Event)
    answer_event: asyncio.Event = field(default_factory=asyncio.Event)
    keepalives: int = 0  # successful keepAlive requests
    keepalive_attempts: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status)
    deleted: bool = False
    frames_sent: int = 0
    media_error: str | None = None

    @property
    def answer_seconds(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.invited_at


class FakePlatform:
    def __init__(self, state_dir: Path, *, port: int | None = None, key: SigningKey | None = None) -> None:
        """`port` and `key` (default: a free port, a new key) let two processes play one platform: the same
        address and signing key (benchmarks/invitation_storm.py serves Graph from its own process)."""
        self.port = port if port is not None else free_port()
        self.tls = ensure_tls(state_dir / "tls")
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.key = key if key is not None else SigningKey.generate()
        self.calls: dict[str, CallRecord] = {}
        self.answer_delay = 0.0
        self.fail_recording_status: int | None = None
        self.fail_keepalives = 0  # answer this many keepAlive requests with 500
        self.fail_answers = 0  # answer this many answer requests with 503 (Graph busy: the recorder retries)
        self.tls_handshakes = 0  # TLS connections clients opened to this platform (Graph, Entra, the key set)
        # Called with (call id, status) when an updateRecordingStatus arrives, before it is answered.
        self.on_recording_status: Callable[[str, str], None] | None = None
        self.token_requests = 0
        self.graph_requests: list[str] = []  # "METHOD path" of every Graph request, in order
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-teams", daemon=True)
        self._runner: web.AppRunner | None = None
        self._client_ssl = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        self._session: aiohttp.ClientSession | None = None

    # --- life ---

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    def stop(self) -> None:
        self.run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/platform/openid", self._openid)
        app.router.add_get("/platform/keys", self._keys)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._entra_openid)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v1.0/communications/calls/{call_id}/{action}", self._call_action)
        app.router.add_delete("/v1.0/communications/calls/{call_id}", self._call_delete)
        app.router.add_delete("/v1.0/communications/calls/{call_id}/participants/{pid}", self._participant_delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        server_ssl.sni_callback = self._handshake  # called for every client hello (with None: we are an IP address)
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=server_ssl).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    def _handshake(self, _connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        self.tls_handshakes += 1

    def close_connections(self) -> int:
        """Close every connection clients hold open to this platform, as a server's idle timeout or a restarted
        front end does (call it between requests); returns how many were open."""

        async def close() -> int:
            assert self._runner is not None and self._runner.server is not None
            connections = self._runner.server.connections
            for connection in connections:
                connection.force_close()
            return len(connections)

        return self.run(close())

    def open_connections(self) -> int:
        """Connections clients hold open to this platform now."""

        async def count() -> int:
            assert self._runner is not None and self._runner.server is not None
            return len(self._runner.server.connections)

        return self.run(count())

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def recorder_env(self) -> dict[str, str]:
        """The settings a recorder needs to trust this platform and call its Graph, and to know the lifecycle."""
        return {
            "RECORDER_PLATFORM_OPENID_CONFIG_URL": f"{self.base_url}/platform/openid",
            "AUTH_OPENID_CONFIG_URL": f"{self.base_url}/{TENANT}/v2.0/.well-known/openid-configuration",
            "AUTH_AUDIENCE": API_AUDIENCE,
            "AUTH_CA_CERT": str(self.tls.ca_cert),
            "GRAPH_BASE_URL": self.base_url,
            "GRAPH_AUTHORITY_HOST": self.base_url,
            "GRAPH_CA_CERT": str(self.tls.ca_cert),
            "GRAPH_TENANT_ID": TENANT,
            "GRAPH_CLIENT_ID": BOT_APP_ID,
            "GRAPH_CLIENT_SECRET": "test-secret-not-real",
        }

    # --- tokens ---

    def token(self, **overrides: Any) -> str:
        """A platform JWT; keyword arguments replace claims (None removes one), `key=` signs with another key."""
        key: SigningKey = overrides.pop("key", self.key)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": PLATFORM_ISSUER,
            "aud": BOT_APP_ID,
            "tid": TENANT,
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})

    def entra_token(self, **overrides: Any) -> str:
        """An app-only Entra access token of the tenant for our API (what the lifecycle sends a recorder); keyword
        arguments replace claims (None removes one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": f"{self.base_url}/{TENANT}/v2.0",
            "aud": API_AUDIENCE,
            "tid": TENANT,
            "oid": FUNCTIONS_PRINCIPAL,
            "sub": FUNCTIONS_PRINCIPAL,
            "idtyp": "app",
            # v2 access tokens name the client they were issued to (access-token claims reference); ID tokens do
            # not, and the validator refuses a token without it (issue 13, finding 9).
            "azp": FUNCTIONS_APP_ID,
            "roles": ["Recorder.Lifecycle"],
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.key.private, algorithm="RS256", headers={"kid": self.key.kid})

    async def _openid(self, _request: web.Request) -> web.Response:
        return web.json_response({"issuer": PLATFORM_ISSUER, "jwks_uri": f"{self.base_url}/platform/keys"})

    async def _keys(self, _request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.jwk()]})

    async def _entra_openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.base_url}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{self.base_url}/platform/keys",
            }
        )

    async def _token(self, _request: web.Request) -> web.Response:
        self.token_requests += 1
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": uuid.uuid4().hex})

    # --- Graph call control ---

    def _record(self, call_id: str) -> CallRecord:
        return self.calls.setdefault(call_id, CallRecord(call_id))

    async def _call_action(self, request: web.Request) -> web.Response:
        self.graph_requests.append(f"{request.method} {request.path}")
        call_id, action = request.match_info["call_id"], request.match_info["action"]
        record = self._record(call_id)
        body = await request.json() if request.can_read_body else {}
        if action == "answer":
            if self.fail_answers > 0:
                self.fail_answers -= 1
                return web.json_response(
                    {"error": {"code": "ServiceUnavailable"}}, status=503, headers={"Retry-After": "0"}
                )
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            record.answered_at = time.monotonic()
            record.answer = body
            record.answer_event.set()
            return web.Response(status=202)
        if action == "reject":
            record.rejected = body
            record.answer_event.set()
            return web.Response(status=202)
        if action == "updateRecordingStatus":
            if self.fail_recording_status is not None:
                return web.json_response({"error": {"code": "failed"}}, status=self.fail_recording_status)
            if self.on_recording_status is not None:
                await asyncio.to_thread(self.on_recording_status, call_id, body["status"])
            record.statuses.append(body["status"])
            record.status_event.set()
            return web.json_response(
                {
                    "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                    "id": str(uuid.uuid4()),
                    "status": "completed",
                    "clientContext": body.get("clientContext"),
                }
            )
        if action == "keepAlive":
            if self.fail_keepalives > 0:
                self.fail_keepalives -= 1
                record.keepalive_attempts.append((time.monotonic(), 500))
                return web.json_response({"error": {"code": "InternalServerError"}}, status=500)
            record.keepalives += 1
            record.keepalive_attempts.append((time.monotonic(), 200))
            return web.Response(status=200)
        return web.Response(status=404)

    async def _participant_delete(self, request: web.Request) -> web.Response:
        self.graph_requests.append(f"{request.method} {request.path}")
        return web.Response(status=204)

    async def _call_delete(self, request: web.Request) -> web.Response:
        self.graph_requests.append(f"{request.method} {request.path}")
        self._record(request.match_info["call_id"]).deleted = True
        return web.Response(status=204)

    # --- driving a call ---

    @staticmethod
    def incoming_notification(
        call_id: str, *, policy: str = "Traders strict", call_chain_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [
                {
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "created",
                    "resource": f"/app/calls/{call_id}",
                    "resourceUrl": f"/communications/calls/{call_id}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.call",
                        "id": call_id,
                        "state": "incoming",
                        "direction": "incoming",
                        "callChainId": call_chain_id or str(uuid.uuid4()),
                        "tenantId": TENANT,
                        "myParticipantId": str(uuid.uuid4()),
                        "source": {
                            "@odata.type": "#microsoft.graph.participantInfo",
                            "id": "observed-participant",
                            "identity": {
                                "@odata.type": "#microsoft.graph.identitySet",
                                "user": {
                                    "id": "a1b2c3d4-0000-4000-8000-000000000001",
                                    "displayName": "Ada Trader",
                                    "tenantId": TENANT,
                                    "userPrincipalName": "ada@contoso.example",
                                },
                            },
                            "endpointType": "default",
                            "region": "emea",
                        },
                        "targets": [
                            {
                                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                                "identity": {"applicationInstance": {"id": "app-instance", "identityProvider": "AAD"}},
                            }
                        ],
                        "incomingContext": {
                            "@odata.type": "#microsoft.graph.incomingContext",
                            "sourceParticipantId": "observed-participant",
                            "observedParticipantId": "observed-participant",
                        },
                        "applicationMetadata": {
                            "botData": {
                                "user": {"participationMethod": "caller", "clientLocation": "GB"},
                                "inviteReasons": ["PolicyBasedRecording"],
                                "policyIdentifier": policy,
                                "pairedRecorders": [],
                            }
                        },
                        "meetingInfo": {"@odata.type": "#microsoft.graph.tokenMeetingInfo", "token": "opaque"},
                        "someFieldFromTheFuture": {"tolerated": True},
                    },
                }
            ],
        }

    @staticmethod
    def call_notification(call_id: str, state: str, *, result_info: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"@odata.type": "#microsoft.graph.call", "id": call_id, "state": state}
        if result_info is not None:
            data["resultInfo"] = result_info
        return {
            "value": [
                {
                    "changeType": "deleted" if state == "terminated" else "updated",
                    "resourceUrl": f"/communications/calls/{call_id}",
                    "resourceData": data,
                }
            ]
        }

    @staticmethod
    def roster_notification(call_id: str, participants: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call_id}/participants",
                    "resourceData": participants,
                }
            ]
        }

    async def post(self, url: str, body: Any, *, token: str | None = None, raw: bytes | None = None) -> int:
        assert self._session is not None
        headers = {"Authorization": f"Bearer {token or self.token()}", "Content-Type": "application/json"}
        data = raw if raw is not None else json.dumps(body).encode()
        async with self._session.post(url, data=data, headers=headers, ssl=False) as response:
            await response.read()
            return response.status

    async def invite(
        self,
        recorder_url: str,
        call_id: str,
        *,
        call_chain_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> CallRecord:
        """Post an incoming-call notification (ours, or `body` as given) to the load-balanced webhook."""
        record = self._record(call_id)
        record.invited_at = time.monotonic()
        body = body or self.incoming_notification(call_id, call_chain_id=call_chain_id)
        status = await self.post(f"{recorder_url}/api/calling", body)
        assert status == 202, status
        return record

    async def drive(
        self,
        recorder_url: str,
        script: CallScript,
        *,
        answer_timeout: float = 5.0,
        invitation: dict[str, Any] | None = None,
    ) -> CallRecord:
        """Place a whole call against a recorder and return what happened (`invitation`: the incoming-call
        notification to send instead of ours; its call id must be `script.call_id`)."""
        record = await self.invite(recorder_url, script.call_id, call_chain_id=script.call_chain_id, body=invitation)
        await asyncio.wait_for(record.answer_event.wait(), answer_timeout)
        if record.rejected is not None or record.answer is None:
            return record
        callback = record.answer["callbackUri"]
        for state in script.establish_order:
            await self.post(callback, self.call_notification(script.call_id, state))
        await asyncio.wait_for(record.status_event.wait(), 5.0)
        # Stream once the recorder has the success reply: media stamped before it is never kept (pre-roll is
        # tested on its own), and the tests of a whole call compare all of its audio.
        await self._until_recording(recorder_url, script.call_id)
        if script.participants:
            await self.post(callback, self.roster_notification(script.call_id, script.participants))
        blob = json.loads(record.answer["mediaConfig"]["blob"])
        await self.stream(blob, script, record)
        if script.terminate and script.stop_after_seconds is None:
            await self.post(
                callback, self.call_notification(script.call_id, "terminated", result_info=script.result_info)
            )
        return record

    def http_session(self) -> aiohttp.ClientSession:
        """The platform's HTTP session (on its own loop), trusting the test CA."""
        assert self._session is not None
        return self._session

    async def _connect_media(self, endpoint: str) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        # wss:// endpoints are verified against the test CA, as the platform verifies the bot's certificate.
        return await self._session.ws_connect(endpoint, ssl=self._client_ssl if endpoint.startswith("wss:") else True)

    async def open_media(self, blob: dict[str, Any], call_id: str) -> aiohttp.ClientWebSocketResponse:
        """Connect to the media session the answer's blob names and say hello (mixed audio)."""
        socket = await self._connect_media(blob["endpoint"])
        await socket.send_str(json.dumps(media_hello(blob["mediaSessionId"], call_id, key=blob.get("mediaKey"))))
        return socket

    @staticmethod
    async def send_audio(socket: aiohttp.ClientWebSocketResponse, audio: np.ndarray, *, start_ticks: int) -> None:
        """Send `audio` as mixed 20 ms frames stamped from `start_ticks` (100-ns ticks since the epoch)."""
        for n in range(len(audio) // FRAME_SAMPLES):
            chunk = audio[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES].astype("<i2").tobytes()
            await socket.send_bytes(HEADER.pack(1, 0, start_ticks + n * FRAME_TICKS) + chunk)

    async def _until_recording(self, recorder_url: str, call_id: str) -> None:
        """Wait (up to 10 s) until the recorder's loopback admin route shows the call as recording."""
        assert self._session is not None
        async with asyncio.timeout(10.0):
            while True:
                async with self._session.get(f"{recorder_url}/admin/calls", ssl=False) as response:
                    calls = (await response.json())["calls"] if response.status == 200 else []
                if any(c["call_id"] == call_id and c["state"] == "recording" for c in calls):
                    return
                await asyncio.sleep(0.02)

    async def stream(self, blob: dict[str, Any], script: CallScript, record: CallRecord) -> None:
        assert self._session is not None
        frames = len(script.audio) // FRAME_SAMPLES
        start_ticks = time.time_ns() // 100
        gap = (
            (int(script.gap[0] * 50), int((script.gap[0] + script.gap[1]) * 50)) if script.gap is not None else (-1, -1)
        )
        limit = frames if script.stop_after_seconds is None else min(frames, int(script.stop_after_seconds * 50))
        started = time.monotonic()
        async with await self._connect_media(blob["endpoint"]) as socket:
            hello = media_hello(
                blob["mediaSessionId"], script.call_id, key=blob.get("mediaKey"), unmixed=script.unmixed
            )
            await socket.send_str(json.dumps(hello))
            for n in range(limit):
                if script.realtime:
                    due = started + n * 0.02 / script.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if gap[0] <= n < gap[1]:
                    continue
                ticks = start_ticks + n * FRAME_TICKS
                span = slice(n * FRAME_SAMPLES, (n + 1) * FRAME_SAMPLES)
                if script.unmixed and script.speakers:
                    sent = False
                    for index, speaker in enumerate(script.speakers, start=1):
                        chunk = speaker[span]
                        if np.abs(chunk).max(initial=0) > 0:
                            await socket.send_bytes(HEADER.pack(1, index, ticks) + chunk.astype("<i2").tobytes())
                            sent = True
                    if not sent:
                        await socket.send_bytes(HEADER.pack(1, 0, ticks) + bytes(FRAME_SAMPLES * 2))
                else:
                    await socket.send_bytes(HEADER.pack(1, 0, ticks) + script.audio[span].astype("<i2").tobytes())
                record.frames_sent += 1
            if script.stream_failure:
                await socket.send_str(json.dumps({"type": "streamFailure", "reason": "test: media path lost"}))
            elif script.stop_after_seconds is None:
                await socket.send_str(json.dumps({"type": "end"}))
            else:
                # Keep the connection open while the test kills the recorder.
                await asyncio.sleep(0.5)


def media_hello(session_id: str, call_id: str, *, key: str | None, unmixed: bool = False) -> dict[str, Any]:
    """The platform's first media message; with `key`, the proof that it holds the session's key."""
    hello: dict[str, Any] = {
        "type": "hello",
        "version": 1,
        "mediaSessionId": session_id,
        "callId": call_id,
        "format": "pcm-16khz-16bit-mono",
        "frameMs": 20,
        "unmixed": unmixed,
    }
    if key is not None:
        hello["proof"] = media_proof(key, session_id, call_id)
    return hello


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@dataclass
class PlatformRecorder:
    """One recorder process against a `FakePlatform`, on a private Azurite."""

    platform: FakePlatform
    url: str
    process: ManagedProcess


@contextmanager
def recorder_on_fake_platform(root: Path, settings: Mapping[str, str] | None = None) -> Iterator[PlatformRecorder]:
    """A private Azurite, a `FakePlatform` and one recorder process that trusts it and logs warnings only, all under
    `root`; `settings` are added to the recorder's environment last (they may replace its PYTHONPATH, the repo).
    The recorder and Azurite stop on leaving, then the platform."""
    ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
    fake = FakePlatform(root / "platform")
    fake.start()
    port = free_port()
    env = {
        **fake.recorder_env(),
        "AzureWebJobsStorage": ports.connection_string,
        "RECORDINGS_STORAGE": ports.connection_string,
        "PYTHONPATH": str(REPO_ROOT),
        "VERBATIM_LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    with azurite(ports, root / "azurite"):
        recorder = ManagedProcess(
            name="recorder",
            argv=recorder_argv(port=port, media_port=free_port(), state_dir=root / "recorder"),
            ready=http_ready(f"http://127.0.0.1:{port}/health", ok=lambda status: status == 200),
            env=env,
            cwd=REPO_ROOT,
            log_path=root / "recorder.log",
        )
        with recorder:
            yield PlatformRecorder(fake, f"http://127.0.0.1:{port}", recorder)
    fake.stop()
