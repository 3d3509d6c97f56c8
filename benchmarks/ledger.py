"""Ledger appends per second, v2 (transparency log) beside v1 (hash chain), on the local Cosmos DB emulator and
Azurite started here on free ports.

v2: `--writers` concurrent writers (threads, spread over `--processes` processes, each a `TransparencyLog` on
the same log, as Function App instances would be) each keep `--in-flight` appends outstanding
(`append_async`); a checkpointer signs every `--checkpoint-every` seconds. Figures: appends per second, p50/p99
time-to-integration (from the append call until the entry is in the tree: index assigned and the tree state
moved over it, which is when `append` returns), p99 time-to-checkpoint (until a signed checkpoint covers it),
and the same writers with one append in flight each (what a caller of the blocking `append` sees).
v1 in the same run, same emulator: `Ledger.append` with one writer and with `--writers` writers.

Each run uses fresh emulators; `--runs` runs, median and spread, load average before and after. The machine
is shared, so the load average is printed with the figures.

    .venv/bin/python benchmarks/ledger.py --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos.documents import SSLConfiguration
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from devstack.emulators import COSMOS_EMULATOR_KEY, AzuritePorts, azurite, cosmos_emulator, ensure_tls
from devstack.processes import free_port
from verbatim.contracts.ledger import LogEntry
from verbatim.ledger.log.blobs import AzureLogBlobs
from verbatim.ledger.log.cosmos import CosmosLogStore
from verbatim.ledger.log.maintenance import LogKeys
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.note import note_signer
from verbatim.ledger.signing import LocalKeySigner
from verbatim.ledger.store import CosmosLedgerStore
from verbatim.ledger.writer import Ledger
from verbatim.platform.clients import response_headers_per_thread

ORIGIN = "bench.verbatim.local/verbatim/ledger"


def _cosmos(endpoint: str, ca: str) -> CosmosClient:
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = ca
    client = CosmosClient(endpoint, credential=COSMOS_EMULATOR_KEY, ssl_config=ssl)
    response_headers_per_thread(client)  # one log (and client) per process is shared by its writer threads
    return client


def _log(env: dict[str, str]) -> TransparencyLog:
    container = _cosmos(env["endpoint"], env["ca"]).get_database_client("bench").get_container_client("ledger_log")
    blobs = BlobServiceClient.from_connection_string(env["storage"]).get_container_client("ledger")
    key = serialization.load_pem_private_key(Path(env["key"]).read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    signer = note_signer(ORIGIN, LocalKeySigner(key, "bench"))
    return TransparencyLog(CosmosLogStore(container), AzureLogBlobs(blobs), LogKeys(ORIGIN, signer, (signer.verifier,)))


def _entry(writer: int, n: int) -> tuple[str, str, dict[str, object], str | None]:
    # A realistic mix: reads of recordings (half with the per-hour idempotency key an access carries).
    key = f"accessed:w{writer}:{n}" if n % 2 == 0 else None
    return "accessed", f"recording:{writer:04d}-{n // 50:06d}", {"action": "media.read", "range": n}, key


def writer_process(env: dict[str, str], first: int, writers: int, appends: int, in_flight: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """`writers` threads, each appending `appends` entries with `in_flight` outstanding; puts (latencies in s,
    acknowledged (index, monotonic-wallclock ack time) pairs) on `out`."""
    log = _log(env)
    log.ensure_initialized()
    latencies: list[float] = []
    acked: list[tuple[int, float]] = []
    lock = threading.Lock()

    def run(writer: int) -> None:
        slots = threading.Semaphore(in_flight)
        pending: list[Future[LogEntry]] = []
        for n in range(appends):
            slots.acquire()
            started = time.perf_counter()
            kind, subject, details, key = _entry(writer, n)
            future = log.append_async(kind, subject, details, idempotency_key=key)  # type: ignore[arg-type]

            def done(f: Future[LogEntry], started: float = started) -> None:
                slots.release()
                entry = f.result()
                with lock:
                    latencies.append(time.perf_counter() - started)
                    acked.append((entry.index, time.time()))

            future.add_done_callback(done)
            pending.append(future)
        for future in pending:
            future.result(timeout=120)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(run, range(first, first + writers)))
    log.close()
    out.put((latencies, acked))


def checkpointer(env: dict[str, str], every: float, stop: threading.Event, signed: list[tuple[int, float]]) -> None:
    log = _log(env)
    while not stop.wait(every):
        note = log.checkpoint()
        if note is not None:
            signed.append((log.verify_checkpoint(note), time.time()))


def v2_round(
    env: dict[str, str], writers: int, processes: int, appends: int, in_flight: int, every: float
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    per_process = [writers // processes + (1 if p < writers % processes else 0) for p in range(processes)]
    stop, signed = threading.Event(), []  # type: ignore[var-annotated]
    clock = threading.Thread(target=checkpointer, args=(env, every, stop, signed), daemon=True)
    clock.start()
    started = time.perf_counter()
    workers, first = [], 0
    for count in per_process:
        worker = ctx.Process(target=writer_process, args=(env, first, count, appends, in_flight, out))
        worker.start()
        workers.append(worker)
        first += count
    results = [out.get(timeout=900) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join(timeout=60)
    time.sleep(every * 1.5)  # one more checkpoint covers the last entries
    stop.set()
    clock.join(timeout=120)
    latencies = sorted(x for r in results for x in r[0])
    acked = [a for r in results for a in r[1]]
    to_checkpoint = []
    for index, at in acked:
        covering = next((when for size, when in signed if size > index and when >= at), None)
        if covering is not None:
            to_checkpoint.append(covering - at)
    to_checkpoint.sort()
    total = len(latencies)
    return {
        "appends_per_s": total / elapsed,
        "p50_ms": 1000 * latencies[total // 2],
        "p99_ms": 1000 * latencies[min(total - 1, int(total * 0.99))],
        "p99_checkpoint_s": to_checkpoint[min(len(to_checkpoint) - 1, int(len(to_checkpoint) * 0.99))]
        if to_checkpoint
        else float("nan"),
        "covered": len(to_checkpoint) / max(total, 1),
    }


def v1_round(env: dict[str, str], writers: int, appends: int) -> float:
    """v1 appends/s: `writers` threads on one chain, each with its own Cosmos client (as separate instances
    would be; azure-cosmos 4.17.1 can fail concurrent queries of one client, see verbatim/ledger/log/cosmos.py)."""
    chain = f"bench-{uuid.uuid4().hex[:8]}"

    def ledger() -> Ledger:
        container = _cosmos(env["endpoint"], env["ca"]).get_database_client("bench").get_container_client("ledger")
        return Ledger(CosmosLedgerStore(container), chain, None)

    ledgers = [ledger() for _ in range(writers)]
    ledgers[0].append("sealed", "recording:warm", {})
    started = time.perf_counter()

    def run(writer: int) -> None:
        for n in range(appends):
            kind, subject, details, _ = _entry(writer, n)
            ledgers[writer].append(kind, subject, details)  # type: ignore[arg-type]

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(run, range(writers)))
    return writers * appends / (time.perf_counter() - started)


def one_run(args: argparse.Namespace, work: Path) -> dict[str, float]:
    cosmos_port = free_port()
    ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
    tls = ensure_tls(work / "tls")
    key = work / "log.key"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with cosmos_emulator(cosmos_port, tls, work / "cosmos.log"), azurite(ports, work / "azurite", work / "azurite.log"):
        env = {
            "endpoint": f"https://127.0.0.1:{cosmos_port}",
            "ca": str(tls.ca_cert),
            "storage": ports.connection_string,
            "key": str(key),
        }
        database = _cosmos(env["endpoint"], env["ca"]).create_database_if_not_exists("bench")
        database.create_container_if_not_exists("ledger_log", PartitionKey("/pk"))
        database.create_container_if_not_exists("ledger", PartitionKey("/chain"))
        BlobServiceClient.from_connection_string(env["storage"]).create_container("ledger")
        figures: dict[str, float] = {}
        v1_one = v1_round(env, 1, args.v1_appends)
        v1_many = v1_round(env, args.writers, max(1, args.v1_appends // args.writers))
        figures["v1_1_writer"] = v1_one
        figures[f"v1_{args.writers}_writers"] = v1_many
        sync = v2_round(env, args.writers, args.processes, max(1, args.appends // 10), 1, args.checkpoint_every)
        figures["v2_sync_appends_per_s"] = sync["appends_per_s"]
        figures["v2_sync_p99_ms"] = sync["p99_ms"]
        piped = v2_round(env, args.writers, args.processes, args.appends, args.in_flight, args.checkpoint_every)
        for name, value in piped.items():
            figures[f"v2_{name}"] = value
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--appends", type=int, default=1000, help="v2 appends per writer")
    parser.add_argument("--in-flight", type=int, default=64, help="v2 appends each writer keeps outstanding")
    parser.add_argument("--checkpoint-every", type=float, default=5.0, help="seconds between checkpoints")
    parser.add_argument("--v1-appends", type=int, default=160, help="v1 appends in total per v1 figure")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as work:
            figures = one_run(args, Path(work))
        runs.append(figures)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items()), flush=True)
    load_after = os.getloadavg()[0]
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`benchmarks/ledger.py --runs {args.runs} --writers {args.writers} --processes {args.processes} "
        f"--appends {args.appends} --in-flight {args.in_flight} --checkpoint-every {args.checkpoint_every}`, "
        f"{datetime.now(UTC):%Y-%m-%d}; 1-minute load average {load_before:.2f} at the start, "
        f"{load_after:.2f} at the end.\n"
    )
    print("| figure | median | spread (min to max) |\n|---|---|---|")
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} to {max(values):.1f} |")


if __name__ == "__main__":
    main()
