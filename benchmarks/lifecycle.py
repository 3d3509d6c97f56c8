"""Evidence pipeline figures on this machine: access-copy transcoding speed (x real time per core),
FLAC decode speed, recordings finalised + transcoded + sealed per minute, ledger appends per second, and
`verify` time per recording — against real Azurite and the Cosmos emulator started here on free ports.

    .venv/bin/python benchmarks/lifecycle.py [--minutes 10] [--recordings 20] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.emulators import COSMOS_EMULATOR_KEY, AzuritePorts, azurite, cosmos_emulator, ensure_tls  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.provision import provision_cosmos, provision_storage  # noqa: E402
from devstack.testkit.captures import RATE, flac_blocks, speech, stage_capture  # noqa: E402
from verbatim.contracts.evidence import RecordingFacts, RetentionTerm  # noqa: E402
from verbatim.evidence.access_copy import assemble_access_copy, encode_access_chunk, plan_access_copy  # noqa: E402
from verbatim.evidence.finalise import finalise  # noqa: E402
from verbatim.evidence.flac import count_samples  # noqa: E402
from verbatim.evidence.opus import encode_chunk, plan_chunks  # noqa: E402
from verbatim.evidence.seal import Sealer, build_manifest, read_capture, seal_capture_manifest  # noqa: E402
from verbatim.evidence.verify import verify_recording  # noqa: E402
from verbatim.evidence.worm import Worm  # noqa: E402
from verbatim.platform import clients  # noqa: E402
from verbatim.platform.blobs import AzureBlobStore  # noqa: E402
from verbatim.platform.settings import reload_settings  # noqa: E402
from verbatim.wiring import container_for  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- lifecycle:start -->", "<!-- lifecycle:end -->"


def transcoding(minutes: float) -> tuple[float, float, float]:
    """x real time of one core: single-pass Opus encode, chunked encode (10-min chunks), FLAC decode."""
    pcm = speech(minutes * 60)
    seconds = len(pcm) / RATE
    [plan] = plan_chunks(len(pcm), 10**9)
    started = time.process_time()
    encode_chunk(plan, pcm)
    single = seconds / (time.process_time() - started)
    plans = plan_chunks(len(pcm), 600)
    started = time.process_time()
    for chunk in plans:
        encode_chunk(chunk, pcm[chunk.input_start : chunk.input_end])
    chunked = seconds / (time.process_time() - started)
    flac = b"".join(block for block, _, _ in flac_blocks(pcm))
    started = time.process_time()
    count_samples(flac)
    decode = seconds / (time.process_time() - started)
    return single, chunked, decode


def pipeline(recordings: int, call_seconds: float, work: Path) -> dict[str, float]:
    ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
    cosmos_port = free_port()
    tls = ensure_tls(work / "tls")
    with azurite(ports, work / "azurite", work / "azurite.log"), cosmos_emulator(cosmos_port, tls, work / "cosmos.log"):
        os.environ.update(
            {
                "AzureWebJobsStorage": ports.connection_string,
                "RECORDINGS_STORAGE": ports.connection_string,
                "RECORDINGS_STORAGE_IS_EMULATOR": "true",
                "COSMOS_ENDPOINT": f"https://127.0.0.1:{cosmos_port}",
                "COSMOS_KEY": COSMOS_EMULATOR_KEY,
                "COSMOS_CA_CERT": str(tls.ca_cert),
                "COSMOS_DATABASE": "bench",
                "LEDGER_SIGNING_KEY_FILE": str(work / "ledger.pem"),
                "LEDGER_CHECKPOINT_INTERVAL": "100",
            }
        )
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        container = clients.blob_service(settings.recordings_storage_connection).get_container_client("recordings")
        captures = clients.blob_service(settings.recordings_storage_connection).get_container_client("captures")
        scratch = clients.blob_service(settings.runtime_storage_connection).get_container_client("lifecycle-scratch")
        scratch_store = AzureBlobStore(scratch)
        ledger = container_for(settings).ledger
        pcm = speech(call_seconds)
        staged = [stage_capture(captures, f"bench-{uuid.uuid4().hex[:8]}", pcm) for _ in range(recordings)]
        times: dict[str, list[float]] = {"finalise": [], "access copy": [], "seal": [], "verify": []}
        started_all = time.perf_counter()
        for capture_staged in staged:
            recording_id = capture_staged.manifest.recording_id
            t0 = time.perf_counter()
            capture, _ = read_capture(AzureBlobStore(captures), capture_staged.capture_blob)
            # The recorder's capture is verified in `captures` and its sealed copy written into `recordings`.
            [track] = finalise(AzureBlobStore(captures), AzureBlobStore(container), capture, recording_id=recording_id)
            body = AzureBlobStore(captures).read(capture_staged.capture_blob)
            ref = seal_capture_manifest(AzureBlobStore(container), recording_id, 0, body)
            t1 = time.perf_counter()
            names = [
                encode_access_chunk(AzureBlobStore(container), scratch_store, recording_id, track, p)
                for p in plan_access_copy(track, 600)
            ]
            access = assemble_access_copy(AzureBlobStore(container), scratch_store, recording_id, track, names)
            t2 = time.perf_counter()
            facts = RecordingFacts(recording_id=recording_id, call_id=capture.call_id, recorder_instance="bench")
            term = RetentionTerm(retention_class="default", until=datetime.now(UTC) + timedelta(days=1827))
            manifest = build_manifest(facts, capture, ref, [track], access, term, [], datetime.now(UTC))
            Sealer(AzureBlobStore(container), ledger, worm=Worm(container, emulator=True)).seal(manifest)
            t3 = time.perf_counter()
            times["finalise"].append(t1 - t0)
            times["access copy"].append(t2 - t1)
            times["seal"].append(t3 - t2)
        elapsed_all = time.perf_counter() - started_all
        ledger.checkpoint()
        for capture_staged in staged:
            t0 = time.perf_counter()
            assert verify_recording(capture_staged.manifest.recording_id, AzureBlobStore(container), ledger).ok
            times["verify"].append(time.perf_counter() - t0)
        appends = 200
        t0 = time.perf_counter()
        for n in range(appends):
            ledger.append("accessed", f"recording:bench-{n}", {"n": n})
        single_rate = appends / (time.perf_counter() - t0)
        writers, per_writer = 4, 50
        # Four threads of one process appending at once, as a Functions host's activities do (the log batches
        # them); writers in several processes are benchmarks/ledger.py's subject.

        def run(index: int) -> None:
            for n in range(per_writer):
                ledger.append("accessed", f"recording:w{index}-{n}", {"n": n})

        threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent_rate = writers * per_writer / (time.perf_counter() - t0)
        checkpoint = ledger.checkpoint()
        assert checkpoint is not None and ledger.verify_checkpoint(checkpoint) == ledger.size()
    figures = {f"{name} median s": statistics.median(values) for name, values in times.items()}
    figures["recordings per minute"] = recordings / elapsed_all * 60
    figures["ledger appends/s (1 writer)"] = single_rate
    figures["ledger appends/s (4 writers)"] = concurrent_rate
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the transcoding sample")
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--call-seconds", type=float, default=120.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    single, chunked, decode = transcoding(args.minutes)
    with tempfile.TemporaryDirectory() as work:
        figures = pipeline(args.recordings, args.call_seconds, Path(work))
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; `benchmarks/lifecycle.py --minutes {args.minutes:g} --recordings "
        f"{args.recordings} --call-seconds {args.call_seconds:g}`, {datetime.now(UTC):%Y-%m-%d}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| Opus access copy, single pass (16 kbit/s speech) | {single:.0f}x real time per core |",
        f"| Opus access copy, 10-minute chunks (sequential; activities run them in parallel) | {chunked:.0f}x real time per core |",  # noqa: E501
        f"| FLAC decode (duration measurement) | {decode:.0f}x real time per core |",
        f"| {args.call_seconds:g}-s recordings finalised + access copy + sealed, one worker | "
        f"{figures['recordings per minute']:.0f} per minute |",
    ]
    for name in ("finalise", "access copy", "seal", "verify"):
        lines.append(
            f"| {name}, median per {args.call_seconds:g}-s recording | {figures[name + ' median s'] * 1000:.0f} ms |"
        )
    lines += [
        f"| ledger appends, 1 writer (Cosmos emulator) | {figures['ledger appends/s (1 writer)']:.0f}/s |",
        f"| ledger appends, 4 concurrent writers (Cosmos emulator, etag contention) | "
        f"{figures['ledger appends/s (4 writers)']:.0f}/s |",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        section = f"{START}\n{table}\n{END}"
        text = README.read_text() if README.exists() else "# Benchmarks\n"
        if START in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n## Evidence pipeline (`lifecycle.py`)\n\n" + section + "\n"
        README.write_text(text)


if __name__ == "__main__":
    main()
