"""Two promises of a chaos run about what is stored besides the verdicts (issue 23):

- **every read audited**: each read of the compliance API the run made and that was answered (the verdicts of each
  call while it settles, the recordings whose evidence it checks, the users' effective policies) has its `access`
  record in the Cosmos `audit` container, and that record's `ledgerSeq` is an `accessed` entry of the ledger's log
  about the same subject and action — the audit chain from a read to the tamper-evident log is intact;
- **no orphan evidence**: every blob in the `recordings` container belongs to a recording whose record is sealed
  and is named by that record's seal, by one of its sealed manifests or by a pair manifest of it — nothing was
  written as evidence that no record accounts for (a crash between writing and indexing, say).

The run's reads are counted by `ReadLog` (the stacks the run reads through are `LoggedStack`s)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from azure.storage.blob import BlobServiceClient

from devstack.chaos.invariants import InvariantResult
from devstack.demo import DemoStack
from devstack.stack import app_environment
from verbatim.ledger.log.cosmos import CosmosLogStore
from verbatim.ledger.log.entries import InvalidEntry, decode_entry
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings

ReadKey = tuple[str, str]  # (the access action, what identifies the read: a call id, a recording id, a user id)


class ReadLog:
    """The reads of the compliance API the run made that were answered (2xx), by what their audit record says."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads: Counter[ReadKey] = Counter()

    def add(self, path: str, params: dict[str, str] | None) -> None:
        key = read_key(path, params or {})
        if key is not None:
            with self._lock:
                self.reads[key] += 1


def read_key(path: str, params: dict[str, str]) -> ReadKey | None:
    """The audit record a read of `/api/v1{path}` must leave (verbatim.api.service, verbatim.policy.api)."""
    if path == "/verdicts" and "callId" in params:
        return ("verdict.search", params["callId"])
    if path.startswith("/recordings/") and path.count("/") == 2:
        return ("recording.read", path.removeprefix("/recordings/"))
    if path.startswith("/policy/effective/"):
        return ("policy.effective.read", path.removeprefix("/policy/effective/"))
    return None


class LoggedStack(DemoStack):
    """A `DemoStack` whose answered compliance-API reads are counted in `reads`."""

    def __init__(self, *args: Any, reads: ReadLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = reads

    def api(self, path: str, *roles: str, params: dict[str, str] | None = None) -> Any:
        answer = super().api(path, *roles, params=params)  # DemoError (not counted) on an error answer
        self.reads.add(path, params)
        return answer


def _settings(stack: DemoStack) -> Settings:
    return Settings.model_validate(app_environment(stack.config))


def _audit_key(record: dict[str, Any]) -> ReadKey | None:
    action, target = str(record.get("action")), str(record.get("target") or "")
    if action == "verdict.search":
        call_id = (record.get("detail") or {}).get("filters", {}).get("callId")
        return (action, str(call_id)) if call_id else None
    if action == "recording.read":
        return (action, target.removeprefix("recording:"))
    if action == "policy.effective.read":
        return (action, target.removeprefix("user:"))
    return None


def _ledger_entries(stack: DemoStack) -> dict[int, tuple[str, str, str | None]]:
    """Every entry of the ledger's log still in Cosmos: index → (kind, subject, details.action)."""
    container = clients.cosmos_database(_settings(stack)).get_container_client(layout.LEDGER_LOG)
    store = CosmosLogStore(container)
    found: dict[int, tuple[str, str, str | None]] = {}
    last = max((int(d["upto"]) for d in container.query_items(
        "SELECT c.upto FROM c WHERE c.type = 'batch'", enable_cross_partition_query=True
    )), default=0)  # fmt: skip
    for batch in store.batches_covering(0, last):
        for offset, entry in enumerate(batch.entries):
            index = batch.first + offset
            try:
                decoded = decode_entry(index, entry.data)
            except InvalidEntry:
                continue
            action = decoded.details.get("action") if isinstance(decoded.details, dict) else None
            found[index] = (str(decoded.kind), decoded.subject, str(action) if action is not None else None)
    return found


def check_reads_audited(stack: DemoStack, reads: ReadLog) -> InvariantResult:
    result = InvariantResult(
        "reads-audited",
        "every answered read of the run has its access record, whose ledger entry is an `accessed` entry of the log",
    )
    database = clients.cosmos_database(_settings(stack))
    records = list(
        database.get_container_client(layout.AUDIT).query_items(
            "SELECT * FROM c WHERE c.category = 'access'", enable_cross_partition_query=True
        )
    )
    audited: Counter[ReadKey] = Counter()
    seqs: dict[int, dict[str, Any]] = {}
    for record in records:
        key = _audit_key(record)
        if key is None:
            continue
        audited[key] += 1
        seq = (record.get("detail") or {}).get("ledgerSeq")
        if not isinstance(seq, int):
            result.violations.append(f"access record {record.get('id')} ({key[0]} {key[1]}) names no ledger entry")
            continue
        seqs[seq] = record
    for key, count in sorted(reads.reads.items()):
        result.checked += count
        if audited[key] < count:
            result.violations.append(
                f"{key[0]} {key[1]}: the run's read was answered {count} time(s), {audited[key]} access record(s)"
            )
    entries = _ledger_entries(stack)
    for seq, record in sorted(seqs.items()):
        entry = entries.get(seq)
        if entry is None:
            result.violations.append(f"access record {record.get('id')}: ledger entry {seq} is not in the log")
        elif entry[0] != "accessed" or entry[1] != record.get("target") or entry[2] != record.get("action"):
            result.violations.append(
                f"access record {record.get('id')} ({record.get('action')} {record.get('target')}): ledger entry "
                f"{seq} is {entry}"
            )
    result.promise += f" ({len(seqs)} access records checked against the log)"
    return result


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def pending_access_copies(stack: DemoStack) -> list[str]:
    """The sealed parts whose access copies are not sealed yet (`recording-id part N`): the `access-copies` trigger
    makes and seals them after the evidence seal, outside the recording's orchestration, so neither a final verdict
    nor a completed orchestration says they are done. Raises when Cosmos cannot be read (a paused emulator).

    Read as whole sealed records, not with the sweep's JOIN over `seal.parts`, so that it says what the record says
    whatever the emulator makes of that query."""
    container = clients.cosmos_database(_settings(stack)).get_container_client(layout.RECORDINGS)
    pending = []
    for doc in container.query_items(
        "SELECT c.id, c.seal FROM c WHERE c.status = 'sealed'", enable_cross_partition_query=True
    ):
        for part in (doc.get("seal") or {}).get("parts") or []:
            if part.get("access_pending"):
                pending.append(f"{doc['id']} part {part.get('part')}")
    return sorted(pending)


def check_no_orphan_evidence(stack: DemoStack, sealing: Sequence[str] = ()) -> InvariantResult:
    """`sealing`: recordings whose orchestration still runs (their blobs are being written: not judged)."""
    result = InvariantResult(
        "no-orphan-evidence",
        "every blob in `recordings` belongs to a sealed recording record and is named by its seal or sealed manifests",
    )
    settings = _settings(stack)
    database = clients.cosmos_database(settings)
    records = {
        doc["id"]: doc
        for doc in database.get_container_client(layout.RECORDINGS).query_items(
            "SELECT * FROM c", enable_cross_partition_query=True
        )
    }
    pairs = list(
        database.get_container_client(layout.RECORDING_PAIRS).query_items(
            "SELECT * FROM c", enable_cross_partition_query=True
        )
    )
    paired = {name for pair in pairs for name in _strings(pair)}
    service = BlobServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    container = service.get_container_client(layout.RECORDINGS_BLOBS)
    by_recording: dict[str, list[str]] = {}
    for blob in container.list_blobs():
        by_recording.setdefault(blob.name.split("/", 1)[0], []).append(blob.name)
    in_progress = 0
    for recording_id, blob_names in sorted(by_recording.items()):
        if recording_id in sealing:
            in_progress += 1
            continue
        result.checked += len(blob_names)
        record = records.get(recording_id)
        if record is None:
            result.violations.append(f"{recording_id}: {len(blob_names)} blob(s) and no recording record")
            continue
        seal = record.get("seal")
        if not seal:
            result.violations.append(
                f"{recording_id}: {len(blob_names)} blob(s), the record is {record.get('status')} with no seal"
            )
            continue
        named = set(_strings(seal)) | paired
        for manifest in _manifest_names(seal):
            try:
                named |= set(_strings(json.loads(container.download_blob(manifest).readall())))
            except Exception as error:  # an unreadable sealed manifest is itself a finding
                result.violations.append(f"{recording_id}: sealed manifest {manifest} unreadable: {error}")
        # Written by an `access-copies` delivery that has not sealed them (yet): the record says so.
        unsealed_copies = any(part.get("access_pending") for part in seal.get("parts") or [])
        for name in blob_names:
            if name not in named:
                why = " (its access copies are still pending: written, never sealed)" if unsealed_copies else ""
                result.violations.append(f"{name}: named by no seal, sealed manifest or pair of {recording_id}{why}")
    if in_progress:
        result.promise += f" ({in_progress} recording(s) still being sealed, not judged: see no-stuck-orchestration)"
    return result


def _manifest_names(seal: dict[str, Any]) -> Sequence[str]:
    names = [seal.get("manifest_blob")] + [part.get("manifest_blob") for part in seal.get("parts") or []]
    return sorted({name for name in names if isinstance(name, str) and name})
