"""Export figures on this machine, against real Azurite and the Cosmos emulator started here on free ports:
packaging throughput (MB of media per second, recordings per second) of the export service's own steps in one
process (one core for Verbatim's code: the emulators run in their own processes), and the offline verification
throughput of the verifier shipped in the package, for a package of 200 recordings (lossless evidence and access
copies). Goals (issue 18): packaging bounded by storage reads, not CPU (>= 50 MB/s of media per core);
verification >= 200 MB/s per core.

Baselines measured in the same run: reading and hashing the same sealed media straight from Azurite (what
packaging cannot beat: the storage read), and SHA-256 over the package file alone (what verification cannot beat).

    .venv/bin/python benchmarks/export.py [--recordings 200] [--evidence-kb 1024] [--runs 3] [--no-write]

The recordings are sealed by the lifecycle's own `Sealer` (manifest, WORM requests, `sealed` entry in the ledger
v2 log) over synthetic media (random bytes: hashing and copying do not care what the bytes are), with their
recording records in Cosmos, so the export reads them exactly as it reads real ones.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

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
from verbatim.contracts.exports import ExportBatch, ExportRequest  # noqa: E402
from verbatim.contracts.lifecycle import RecordingRecord, SealIndex  # noqa: E402
from verbatim.contracts.recorder import ObservedUser  # noqa: E402
from verbatim.evidence.seal import Sealer  # noqa: E402
from verbatim.evidence.worm import Worm  # noqa: E402
from verbatim.exports import standalone_export_verifier as verifier  # noqa: E402
from verbatim.exports.service import BATCH  # noqa: E402
from verbatim.platform import clients  # noqa: E402
from verbatim.platform.auth import COMPLIANCE_OFFICER, Principal  # noqa: E402
from verbatim.platform.blobs import AzureBlobStore  # noqa: E402
from verbatim.platform.settings import Settings, reload_settings  # noqa: E402
from verbatim.wiring import container_for  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- export:start -->", "<!-- export:end -->"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
OFFICER = Principal(subject="bench-officer", name="Bench Officer", roles=frozenset({COMPLIANCE_OFFICER}))
MB = 1_000_000


def seal_synthetic(settings: Settings, count: int, evidence_bytes: int) -> list[str]:
    """`count` recordings sealed by the lifecycle's Sealer over synthetic media, with their records in Cosmos."""
    container = container_for(settings)
    media = clients.blob_service(settings.recordings_storage_connection).get_container_client(
        settings.recordings_container
    )
    sealer = Sealer(AzureBlobStore(media), container.ledger, worm=Worm(media, emulator=True), clock=lambda: NOW)
    store = container.database.get_container_client("recordings")
    ids = []
    for index in range(count):
        recording_id = f"bench-{index:05d}-{uuid.uuid4().hex[:6]}"
        started = NOW - timedelta(days=30) + timedelta(minutes=index)
        prefix = f"{started:%Y/%m/%d}/{recording_id}"
        seconds = evidence_bytes / 32_000  # 16 kHz, 16-bit mono before compression: a plausible length
        audio, opus = os.urandom(evidence_bytes), os.urandom(max(1, evidence_bytes // 8))
        capture = b'{"capture": true}'
        for name, body in (("audio.flac", audio), ("access.opus", opus), ("capture.json", capture)):
            media.upload_blob(f"{prefix}/{name}", body, overwrite=True)
        facts = RecordingFacts(
            recording_id=recording_id,
            call_id=f"leg-{recording_id}",
            observed_user=ObservedUser(id="u-bench", upn="bench@contoso.com", display_name="Bench User"),
            recorder_instance="recorder-0",
            started_at=started,
            ended_at=started + timedelta(seconds=seconds),
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
            samples=int(seconds * 16000),
            duration_seconds=seconds,
        )
        manifest = RecordingManifest(
            **facts.model_dump(),
            status="complete",
            duration_seconds=seconds,
            capture_manifest=BlobRef(
                blob_name=f"{prefix}/capture.json", bytes=len(capture), sha256=hashlib.sha256(capture).hexdigest()
            ),
            evidence=[evidence],
            access_copy=AccessCopy(
                blob_name=f"{prefix}/access.opus",
                bytes=len(opus),
                sha256=hashlib.sha256(opus).hexdigest(),
                bitrate=16000,
                duration_seconds=seconds,
                source_sha256=evidence.sha256,
            ),
            retention=RetentionTerm(retention_class="default", until=started + timedelta(days=1827)),
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
                duration_seconds=seconds,
                interrupted=False,
                retention_class="default",
                retention_until=started + timedelta(days=1827),
                worm=result.enforcement,
                sealed_at=manifest.sealed_at,
            ),
        )
        store.upsert_item(record.model_dump(mode="json"))
        ids.append(recording_id)
    return ids


def storage_read_baseline(settings: Settings, ids: list[str]) -> dict[str, float]:
    """Read and hash every sealed media object of the recordings straight from Azurite, in one process."""
    container = container_for(settings)
    media = container.recording_blobs
    total, started, cpu = 0, time.perf_counter(), time.process_time()
    for recording_id in ids:
        record = container.recording_finder.get(recording_id)
        assert record is not None and record.seal is not None
        for name in (record.seal.evidence_blob, record.seal.access_copy_blob):
            assert name is not None
            digest = hashlib.sha256()
            for chunk in media.chunks(name):
                digest.update(chunk)
                total += len(chunk)
    return {"MB/s": total / MB / (time.perf_counter() - started), "cpu MB/s": total / MB / (time.process_time() - cpu)}


def one_export(settings: Settings, ids: list[str], target: Path) -> dict[str, float]:
    """One export of `ids` by the service's own steps in this process (as `ExportService.run_inline` runs them,
    timed per step), downloaded to `target` and verified as `verbatim verify-export --quiet` does."""
    service = container_for(settings).exports.service
    record = service.create(ExportRequest(recording_ids=ids, title="benchmark"), OFFICER, "benchmark")
    started, cpu = time.perf_counter(), time.process_time()
    plan = service.plan(record.id)
    for first in range(0, plan.total, BATCH):
        service.attest(ExportBatch(export_id=record.id, first=first, end=min(plan.total, first + BATCH)))
    size = service.checkpoint(record.id)
    attested = time.perf_counter() - started
    package_started, package_cpu = time.perf_counter(), time.process_time()
    media = 0
    for first in range(0, plan.total, BATCH):
        batch = ExportBatch(export_id=record.id, first=first, end=min(plan.total, first + BATCH), checkpoint_size=size)
        media += sum(part.media_bytes for part in service.package(batch))
    packaging = time.perf_counter() - package_started
    packaging_cpu = time.process_time() - package_cpu
    assemble_started = time.perf_counter()
    result = service.assemble(record.id, plan.total, size)
    assembling = time.perf_counter() - assemble_started
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu

    with target.open("wb") as out:
        for offset in range(0, result.package_bytes, 64 * MB):
            out.write(service.work_store.read(result.package_blob, offset=offset, length=64 * MB))
    quiet = argparse.Namespace(key=None, key_file=None, fingerprint=None, quiet=True, json=False)
    verify_started, verify_cpu = time.perf_counter(), time.process_time()
    report = verifier.verify(target, quiet, progress=lambda total: verifier.Progress(total, False))
    verifying, verifying_cpu = time.perf_counter() - verify_started, time.process_time() - verify_cpu
    assert report.verified, [finding.message for finding in report.findings][:5]
    hash_started = time.perf_counter()
    digest = hashlib.sha256()
    with target.open("rb") as handle:
        while chunk := handle.read(MB):
            digest.update(chunk)
    hashing = time.perf_counter() - hash_started
    service.delete(record.id, OFFICER, "benchmark done")
    target.unlink()
    return {
        "media MB": media / MB,
        "package MB": result.package_bytes / MB,
        "package MB/s": media / MB / packaging,
        "package cpu MB/s": media / MB / packaging_cpu,
        "recordings/s": plan.total / total,
        "export cpu MB/s": media / MB / total_cpu,
        "attest s": attested,
        "assemble s": assembling,
        "verify MB/s": result.package_bytes / MB / verifying,
        "verify cpu MB/s": result.package_bytes / MB / verifying_cpu,
        "sha256 MB/s": result.package_bytes / MB / hashing,
    }


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, default=200)
    parser.add_argument("--evidence-kb", type=int, default=1024, help="size of each recording's evidence")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    loads: list[float] = []
    runs: list[dict[str, float]] = []
    baselines: list[dict[str, float]] = []
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
            sealing = time.perf_counter()
            ids = seal_synthetic(settings, args.recordings, args.evidence_kb * 1024)
            print(f"sealed {len(ids)} recordings in {time.perf_counter() - sealing:.1f} s", flush=True)
            for run in range(args.runs):  # baseline and export alternate, so both see the same load
                loads.append(os.getloadavg()[0])
                baselines.append(storage_read_baseline(settings, ids))
                runs.append(one_export(settings, ids, work / f"export-{run}.zip"))
                loads.append(os.getloadavg()[0])
                print(f"run {run + 1}: baseline {baselines[-1]}, export {runs[-1]}", flush=True)
    column = {key: [run[key] for run in runs] for key in runs[0]}
    base = {key: [b[key] for b in baselines] for key in baselines[0]}
    media_mb, package_mb = runs[0]["media MB"], runs[0]["package MB"]
    table = "\n".join(
        [
            f"{args.recordings} recordings of {args.evidence_kb} KiB evidence"
            f" + {args.evidence_kb // 8} KiB access copy "
            f"({media_mb:,.0f} MB of media, package {package_mb:,.0f} MB); {args.runs} runs, median (lowest-highest); "
            f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores "
            f"({platform.python_implementation()} {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}).",
            "",
            "| what | figure | baseline in the same run |",
            "|---|---|---|",
            f"| **packaging**, media copied into the package (wall) | {summary(column['package MB/s'])} MB/s "
            f"| reading + hashing the same media from Azurite: {summary(base['MB/s'])} MB/s |",
            f"| packaging per CPU-second of the exporting process | {summary(column['package cpu MB/s'])} MB/s "
            f"| the read alone: {summary(base['cpu MB/s'])} MB/s per CPU-second |",
            f"| whole export (plan, attest, checkpoint, package, assemble) | {summary(column['recordings/s'])} "
            f"recordings/s, {summary(column['export cpu MB/s'])} MB of media per CPU-second | |",
            f"| of which attesting (an `exported` ledger entry per recording) and the checkpoint | "
            f"{summary(column['attest s'])} s | |",
            f"| of which assembling (index, load files, manifest, signature, central directory) | "
            f"{summary(column['assemble s'])} s | |",
            f"| **verification** by the shipped verifier, package MB per second (wall) | "
            f"{summary(column['verify MB/s'])} MB/s | SHA-256 of the package file alone: "
            f"{summary(column['sha256 MB/s'])} MB/s |",
            f"| verification per CPU-second | {summary(column['verify cpu MB/s'])} MB/s | |",
        ]
    )
    print(table)
    if not args.no_write:
        text = README.read_text()
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        README.write_text(f"{before}{START}\n{table}\n{END}{after}")


if __name__ == "__main__":
    main()
