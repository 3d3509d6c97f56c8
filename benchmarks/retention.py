"""Retention sweep figures on this machine, against real Azurite and the Cosmos emulator started here on free ports:
recordings evaluated per second by the sweep with 100,000 indexed recordings, the cost of the index query
as the container grows, and deletions per second (media, access copy, manifest, certificate, tombstone).

    .venv/bin/python benchmarks/retention.py [--recordings 100000] [--deletions 100] [--no-write]

The indexed recordings are recording records as the lifecycle writes them (spread over six years, three
classes, 2 % under legal hold). The deleted ones are sealed by the lifecycle's own `Sealer` (manifest, WORM
requests, `sealed` ledger entry) over synthetic media, then deleted by the sweep's own path.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from azure.cosmos import CosmosClient, DatabaseProxy  # noqa: E402
from azure.cosmos.aio import CosmosClient as AsyncCosmosClient  # noqa: E402
from azure.cosmos.documents import SSLConfiguration  # noqa: E402

from devstack.emulators import COSMOS_EMULATOR_KEY, AzuritePorts, azurite, cosmos_emulator, ensure_tls  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.provision import provision_cosmos, provision_storage  # noqa: E402
from verbatim.contracts.evidence import (  # noqa: E402
    AccessCopy,
    BlobRef,
    EvidenceTrack,
    RecordingFacts,
    RecordingManifest,
    RetentionTerm,
)
from verbatim.contracts.lifecycle import RecordingRecord, SealIndex  # noqa: E402
from verbatim.contracts.recorder import CallParticipant, Identity, ObservedUser  # noqa: E402
from verbatim.contracts.retention import RetentionClass, RetentionClassConfig  # noqa: E402
from verbatim.evidence.seal import Sealer  # noqa: E402
from verbatim.evidence.worm import Worm  # noqa: E402
from verbatim.ledger.log.service import TransparencyLog  # noqa: E402
from verbatim.platform import clients  # noqa: E402
from verbatim.platform.blobs import AzureBlobStore  # noqa: E402
from verbatim.platform.clients import response_headers_per_thread  # noqa: E402
from verbatim.platform.settings import Settings, reload_settings  # noqa: E402
from verbatim.retention.classes import CosmosRetentionClassStore, RetentionCatalog  # noqa: E402
from verbatim.retention.deletion import RecordingDeleter, evaluate  # noqa: E402
from verbatim.retention.holds import CosmosHoldStore  # noqa: E402
from verbatim.retention.lease import CosmosLeaseStore, Leases  # noqa: E402
from verbatim.retention.recordings import Candidate, CosmosRetentionRecordings  # noqa: E402
from verbatim.retention.storage import RecordingBlobs  # noqa: E402
from verbatim.retention.sweep import RetentionSweep, SweepLimits  # noqa: E402
from verbatim.wiring import container_for  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- retention:start -->", "<!-- retention:end -->"
NOW = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
CLASSES = [
    RetentionClassConfig(name="default", days=1827, legal_basis="MiFID II Art 16(7): five years"),
    RetentionClassConfig(name="finra", days=2192, legal_basis="FINRA 4511: six years"),
    RetentionClassConfig(name="cftc-oral", days=366, legal_basis="CFTC 1.35(a): one year"),
]
WEIGHTS = [("default", 0.5), ("finra", 0.3), ("cftc-oral", 0.2)]
# One page holds every candidate here: the emulator re-runs the whole query for every page it returns.
PAGE_SIZE = 50_000


def database(settings: Settings) -> DatabaseProxy:
    """A client that waits for the emulator: one query over 100,000 documents takes longer than the SDK's 65 s."""
    assert settings.cosmos_endpoint and settings.cosmos_key
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = settings.cosmos_ca_cert
    client = CosmosClient(
        settings.cosmos_endpoint,
        credential=settings.cosmos_key.get_secret_value(),
        ssl_config=ssl,
        read_timeout=1800,
        connection_timeout=1800,
    )
    response_headers_per_thread(client)  # as the product's clients: a sweep's workers share it
    return client.get_database_client(settings.cosmos_database)


def ledger(settings: Settings) -> TransparencyLog:
    """The product's ledger (the transparency log the composition root builds), as the sweep writes to it."""
    return container_for(settings).ledger


def bulk_record(index: int, rng: random.Random) -> dict[str, Any]:
    """A sealed recording's record as the lifecycle writes it (no media behind it: only evaluated)."""
    started = NOW - timedelta(seconds=rng.uniform(0, 6 * 365 * 86400))
    name = rng.choices([n for n, _ in WEIGHTS], [w for _, w in WEIGHTS])[0]
    days = next(c.days for c in CLASSES if c.name == name)
    recording_id = f"bulk-{index:06d}"
    user = f"u-{index % 500:03d}"
    record = RecordingRecord(
        id=recording_id,
        status="sealed",
        facts=RecordingFacts(
            recording_id=recording_id,
            call_id=f"leg-{recording_id}",
            call_chain_id=f"chain-{recording_id}",
            observed_user=ObservedUser(id=user, upn=f"{user}@contoso.com"),
            participants=[
                CallParticipant(participant_id="p1", identity=Identity(kind="user", id=user)),
                CallParticipant(
                    participant_id="p2",
                    identity=Identity(kind="phone", id=f"+4420{index:07d}"),
                    phone_number=f"+4420{index:07d}",
                ),
            ],
            recorder_instance="recorder-0",
            started_at=started,
            ended_at=started + timedelta(minutes=4),
        ),
        seal=SealIndex(
            manifest_blob=f"x/{recording_id}/manifest.json",
            manifest_sha256="0" * 64,
            ledger_seq=1,
            evidence_blob=f"x/{recording_id}/audio.flac",
            evidence_sha256="0" * 64,
            duration_seconds=240.0,
            interrupted=False,
            retention_class=name,
            retention_until=started + timedelta(days=days),
            legal_holds=["hold-bench"] if rng.random() < 0.02 else [],
            worm="azure",
            sealed_at=started + timedelta(minutes=5),
        ),
    )
    return record.model_dump(mode="json")


async def load(settings: Settings, first: int, count: int, rng: random.Random) -> float:
    """Insert `count` records with 64 requests in flight; returns records per second."""
    assert settings.cosmos_endpoint and settings.cosmos_key
    docs = [bulk_record(first + i, rng) for i in range(count)]
    started = time.perf_counter()
    async with AsyncCosmosClient(
        settings.cosmos_endpoint,
        credential=settings.cosmos_key.get_secret_value(),
        connection_verify=settings.cosmos_ca_cert,
    ) as client:
        container = client.get_database_client(settings.cosmos_database).get_container_client("recordings")
        gate = asyncio.Semaphore(64)

        async def put(doc: dict[str, Any]) -> None:
            async with gate:
                await container.upsert_item(doc)

        await asyncio.gather(*(put(doc) for doc in docs))
    return count / (time.perf_counter() - started)


class TimedRecordings(CosmosRetentionRecordings):
    """Separates the time the store spends answering the index query from the sweep's own work."""

    query_seconds = 0.0
    pages = 0

    def candidates(self, now: datetime, after: str | None, page_size: int) -> Iterator[list[Candidate]]:
        pages = super().candidates(now, after, page_size)
        while True:
            started = time.perf_counter()
            page = next(pages, None)
            self.query_seconds += time.perf_counter() - started
            if page is None:
                return
            self.pages += 1
            yield page


def sweep_for(
    settings: Settings, recordings: CosmosRetentionRecordings, deleter: RecordingDeleter | None
) -> RetentionSweep:
    db = database(settings)
    catalog = RetentionCatalog(CosmosRetentionClassStore(db.get_container_client("control")), ledger(settings))
    catalog.sync(CLASSES)
    classes = catalog.by_name()
    return RetentionSweep(
        recordings,
        deleter,  # type: ignore[arg-type]
        lambda: classes,
        Leases(CosmosLeaseStore(db.get_container_client("control")), timedelta(minutes=30)),
        limits=SweepLimits(batch_size=50, page_size=PAGE_SIZE),
        clock=lambda: NOW,
        maintenance=False,
    )


def dry_run(settings: Settings) -> dict[str, float]:
    db = database(settings)
    recordings = TimedRecordings(db.get_container_client("recordings"))
    sweep = sweep_for(settings, recordings, None)
    started = time.perf_counter()
    report = sweep.run(dry_run=True)
    total = time.perf_counter() - started
    return {
        "evaluated": report.evaluated,
        "due": len(report.deleted),
        "held": report.held,
        "retained": report.retained,
        "seconds": total,
        "query seconds": recordings.query_seconds,
        "pages": recordings.pages,
    }


def in_memory_rate(count: int) -> float:
    """Decisions per second of the sweep's evaluation alone, over projected candidates."""
    rng = random.Random(7)
    classes = {
        c.name: RetentionClass(name=c.name, days=c.days, legal_basis=c.legal_basis, defined_at=NOW, applied_days=c.days)
        for c in CLASSES
    }
    docs = [bulk_record(i, rng) for i in range(count)]
    candidates = [
        Candidate(d["id"], d["status"], d["seal"]["retention_class"], None, tuple(d["seal"]["legal_holds"]), None, None)
        for d in docs
    ]
    parsed = [
        (
            c,
            datetime.fromisoformat(d["seal"]["retention_until"].replace("Z", "+00:00")),
            datetime.fromisoformat(d["facts"]["started_at"].replace("Z", "+00:00")),
        )
        for c, d in zip(candidates, docs, strict=True)
    ]
    started = time.perf_counter()
    for c, until, start in parsed:
        evaluate(c.status, c.retention_class, until, start, c.legal_holds, classes, NOW)
    return count / (time.perf_counter() - started)


def seal_synthetic(settings: Settings, count: int) -> list[str]:
    """Recordings sealed by the lifecycle's Sealer over synthetic media, due before every bulk recording."""
    media = clients.blob_service(settings.recordings_storage_connection).get_container_client(
        settings.recordings_container
    )
    sealer = Sealer(AzureBlobStore(media), ledger(settings), worm=Worm(media, emulator=True), clock=lambda: NOW)
    store = database(settings).get_container_client("recordings")
    ids = []
    for index in range(count):
        recording_id = f"del-{index:05d}-{uuid.uuid4().hex[:6]}"
        started = NOW - timedelta(days=3000) + timedelta(minutes=index)
        prefix = f"{started:%Y/%m/%d}/{recording_id}"
        audio, opus, capture = os.urandom(64_000), os.urandom(8_000), b'{"capture": true}'
        for name, body in (("audio.flac", audio), ("access.opus", opus), ("capture.json", capture)):
            media.upload_blob(f"{prefix}/{name}", body, overwrite=True)
        facts = RecordingFacts(
            recording_id=recording_id,
            call_id=f"leg-{recording_id}",
            observed_user=ObservedUser(id="u-bench", upn="bench@contoso.com"),
            recorder_instance="recorder-0",
            started_at=started,
            ended_at=started + timedelta(seconds=4),
        )
        evidence = EvidenceTrack(
            blob_name=f"{prefix}/audio.flac",
            bytes=len(audio),
            sha256=hashlib.sha256(audio).hexdigest(),
            track="mixed",
            kind="mixed",
            sample_rate=16000,
            channels=1,
            bits_per_sample=16,
            samples=64000,
            duration_seconds=4.0,
        )
        manifest = RecordingManifest(
            **facts.model_dump(),
            status="complete",
            duration_seconds=4.0,
            capture_manifest=BlobRef(
                blob_name=f"{prefix}/capture.json", bytes=len(capture), sha256=hashlib.sha256(capture).hexdigest()
            ),
            evidence=[evidence],
            access_copy=AccessCopy(
                blob_name=f"{prefix}/access.opus",
                bytes=len(opus),
                sha256=hashlib.sha256(opus).hexdigest(),
                bitrate=16000,
                duration_seconds=4.0,
                source_sha256=evidence.sha256,
            ),
            retention=RetentionTerm(retention_class="cftc-oral", until=started + timedelta(days=366)),
            sealed_at=started + timedelta(minutes=1),
            sealed_by="benchmark",
        )
        result = sealer.seal(manifest)
        record = RecordingRecord(
            id=recording_id,
            status="sealed",
            facts=facts,
            seal=SealIndex(
                manifest_blob=result.manifest_blob.blob_name,
                manifest_sha256=result.manifest_blob.sha256,
                ledger_seq=result.ledger_entry.seq,
                evidence_blob=evidence.blob_name,
                evidence_sha256=evidence.sha256,
                access_copy_blob=f"{prefix}/access.opus",
                duration_seconds=4.0,
                interrupted=False,
                retention_class="cftc-oral",
                retention_until=started + timedelta(days=366),
                worm=result.enforcement,
                sealed_at=manifest.sealed_at,
            ),
        )
        store.upsert_item(record.model_dump(mode="json"))
        ids.append(recording_id)
    return ids


class TimedDeleter(RecordingDeleter):
    seconds = 0.0

    def delete(self, recording_id: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().delete(recording_id, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def deletions(settings: Settings, count: int) -> dict[str, float]:
    ids = seal_synthetic(settings, count)
    db = database(settings)
    recordings = TimedRecordings(db.get_container_client("recordings"))
    media = clients.blob_service(settings.recordings_storage_connection).get_container_client(
        settings.recordings_container
    )
    catalog = RetentionCatalog(CosmosRetentionClassStore(db.get_container_client("control")), ledger(settings))
    classes = catalog.by_name()
    deleter = TimedDeleter(
        recordings,
        RecordingBlobs(media, emulator=True),
        CosmosHoldStore(db.get_container_client("holds")),
        lambda: classes,
        ledger(settings),
        clock=lambda: NOW,
        emulator=True,
    )
    sweep = sweep_for(settings, recordings, deleter)
    started = time.perf_counter()
    report = sweep.run(max_deletions=count)
    total = time.perf_counter() - started
    assert sorted(report.deleted) == sorted(ids), (len(report.deleted), report.failed)
    return {"deleted": len(report.deleted), "seconds": total, "delete seconds": deleter.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--deletions", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = random.Random(42)
    memory_rate = in_memory_rate(min(args.recordings, 100_000))
    print(f"in-memory evaluation: {memory_rate:,.0f}/s", flush=True)
    checkpoints = sorted({n for n in (10_000, 30_000) if n < args.recordings} | {args.recordings})
    growth: list[tuple[int, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        port = free_port()
        tls = ensure_tls(work / "tls")
        with azurite(ports, work / "azurite", work / "azurite.log"), cosmos_emulator(port, tls, work / "cosmos.log"):
            os.environ.update(
                {
                    "AzureWebJobsStorage": ports.connection_string,
                    "RECORDINGS_STORAGE": ports.connection_string,
                    "RECORDINGS_STORAGE_IS_EMULATOR": "true",
                    "COSMOS_ENDPOINT": f"https://127.0.0.1:{port}",
                    "COSMOS_KEY": COSMOS_EMULATOR_KEY,
                    "COSMOS_CA_CERT": str(tls.ca_cert),
                    "COSMOS_DATABASE": "bench",
                    "LEDGER_SIGNING_KEY_FILE": str(work / "ledger.pem"),
                }
            )
            settings = reload_settings()
            provision_cosmos(settings)
            provision_storage(settings)
            loaded, load_seconds = 0, 0.0
            for target in checkpoints:
                started = time.perf_counter()
                asyncio.run(load(settings, loaded, target - loaded, rng))
                load_seconds += time.perf_counter() - started
                loaded = target
                figures = dry_run(settings)
                growth.append((loaded, figures["query seconds"] / max(1, figures["pages"]), int(figures["evaluated"])))
                print(f"{loaded:,} indexed: {figures}", flush=True)
            swept = figures
            removed = deletions(settings, args.deletions)
            print(f"deletions: {removed}", flush=True)
    evaluated = swept["evaluated"]
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; `benchmarks/retention.py --recordings {args.recordings} --deletions "
        f"{args.deletions}`, {datetime.now(UTC):%Y-%m-%d}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| recordings indexed in the Cosmos emulator (loaded at {loaded / load_seconds:,.0f}/s, 64 in flight) | "
        f"{loaded:,} |",
        f"| past their retention date (candidates the sweep evaluates): due / held / retained | "
        f"{int(evaluated):,}: {int(swept['due']):,} / {int(swept['held']):,} / {int(swept['retained']):,} |",
        f"| **sweep evaluation, end to end (dry run, {PAGE_SIZE:,} per page)** | "
        f"**{evaluated / swept['seconds']:,.0f} recordings/s** ({swept['seconds']:.1f} s) |",
        f"| of which the emulator answering the index query ({int(swept['pages'])} page"
        f"{'s' if swept['pages'] != 1 else ''}) | "
        f"{swept['query seconds']:.1f} s |",
        f"| sweep evaluation without the store's query time | "
        f"{evaluated / max(1e-9, swept['seconds'] - swept['query seconds']):,.0f} recordings/s |",
        f"| evaluation alone (in memory, per decision) | {memory_rate:,.0f} recordings/s |",
    ]
    for size, seconds, candidates in growth:
        lines.append(
            f"| index query, one page, with {size:,} recordings in the container ({candidates:,} candidates) | "
            f"{seconds:.2f} s |"
        )
    lines += [
        f"| **deletions by the sweep** (media + access copy + capture + manifest in Azurite, certificate, tombstone) "
        f"| **{removed['deleted'] / removed['delete seconds']:.1f} recordings/s** "
        f"({removed['delete seconds'] / removed['deleted'] * 1000:.0f} ms each) |",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        section = f"{START}\n{table}\n{END}"
        text = README.read_text() if README.exists() else "# Benchmarks\n"
        if START in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n## Retention sweep (`retention.py`)\n\n" + section + "\n"
        README.write_text(text)


if __name__ == "__main__":
    main()
