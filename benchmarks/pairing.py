"""What pairing costs the lifecycle per recording (issue 21): the pair document's updates in Cosmos and, once per
pair, the pair manifest written into each member's folder with a `paired` ledger entry each — against the cost
of the recording record's own updates, measured in the same run on the same emulators.

    .venv/bin/python benchmarks/pairing.py [--pairs 50] [--runs 3]

A private Azurite and Cosmos emulator (provisioned as `verbatim-dev up` does) and the real ledger (v2 log over
Cosmos and blobs, signing key in a temp dir). Per pair of recordings, as the lifecycle does it: each member joins
the pair when it starts and again when it is sealed (`verbatim.lifecycle.pairs.record_in_pair`), and the second
seal makes the pair complete, which seals the pair manifest (`activities.pair_recording`). The baseline is the
recording record's own writes at the same two moments (`CosmosRecordingStore.update`, started and sealed). Wall
clock per recording and the benchmark process's CPU per recording (the emulators' CPU is not counted); median of
`--runs` runs with the spread and the load average.

Not measured here: the pair's access copy of the union (verbatim.lifecycle.pair_access), which the same activity
makes from the members' sealed evidence — these members have seal indexes but no sealed objects, so the lifecycle
logs that the copy cannot be made and seals the pair manifest without it (one failed manifest read per member is
in the figure).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.emulators import COSMOS_EMULATOR_KEY, AzuritePorts, azurite, cosmos_emulator, ensure_tls  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.provision import provision_cosmos, provision_storage  # noqa: E402
from verbatim.contracts.evidence import RecordingFacts  # noqa: E402
from verbatim.contracts.lifecycle import RecordingRecord, SealIndex  # noqa: E402
from verbatim.contracts.recorder import ObservedUser  # noqa: E402
from verbatim.evidence.worm import InMemoryWorm  # noqa: E402
from verbatim.lifecycle import activities  # noqa: E402
from verbatim.lifecycle.activities import LifecycleDeps  # noqa: E402
from verbatim.lifecycle.pairs import CosmosPairStore  # noqa: E402
from verbatim.lifecycle.policies import FixedRetention  # noqa: E402
from verbatim.lifecycle.records import CosmosRecordingStore  # noqa: E402
from verbatim.platform import clients, layout  # noqa: E402
from verbatim.platform.blobs import AzureBlobStore  # noqa: E402
from verbatim.platform.settings import reload_settings  # noqa: E402
from verbatim.wiring import container_for  # noqa: E402

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def record(recording_id: str, chain: str, instance: str, *, sealed: bool, seconds: float) -> RecordingRecord:
    facts = RecordingFacts(
        recording_id=recording_id,
        call_id=f"leg-{recording_id}",
        call_chain_id=chain,
        tenant_id="tenant-bench",
        observed_user=ObservedUser(id="u-trader"),
        recorder_instance=instance,
        policy_identifier="StrictRecording",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=seconds) if sealed else None,
    )
    seal = (
        SealIndex(
            manifest_blob=f"{recording_id}/manifest.json",
            manifest_sha256="0" * 64,
            ledger_seq=1,
            evidence_blob=f"{recording_id}/audio.flac",
            evidence_sha256="1" * 64,
            duration_seconds=seconds,
            interrupted=seconds < 60,
            retention_class="mifid2",
            retention_until=T0 + timedelta(days=1827),
            worm="emulator-not-enforced",
            sealed_at=T0 + timedelta(minutes=2),
        )
        if sealed
        else None
    )
    return RecordingRecord(id=recording_id, status="sealed" if sealed else "capturing", facts=facts, seal=seal)


def replace_with(member: RecordingRecord) -> Callable[[RecordingRecord | None], RecordingRecord]:
    return lambda _current: member


def measure(pairs: int, deps: LifecycleDeps, store: CosmosRecordingStore) -> tuple[float, float, float, float]:
    """(pairing wall ms, pairing CPU ms, baseline wall ms, baseline CPU ms) per recording."""
    plans = [
        (uuid.uuid4().hex[:12], f"rec-{uuid.uuid4().hex[:10]}", f"rec-{uuid.uuid4().hex[:10]}") for _ in range(pairs)
    ]
    # the killed instance's recording (8 s, salvaged) and the survivor's (60 s), when started and when sealed
    started = [
        (
            record(a, chain, "recorder-1", sealed=False, seconds=0),
            record(b, chain, "recorder-2", sealed=False, seconds=0),
        )
        for chain, a, b in plans
    ]
    sealed = [
        (
            record(a, chain, "recorder-1", sealed=True, seconds=8),
            record(b, chain, "recorder-2", sealed=True, seconds=60),
        )
        for chain, a, b in plans
    ]

    wall, cpu = time.perf_counter(), time.process_time()
    for moment in (started, sealed):
        for pair in moment:
            for member in pair:
                store.update(member.id, replace_with(member))
    base_wall, base_cpu = time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = time.perf_counter(), time.process_time()
    for moment in (started, sealed):
        for pair in moment:
            for member in pair:
                activities.pair_recording(deps, member)
    pair_wall, pair_cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = 2 * pairs
    return 1000 * pair_wall / n, 1000 * pair_cpu / n, 1000 * base_wall / n, 1000 * base_cpu / n


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f} to {max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {args.runs} runs "
        f"of {args.pairs} pairs ({2 * args.pairs} recordings); load average at the start {load[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        cosmos_port = free_port()
        tls = ensure_tls(work / "tls")
        with azurite(ports, work / "azurite", work / "azurite.log"), cosmos_emulator(cosmos_port, tls, work / "c.log"):
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
                }
            )
            settings = reload_settings()
            provision_cosmos(settings)
            provision_storage(settings)
            container = container_for(settings)
            recordings = clients.blob_service(settings.recordings_storage_connection).get_container_client("recordings")
            store = CosmosRecordingStore(container.cosmos(layout.RECORDINGS))
            deps = LifecycleDeps(
                recordings=AzureBlobStore(recordings),
                scratch=AzureBlobStore(recordings),
                store=store,
                ledger=container.ledger,
                retention=FixedRetention("mifid2", 1827),
                worm=InMemoryWorm(),
                pairs=CosmosPairStore(container.cosmos(layout.RECORDING_PAIRS)),
            )
            measure(5, deps, store)  # warm-up: connections, the ledger's first checkpoint
            results = []
            for index in range(args.runs):
                results.append(measure(args.pairs, deps, store))
                print(f"  run {index + 1}: {results[-1]}; load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    end = os.getloadavg()
    print()
    print("| per recording | wall clock | CPU of this process |")
    print("|---|---|---|")
    print(f"| pairing (2 pair updates + half a pair manifest) | {spread([r[0] for r in results])} ms "
          f"| {spread([r[1] for r in results])} ms |")  # fmt: skip
    print(f"| baseline: the record's own 2 updates | {spread([r[2] for r in results])} ms "
          f"| {spread([r[3] for r in results])} ms |")  # fmt: skip
    print("(median of runs, lowest to highest in brackets)")
    print(f"load average {load[0]:.1f} at the start, {end[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
