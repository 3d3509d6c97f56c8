"""kill -9 of a ledger v2 process at each step of sequencing, integration and checkpointing, on the real
Cosmos emulator and Azurite: no acknowledged entry is lost or moved, no index is given twice, the next
process completes what the dead one left, and the tiles and checkpoint it signs verify."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos.documents import SSLConfiguration
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import Azurite, Cosmos
from tests.ledger.log_process import build
from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.sequencer import TILE_WIDTH
from verbatim.ledger.merkle import MemoryTree
from verbatim.ledger.tiles import check_tiles

REPO = Path(__file__).resolve().parents[2]

# (step, n-th time it is reached, writers, appends per writer, sign a checkpoint after appending)
STEPS = [
    ("batch_created", 3, 4, 30, False),
    ("state_advanced", 3, 4, 30, False),
    ("tiles_written", 1, 4, 90, False),
    ("partial_tiles_written", 1, 2, 20, True),
    ("checkpoint_written", 1, 2, 20, True),
    ("checkpoint_recorded", 1, 2, 20, True),
]


@pytest.fixture
def log_config(
    azurite_service: Azurite, cosmos_service: Cosmos, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, object]]:
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = str(cosmos_service.ca_cert)
    cosmos = CosmosClient(cosmos_service.endpoint, credential=cosmos_service.key, ssl_config=ssl)
    database = f"crash{abs(hash(request.node.nodeid)) % 10**8}"
    db = cosmos.create_database_if_not_exists(database)
    db.create_container_if_not_exists("ledger_log", PartitionKey("/pk"))
    blobs = BlobServiceClient.from_connection_string(azurite_service.connection_string)
    container = blobs.get_container_client("ledger")
    for blob in container.list_blobs() if container.exists() else []:
        container.delete_blob(blob.name)
    if not container.exists():
        container.create_container()
    key_file = tmp_path / "log.key"
    key_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    yield {
        "cosmos_endpoint": cosmos_service.endpoint,
        "cosmos_key": cosmos_service.key,
        "cosmos_ca": str(cosmos_service.ca_cert),
        "database": database,
        "storage": azurite_service.connection_string,
        "key_file": str(key_file),
        "lease_seconds": 3.0,  # a dead process's maintenance lease expires quickly
    }
    cosmos.delete_database(database)


def run_until(config: dict[str, object], tmp_path: Path, name: str) -> tuple[list[tuple[int, str]], bool]:
    """Run a writer process until it reaches its step (then SIGKILL it) or finishes; returns its ACKs and
    whether it was killed."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.log_process", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    acks: list[tuple[int, str]] = []
    killed = False
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ACK "):
                _, index, digest = line.split()
                acks.append((int(index), digest))
            elif line.startswith("AT "):
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
                break
            elif line.startswith("DONE"):
                break
    finally:
        if process.poll() is None and not killed:
            process.wait(timeout=120)
        if killed:
            process.wait(timeout=30)
    return acks, killed


@pytest.mark.parametrize(("stop_at", "nth", "writers", "per_writer", "checkpoint"), STEPS)
def test_kill_9_at_a_step_loses_no_acknowledged_entry_and_never_forks(
    log_config: dict[str, object],
    tmp_path: Path,
    stop_at: str,
    nth: int,
    writers: int,
    per_writer: int,
    checkpoint: bool,
) -> None:
    first = {**log_config, "stop_at": stop_at, "nth": nth, "writers": writers, "per_writer": per_writer,
             "checkpoint": checkpoint, "prefix": "a"}  # fmt: skip
    acked, killed = run_until(first, tmp_path, "first")
    assert killed, f"the writer never reached {stop_at}"
    # The next process appends more (rolling the dead one's work forward) and signs a checkpoint.
    second = {**log_config, "stop_at": "never", "writers": 2, "per_writer": 10, "checkpoint": True, "prefix": "b"}
    more, killed_again = run_until(second, tmp_path, "second")
    assert not killed_again
    acked += more

    log = build(log_config)
    note = log.latest_checkpoint()
    assert note is not None
    signed = open_checkpoint(note, log.keys.verifiers).checkpoint
    size = log.size()
    assert signed.size == size
    batches = log.store.batches_covering(0, size)
    entries = [e.data for b in batches for e in b.entries]
    assert [b.first for b in batches] == [sum(len(x.entries) for x in batches[:n]) for n in range(len(batches))]
    assert len(entries) == size  # contiguous batches, one per index: never a fork
    assert MemoryTree.of_entries(entries).root() == signed.root_hash
    indexes = [index for index, _ in acked]
    assert len(indexes) == len(set(indexes))  # no index acknowledged twice
    for index, digest in acked:  # every acknowledged entry is where its writer was told it is
        assert hashlib.sha256(entries[index]).hexdigest() == digest
    findings = list(check_tiles(size, lambda ref: log.blobs.read(ref.path), lambda ref: log.blobs.read(ref.path)))
    assert findings == []
    if stop_at == "tiles_written":
        assert size > TILE_WIDTH
