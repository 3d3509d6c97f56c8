"""The devstack keeps the in-memory Cosmos emulator's documents across restarts through snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.cosmos_snapshot import PeriodicSnapshots, restore, save
from devstack.provision import provision_cosmos
from verbatim.platform import clients
from verbatim.platform.settings import Settings, reload_settings


def test_a_snapshot_restores_every_document_into_a_fresh_database(
    stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = clients.cosmos_database(stack_env)
    database.get_container_client("recordings").upsert_item({"id": "rec-1", "status": "sealed", "n": 3})
    database.get_container_client("ledger").upsert_item({"id": "7", "chain": "main", "hash": "ab" * 32})
    snapshot = tmp_path / "cosmos-snapshot.json"

    assert save(stack_env, snapshot) == 2

    monkeypatch.setenv("COSMOS_DATABASE", stack_env.cosmos_database + "b")
    fresh = reload_settings()
    provision_cosmos(fresh)
    assert restore(fresh, snapshot) == 2

    restored = clients.cosmos_database(fresh)
    recording = restored.get_container_client("recordings").read_item("rec-1", partition_key="rec-1")
    entry = restored.get_container_client("ledger").read_item("7", partition_key="main")
    assert (recording["status"], recording["n"]) == ("sealed", 3)
    assert entry["hash"] == "ab" * 32


def test_restoring_without_a_snapshot_does_nothing(stack_env: Settings, tmp_path: Path) -> None:
    assert restore(stack_env, tmp_path / "missing.json") == 0


def test_stopping_the_periodic_saver_writes_a_last_snapshot(stack_env: Settings, tmp_path: Path) -> None:
    snapshot = tmp_path / "cosmos-snapshot.json"
    saver = PeriodicSnapshots(stack_env, snapshot, interval=3600)
    saver.start()
    clients.cosmos_database(stack_env).get_container_client("holds").upsert_item({"id": "hold-1", "matter": "M-1"})

    saver.stop()

    assert '"hold-1"' in snapshot.read_text()
