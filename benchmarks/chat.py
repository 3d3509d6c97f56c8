"""Chat capture throughput and latency.

1. Webhook work per core, in process: chat notifications (one-item batches, as Graph sends most of them, and
   20-item batches) validated (validation-token JWT, clientState), decrypted (RSA-OAEP key, HMAC-SHA256, AES-CBC)
   and enqueued (in-memory queue), one thread. Baseline in the same run: the call-record webhook's work
   (clientState check and enqueue of a basic notification). Goal: >= 500 notifications/s per core.
2. Webhook latency through the local Functions host enqueueing to Azurite, open loop at 200 notifications/s
   (each latency from the request's due time). Goal: p99 < 100 ms (Graph marks an endpoint slow at 2.9 s).
   Baseline in the same host, just before each run: the call-record webhook at the same rate, which says what
   the host and the (shared) machine give any webhook at that moment.
3. Back-fill throughput against the Teams/Graph simulator: a chat of `--messages` messages read through the
   export API (`/users/{id}/chats/getAllMessages`, 50 a page) and ingested into the in-memory repository;
   baseline in the same run: the export paging alone.

Each figure is the median of `--repeat` runs (3), with the spread (min-max) and the load average; the machine
is shared, so figures taken under others' load say so.

    .venv/bin/python benchmarks/chat.py [--seconds 20] [--rate 200] [--messages 2000] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import azure.functions as func  # noqa: E402
import httpx  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from jwt.algorithms import RSAAlgorithm  # noqa: E402

from benchmarks.webhook import cpu_seconds, emulators, functions_host, machine, queue_length, write_section  # noqa: E402
from devstack.chat_certificate import ensure_chat_certificate  # noqa: E402
from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402
from devstack.simulator import DEMO_TENANT, health_url, launch_argv  # noqa: E402
from verbatim.chat.certificates import load_pem  # noqa: E402
from verbatim.chat.webhook import ChatNotificationReceiver  # noqa: E402
from verbatim.platform.audit import InMemoryAuditLog  # noqa: E402
from verbatim.platform.queues import InMemoryQueue  # noqa: E402
from verbatim.wiring import current  # noqa: E402

TENANT = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
APP = "9a3d5c71-2e4f-4b60-8d1a-7f6e5d4c3b21"
APP_SECRET = "sim-functions-local-only"  # noqa: S105 - the simulator's demo credential
SECRET = "benchmark-client-state"  # noqa: S105
TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"
PUBLISHER = "0bf30f3b-4a52-48df-9a82-234910c4a086"

# The app the host runs for the latency measurement: only the chat webhook (no queue triggers draining).
chat_app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@chat_app.route(route="chat/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def chat_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # What functions/chat.py's trigger does for a notification POST (no handshake here).
    chat = current().chat
    await chat.receiver.accept_async(req.get_body(), req.headers.get("content-type"), chat.async_messages_queue())
    return func.HttpResponse(status_code=202)


@chat_app.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # Baseline in the same host: functions/graph_webhook.py's call-record webhook (clientState, enqueue).
    runtime = current().callrecords
    await runtime.receiver.accept_async(req.get_body(), req.headers.get("content-type"), runtime.async_webhook_queue())
    return func.HttpResponse(status_code=202)


# --- notifications as Graph builds them -------------------------------------------------------------------------


class Graph:
    """Encrypts chat messages for our certificate and signs validation tokens, as Microsoft Graph does."""

    def __init__(self, pem: Path) -> None:
        pair = load_pem(pem.read_bytes())
        self.certificate_id = pair.certificate_id
        self.thumbprint = pair.decryption.thumbprint
        self.public_key = pair.decryption.private_key.public_key()
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "bench-key"
        self.pair = pair

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def lookup(self, kid: str) -> Any:
        return self.signing_key.public_key() if kid == self.kid else None

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "aud": APP,
            "iss": f"https://sts.windows.net/{TENANT}/",
            "iat": now,
            "nbf": now,
            "exp": now + 29100,
            "appid": PUBLISHER,
            "tid": TENANT,
            "ver": "1.0",
        }
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid})

    def encrypt(self, resource: dict[str, Any]) -> dict[str, str]:
        key = os.urandom(32)
        padder = padding.PKCS7(128).padder()
        plain = padder.update(json.dumps(resource).encode()) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        data = encryptor.update(plain) + encryptor.finalize()
        sha1 = hashes.SHA1()  # noqa: S303 - Graph wraps the key with OAEP over SHA-1
        return {
            "data": base64.b64encode(data).decode(),
            "dataSignature": base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode(),
            "dataKey": base64.b64encode(self.public_key.encrypt(key, OAEP(MGF1(sha1), sha1, None))).decode(),
            "encryptionCertificateId": self.certificate_id,
            "encryptionCertificateThumbprint": self.thumbprint,
        }

    def collection(self, items: int, token: str) -> bytes:
        value = []
        for _ in range(items):
            now = datetime.now(UTC)
            ms = str(int(now.timestamp() * 1000))
            chat = f"19:{TOM}_{TARA}@unq.gbl.spaces"
            message = {
                "id": ms,
                "etag": ms,
                "messageType": "message",
                "createdDateTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "lastModifiedDateTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "chatId": chat,
                "from": {"user": {"id": TOM, "displayName": "Tom Trader", "userIdentityType": "aadUser"}},
                "body": {"contentType": "text", "content": "Buy five hundred at par, " + uuid.uuid4().hex},
            }
            value.append(
                {
                    "subscriptionId": "bench-subscription",
                    "changeType": "created",
                    "clientState": SECRET,
                    "subscriptionExpirationDateTime": "2030-01-01T00:00:00.000+00:00",
                    "resource": f"chats('{chat}')/messages('{ms}')",
                    "resourceData": {"id": ms, "@odata.type": "#Microsoft.Graph.chatMessage"},
                    "encryptedContent": self.encrypt(message),
                    "tenantId": TENANT,
                }
            )
        return json.dumps({"value": value, "validationTokens": [token]}).encode()


# --- 1. per core ------------------------------------------------------------------------------------------------


def per_core(graph: Graph, items: int, seconds: float) -> float:
    """Notifications validated, decrypted and enqueued per second on one thread."""
    receiver = ChatNotificationReceiver(
        certificates={graph.certificate_id: graph.pair.decryption},
        signing_keys=graph.lookup,
        app_ids=[APP],
        tenant_ids=[TENANT],
        client_states=[SECRET],
        audit=InMemoryAuditLog(),
    )
    token = graph.token()
    bodies = [graph.collection(items, token) for _ in range(max(1, int(600 / items)))]
    queue = InMemoryQueue()
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for body in bodies:
            accepted = receiver.accept(body, "application/json", queue)
            assert accepted.refused is None, accepted.refused
            done += accepted.enqueued
    return done / (time.perf_counter() - start)


def baseline_per_core(seconds: float) -> float:
    """The call-record webhook's work on a basic notification (clientState check, enqueue)."""
    from verbatim.callrecords.webhook import ClientStates, NotificationReceiver

    receiver = NotificationReceiver(
        client_states=ClientStates([SECRET]), queue=InMemoryQueue(), audit=InMemoryAuditLog()
    )
    body = call_record_notification()
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += receiver.accept(body, "application/json").enqueued
    return done / (time.perf_counter() - start)


def call_record_notification() -> bytes:
    """A basic callRecords notification (what the call-record webhook takes)."""
    return json.dumps(
        {
            "value": [
                {
                    "subscriptionId": "s",
                    "clientState": SECRET,
                    "changeType": "created",
                    "resource": "communications/callRecords/e523d2ed-2966-4b6b-925b-754a88034cc5",
                    "resourceData": {"id": "e523d2ed-2966-4b6b-925b-754a88034cc5"},
                    "tenantId": TENANT,
                }
            ]
        }
    ).encode()


# --- 2. latency through the host -------------------------------------------------------------------------------


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[str]:
    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/keys"
    finally:
        server.shutdown()


async def open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[list[float], int, dict[int, int], float]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    accepted = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def one(due: float, body: bytes) -> None:
            nonlocal accepted
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            latencies.append((time.perf_counter() - due) * 1000)
            if status == 202:
                accepted += 1
            else:
                errors[status] = errors.get(status, 0) + 1

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(start + n / rate, body) for n, body in enumerate(bodies)))
        elapsed = time.perf_counter() - start
    return latencies, accepted, errors, len(bodies) / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- 3. back-fill ----------------------------------------------------------------------------------------------


@contextmanager
def simulator(temp: Path) -> Iterator[str]:
    port, https_port = free_port(), free_port()
    process = ManagedProcess(
        name="simulator",
        argv=launch_argv("127.0.0.1", port, DEMO_TENANT, "realtime", https_port=https_port, state_dir=temp / "sim"),
        ready=http_ready(health_url("127.0.0.1", port), ok=lambda status: status == 200),
        cwd=REPO_ROOT,
        log_path=temp / "simulator.log",
        ports=(port, https_port),
        startup_timeout=60,
    )
    with process:
        yield f"http://127.0.0.1:{port}"


def backfill_runs(base: str, messages: int, repeat: int) -> tuple[list[float], list[float]]:
    from verbatim.chat.backfill import ChatBackfiller, InMemoryWatermarks
    from verbatim.chat.directory import GraphChatDirectory
    from verbatim.chat.ingest import ChatIngestor
    from verbatim.chat.store import InMemoryChatRepository
    from verbatim.contracts.chat import ChatBackfillRequest
    from verbatim.graph import RetryPolicy, graph_client
    from verbatim.platform.blobs import InMemoryBlobStore
    from verbatim.platform.settings import reload_settings

    health = httpx.get(f"{base}/sim/health", timeout=10).json()
    os.environ.update(
        {
            "GRAPH_BASE_URL": base,
            "GRAPH_AUTHORITY_HOST": health["httpsUrl"],
            "GRAPH_CA_CERT": health["caFile"],
            "GRAPH_TENANT_ID": TENANT,
            "GRAPH_CLIENT_ID": APP,
            "GRAPH_CLIENT_SECRET": APP_SECRET,
        }
    )
    settings = reload_settings()
    graph = graph_client(settings, TENANT, retry=RetryPolicy(max_retry_after=10))
    chat = httpx.post(f"{base}/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}, timeout=10).json()
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(messages):
            sender = TOM if n % 2 else TARA
            client.post(
                f"/sim/chats/{chat['id']}/messages", json={"from": sender, "content": f"message {n}"}
            ).raise_for_status()
    since = datetime.now(UTC) - timedelta(hours=1)

    class Recorded:
        def must_record(self, user_id: str, at: datetime) -> bool | None:
            return user_id == TOM

        def recorded(self, tenant_id: str, at: datetime) -> list[str]:
            return [TOM]

    paging, ingesting = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        seen = sum(
            len(page.get("value") or [])
            for page in graph.iter_pages(
                f"/users/{TOM}/chats/getAllMessages",
                params={"$top": "50", "$filter": f"lastModifiedDateTime gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"},
            )
        )
        paging.append(seen / (time.perf_counter() - start))
        ingestor = ChatIngestor(
            repository=(repo := InMemoryChatRepository()),
            directory=GraphChatDirectory(lambda tenant: graph),
            policy=Recorded(),
            blobs=InMemoryBlobStore(),
            tenant_ids=[TENANT],
        )
        backfiller = ChatBackfiller(
            graph_for=lambda tenant: graph,
            ingestor=ingestor,
            users=Recorded(),
            watermarks=InMemoryWatermarks(),
            overlap=timedelta(0),
        )
        start = time.perf_counter()
        # `until` an hour ahead: the simulator's clock may run a little ahead of ours
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        result = backfiller.run(
            ChatBackfillRequest(tenant_id=TENANT, reason="admin", since=since.isoformat(), until=until)
        )
        elapsed = time.perf_counter() - start
        stored = len(repo.versions(chat["id"]))
        assert result.stored == messages == stored, (result.stored, messages, stored)
        ingesting.append(result.stored / elapsed)
    graph.close()
    return paging, ingesting


# --- report -----------------------------------------------------------------------------------------------------


def spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()

    with emulators() as stack:
        pem = ensure_chat_certificate(stack.temp / "chat.pem")
        graph = Graph(pem)

        single = [per_core(graph, 1, min(args.seconds, 10)) for _ in range(args.repeat)]
        batch = [per_core(graph, 20, min(args.seconds, 10)) for _ in range(args.repeat)]
        baseline = [baseline_per_core(min(args.seconds, 10)) for _ in range(args.repeat)]
        print("per core:", spread(single), spread(batch), "baseline", spread(baseline))

        with jwks_server(graph.jwks()) as jwks_url:
            env = {
                "GRAPH_CLIENT_ID": APP,
                "GRAPH_CLIENT_STATE": SECRET,
                "GRAPH_TENANT_ID": TENANT,
                "CHAT_ENCRYPTION_PEM_FILE": str(pem),
                "CHAT_VALIDATION_JWKS_URL": jwks_url,
            }
            with functions_host(stack, "benchmarks.chat:chat_app", env) as (base, key, pid):
                url = f"{base}/api/chat/notifications?code={key}"
                baseline_url = f"{base}/api/graph/notifications?code={key}"
                token = graph.token()
                asyncio.run(open_loop(url, [graph.collection(1, token) for _ in range(50)], 50))  # warm-up
                asyncio.run(open_loop(baseline_url, [call_record_notification()] * 50, 50))
                runs = []
                baseline_runs = []
                for _ in range(args.repeat):
                    # The call-record webhook through the same host at the same rate, just before: what the host
                    # and the machine give any webhook at that moment.
                    plain = [call_record_notification()] * int(args.rate * args.seconds)
                    latencies, _, _, _ = asyncio.run(open_loop(baseline_url, plain, args.rate))
                    baseline_runs.append((percentile(latencies, 0.99), percentile(latencies, 0.5)))
                    bodies = [graph.collection(1, token) for _ in range(int(args.rate * args.seconds))]
                    cpu_before = cpu_seconds(pid)
                    latencies, accepted, errors, achieved = asyncio.run(open_loop(url, bodies, args.rate))
                    cpu = cpu_seconds(pid) - cpu_before
                    runs.append(
                        (
                            percentile(latencies, 0.99),
                            percentile(latencies, 0.5),
                            accepted,
                            len(bodies),
                            errors,
                            achieved,
                            cpu,
                        )
                    )
                    print(
                        f"latency: p50 {runs[-1][1]:.1f} ms, p99 {runs[-1][0]:.1f} ms, {accepted}/{len(bodies)} in; "
                        f"call-record webhook before it: p50 {baseline_runs[-1][1]:.1f} ms, "
                        f"p99 {baseline_runs[-1][0]:.1f} ms"
                    )
                time.sleep(1)
                queued = queue_length(stack.azurite_connection, "chat-messages")

    with emulators() as stack, simulator(stack.temp) as sim:
        paging, ingesting = backfill_runs(sim, args.messages, args.repeat)
        print("back-fill:", spread(paging), spread(ingesting))
    load_end = os.getloadavg()

    p99s = [r[0] for r in runs]
    p50s = [r[1] for r in runs]
    lines = [
        f"Machine: {machine()}; `benchmarks/chat.py --seconds {args.seconds:.0f} --rate {args.rate:.0f} "
        f"--messages {args.messages} --repeat {args.repeat}`, {date.today()}; median of {args.repeat} runs "
        f"(min-max); load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at the end, on this shared machine.",
        "",
        "| figure | median (min-max) |",
        "|---|---|",
        f"| chat notifications validated, decrypted, enqueued; one-item batches, one thread | {spread(single, '/s')} |",
        f"| the same, 20-item batches (one validation token per batch) | {spread(batch, '/s')} |",
        f"| baseline: call-record webhook work (clientState + enqueue), one thread | {spread(baseline, '/s')} |",
        f"| webhook through the local host at {args.rate:.0f}/s (open loop), p50 | {spread(p50s, ' ms', 1)} |",
        f"| webhook through the local host at {args.rate:.0f}/s (open loop), p99 | {spread(p99s, ' ms', 1)} |",
        f"| baseline: call-record webhook through the same host at {args.rate:.0f}/s, p50 | "
        f"{spread([b[1] for b in baseline_runs], ' ms', 1)} |",
        f"| baseline: call-record webhook through the same host at {args.rate:.0f}/s, p99 | "
        f"{spread([b[0] for b in baseline_runs], ' ms', 1)} |",
        f"| chat requests completed per second (open loop at {args.rate:.0f}/s) | "
        f"{spread([r[5] for r in runs], '/s')} |",
        f"| host CPU per chat notification (HTTP, checks, enqueue) | "
        f"{spread([r[6] / max(1, r[3]) * 1000 for r in runs], ' ms', 2)} |",
        f"| back-fill: export API paging alone (simulator, 50 a page) | {spread(paging, ' messages/s')} |",
        f"| back-fill: export API + ingestion (in-memory store) | {spread(ingesting, ' messages/s')} |",
        "",
        f"Accepted (202) per run: {', '.join(f'{r[2]}/{r[3]}' for r in runs)}; errors: "
        f"{', '.join(str(r[4]) for r in runs)}; `chat-messages` held {queued} messages afterwards "
        f"(warm-up 50 + {sum(r[2] for r in runs)} accepted).",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("chat", table)


if __name__ == "__main__":
    main()
