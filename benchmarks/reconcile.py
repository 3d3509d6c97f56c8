"""Reconciliation of stored call-record versions, in this process: CPU and Cosmos requests per version.

`ingest.py --full-app` measures reconciliation through the local Functions host (its CPU per version is the
whole app's minus the call-record functions', so the host's own queue handling is in it); this measures the
reconciler alone, as the queue trigger calls it (`Reconciler.handle(CallRecordStored)`), against the Cosmos
emulator, so a change to it can be judged in minutes and profiled.

Two workloads of 6-person meetings (as `ingest.py` publishes them), stored in Cosmos `calls` first:
* `no policy user`: none of the participants has a policy snapshot (ingest.py's records);
* `2 policy users`: two participants are policy users (snapshots: must record), one of them with a sealed
  recording of the call — one `recorded` and one `missing` verdict (an alert) per call on the first pass; a
  second pass re-reconciles every call (a redelivered message or a new version with the same outcome: nothing
  changes, nothing is written).

Prints, per workload and pass: CPU ms per version (this process, user + system), Cosmos requests per version
(HTTP requests the SDK sent), wall time. `--runs N` repeats on fresh emulators; `--profile FILE` writes a
cProfile of the last run's passes. `VERBATIM_CODE_ROOT=DIR` runs another checkout's code (a baseline) with this
script.

    .venv/bin/python benchmarks/reconcile.py [--calls 200] [--runs 3] [--profile /tmp/reconcile.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CODE_ROOT = Path(os.environ.get("VERBATIM_CODE_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(CODE_ROOT))
sys.path.insert(1, str(CODE_ROOT / "benchmarks"))  # its webhook.py (which puts its own checkout first)

from azure.core.pipeline.transport import RequestsTransport  # noqa: E402
from webhook import emulators, machine  # noqa: E402

_requests = 0
_count_lock = threading.Lock()
_send = RequestsTransport.send


def _counting_send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
    global _requests
    with _count_lock:
        _requests += 1
    return _send(self, request, **kwargs)


RequestsTransport.send = _counting_send

PEOPLE = 6


def meeting(record_id: str, users: list[str], start: datetime) -> dict[str, Any]:
    """ingest.py's 6-person meeting (one session each), with the given participant ids."""
    from verbatim.platform.times import format_datetime

    stream = {"audioCodec": "opus", "averageJitter": "PT0.012S", "maxJitter": "PT0.030S", "averagePacketLossRate": 0.01}
    end = start + timedelta(minutes=30)
    return {
        "id": record_id,
        "version": 1,
        "type": "groupCall",
        "modalities": ["audio"],
        "startDateTime": format_datetime(start),
        "endDateTime": format_datetime(end),
        "organizer_v2": {"id": users[0], "identity": {"user": {"id": users[0], "displayName": "Organizer"}}},
        "participants_v2": [{"id": u, "identity": {"user": {"id": u, "displayName": f"User {u}"}}} for u in users],
        "sessions": [
            {
                "id": f"{record_id}-{n}",
                "startDateTime": format_datetime(start),
                "endDateTime": format_datetime(end),
                "modalities": ["audio"],
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": u}},
                    "userAgent": {"@odata.type": "#microsoft.graph.callRecords.clientUserAgent", "platform": "windows"},
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                    "userAgent": {
                        "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                        "role": "conferencing",
                    },
                },
                "segments": [
                    {"id": f"{record_id}-{n}-0", "media": [{"label": "main-audio", "streams": [stream, stream]}]}
                ],
            }
            for n, u in enumerate(users)
        ],
    }


def prepare(calls: int, policy_users: int, prefix: str) -> list[str]:
    """Store `calls` meetings (and the policy snapshots and recordings of `policy_users` per call)."""
    from verbatim.callrecords.normalise import normalise
    from verbatim.contracts.evidence import RecordingFacts
    from verbatim.contracts.lifecycle import RecordingRecord, SealIndex
    from verbatim.contracts.policy import EffectivePolicy, PolicySnapshot
    from verbatim.contracts.recorder import ObservedUser
    from verbatim.platform.settings import get_settings
    from verbatim.wiring import container_for

    container = container_for(get_settings())
    store = container.callrecords.store
    snapshots = container.policy_snapshots
    recordings = container.lifecycle.store
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    ids = []
    for n in range(calls):
        users = [str(uuid.uuid4()) for _ in range(PEOPLE)]
        start = base + timedelta(seconds=n)
        record_id = f"{prefix}-{n:06d}-{uuid.uuid4().hex[:8]}"
        raw = meeting(record_id, users, start)
        record = normalise(raw, tenant_id="bench-tenant")
        store.save_if_newer(record, raw, probably_new=True)
        ids.append(record_id)
        for index, user in enumerate(users[:policy_users]):
            snapshots.add(
                PolicySnapshot(
                    id=f"{user}-1",
                    user_id=user,
                    valid_from=start - timedelta(days=30),
                    effective=EffectivePolicy(
                        user_id=user,
                        user_principal_name=f"{user[:8]}@contoso.example",
                        policy_name="Tag:Traders",
                        source="direct",
                        records=True,
                        strict=False,
                        recorder_instance_ids=["app-recorder"],
                    ),
                )
            )
            if index == 0:
                recording_id = str(uuid.uuid4())
                record_doc = RecordingRecord(
                    id=recording_id,
                    status="sealed",
                    facts=RecordingFacts(
                        recording_id=recording_id,
                        call_id=str(uuid.uuid4()),
                        call_chain_id=record_id,
                        recorder_instance="recorder-0",
                        observed_user=ObservedUser(id=user),
                        started_at=start,
                        ended_at=start + timedelta(minutes=30),
                    ),
                    seal=SealIndex(
                        manifest_blob=f"2026/01/01/{recording_id}/manifest.json",
                        manifest_sha256="0" * 64,
                        ledger_seq=n,
                        evidence_blob=f"2026/01/01/{recording_id}/audio.flac",
                        evidence_sha256="0" * 64,
                        duration_seconds=1800.0,
                        interrupted=False,
                        retention_class="default",
                        retention_until=start + timedelta(days=2557),
                        worm="emulator-not-enforced",
                        sealed_at=start + timedelta(minutes=31),
                    ),
                )

                def keep(_current: RecordingRecord | None, doc: RecordingRecord = record_doc) -> RecordingRecord:
                    return doc

                recordings.update(recording_id, keep)
    return ids


def reconcile(ids: list[str], profile: cProfile.Profile | None) -> dict[str, float]:
    from verbatim.contracts.callrecords import CallRecordStored
    from verbatim.platform.settings import get_settings
    from verbatim.wiring import container_for

    reconciler = container_for(get_settings()).reconciliation.reconciler
    messages = [
        CallRecordStored(call_record_id=i, tenant_id="bench-tenant", version=1, type="groupCall", stored_at="")
        for i in ids
    ]
    reconciler.handle(messages[0])  # connections, first-use imports
    before_requests, before_cpu, started = _requests, time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    for message in messages[1:]:
        reconciler.handle(message)
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - before_cpu, time.perf_counter() - started
    count = len(messages) - 1
    return {
        "cpu_ms": cpu / count * 1000,
        "requests": (_requests - before_requests) / count,
        "wall_ms": wall / count * 1000,
    }


WORKLOADS: tuple[tuple[str, int], ...] = (("no policy user", 0), ("2 policy users", 2))
if os.environ.get("RECONCILE_WORKLOADS") == "0":
    WORKLOADS = WORKLOADS[:1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    profile = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waiting
    for run in range(args.runs):
        with emulators():
            for name, policy_users in WORKLOADS:
                ids = prepare(args.calls, policy_users, f"r{run}-{policy_users}")
                for label in ("first pass", "again"):
                    result = reconcile(ids, profile if run == args.runs - 1 else None)
                    results.setdefault(f"{name}, {label}", []).append(result)
                    print(f"run {run + 1}: {name}, {label}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()))
    if profile is not None and args.profile is not None:
        profile.dump_stats(args.profile)
    load = os.getloadavg()
    import verbatim

    code = Path(verbatim.__file__).parent.parent
    print(f"\n{machine()}; code {code}; {args.calls} calls per workload, {args.runs} runs; load {load[0]:.1f}")
    print("| workload | CPU per version | Cosmos requests per version | wall per version |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        cells = []
        for key, unit in (("cpu_ms", " ms"), ("requests", ""), ("wall_ms", " ms")):
            values = [r[key] for r in rows]
            cells.append(f"{statistics.median(values):.1f}{unit} ({min(values):.1f}–{max(values):.1f})")  # noqa: RUF001 - an en dash for ranges
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
