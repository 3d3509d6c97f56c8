"""Keep the Cosmos emulator's data across restarts of the devstack.

The npm Cosmos emulator holds everything in memory. `verbatim-dev up` restores the last snapshot after it has
provisioned the containers, saves one periodically while it runs and a final one before it stops the
emulator, so a restarted stack still has its recordings, call records and ledger (which must match the
blobs Azurite keeps on disk). Only the documents are kept; Cosmos system properties are regenerated.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from verbatim.platform import clients
from verbatim.platform.layout import COSMOS_CONTAINERS
from verbatim.platform.settings import Settings

SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_attachments", "_ts"})
SNAPSHOT_VERSION = 1


def save(settings: Settings, path: Path) -> int:
    """Write every document of every container to `path` atomically; returns the number of documents."""
    database = clients.cosmos_database(settings)
    containers: dict[str, list[dict[str, Any]]] = {}
    for container in COSMOS_CONTAINERS:
        items = database.get_container_client(container.name).query_items(
            "SELECT * FROM c", enable_cross_partition_query=True
        )
        containers[container.name] = [
            {key: value for key, value in item.items() if key not in SYSTEM_PROPERTIES} for item in items
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"version": SNAPSHOT_VERSION, "containers": containers}), encoding="utf-8")
    os.replace(partial, path)
    return sum(len(items) for items in containers.values())


def restore(settings: Settings, path: Path) -> int:
    """Upsert the documents of a snapshot into the (provisioned) containers; returns how many."""
    if not path.exists():
        return 0
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{path}: unknown Cosmos snapshot version {snapshot.get('version')!r}")
    database = clients.cosmos_database(settings)
    known = {container.name for container in COSMOS_CONTAINERS}
    restored = 0
    for name, items in snapshot["containers"].items():
        if name not in known:
            continue
        container = database.get_container_client(name)
        for item in items:
            container.upsert_item(item)
            restored += 1
    return restored


class PeriodicSnapshots:
    """Saves a snapshot every `interval` seconds in a background thread, and a last one on `stop()`."""

    def __init__(self, settings: Settings, path: Path, interval: float = 30.0) -> None:
        self._settings = settings
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cosmos-snapshots", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def save_now(self) -> int:
        with self._lock:
            return save(self._settings, self._path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 30)
        self.save_now()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.save_now()
            except Exception as error:  # a failed periodic save must not stop the stack; the next one retries
                print(f"(could not save the Cosmos snapshot: {error})")
