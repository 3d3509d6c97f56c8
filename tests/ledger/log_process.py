"""A ledger v2 writer process for the crash tests: `python -m tests.ledger.log_process CONFIG.json`.

It appends from several threads to a log on the real Cosmos emulator and Azurite, prints `ACK <index>
<sha256 of the entry>` for every append that returned, and when the log reaches the named step for the
n-th time it prints `AT <step>` and waits there, to be killed with SIGKILL by the test. With `checkpoint`
set it signs a checkpoint after appending (so the maintenance steps can be stopped too).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.ledger.logkit import log_keys
from verbatim.ledger.log.blobs import AzureLogBlobs
from verbatim.ledger.log.cosmos import CosmosLogStore
from verbatim.ledger.log.service import TransparencyLog


def build(config: dict[str, object], step: object = None) -> TransparencyLog:
    from azure.cosmos import CosmosClient
    from azure.cosmos.documents import SSLConfiguration
    from azure.storage.blob import BlobServiceClient

    ssl = SSLConfiguration()
    ssl.SSLCaCerts = str(config["cosmos_ca"])
    cosmos = CosmosClient(str(config["cosmos_endpoint"]), credential=str(config["cosmos_key"]), ssl_config=ssl)
    container = cosmos.get_database_client(str(config["database"])).get_container_client("ledger_log")
    blobs = BlobServiceClient.from_connection_string(str(config["storage"])).get_container_client("ledger")
    key = serialization.load_pem_private_key(Path(str(config["key_file"])).read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return TransparencyLog(
        CosmosLogStore(container),
        AzureLogBlobs(blobs),
        log_keys(key=key),
        lease_seconds=float(config.get("lease_seconds", 30.0)),  # type: ignore[arg-type]
        **({"step": step} if step is not None else {}),  # type: ignore[arg-type]
    )


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    target, nth = str(config["stop_at"]), int(config.get("nth", 1))
    seen = 0
    out = threading.Lock()

    def step(name: str) -> None:
        nonlocal seen
        if name != target:
            return
        with out:
            seen += 1
            if seen < nth:
                return
            print(f"AT {name}", flush=True)
        while True:
            time.sleep(60)

    log = build(config, step)
    prefix = str(config["prefix"])

    def writer(n: int) -> None:
        for k in range(int(config["per_writer"])):
            key = f"{prefix}:{n}:{k}" if k % 2 == 0 else None
            entry = log.append("accessed", f"recording:{prefix}-{n}", {"k": k}, idempotency_key=key)
            data = log.entry_bytes(entry.index)
            assert data is not None
            with out:
                print(f"ACK {entry.index} {hashlib.sha256(data).hexdigest()}", flush=True)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(int(config["writers"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if config.get("checkpoint"):
        log.checkpoint()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
