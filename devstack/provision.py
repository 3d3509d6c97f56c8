"""Create what verbatim.platform.layout names — Cosmos database and containers, blob containers, queues — locally.

In Azure, infra/ creates these; against the emulators the devstack does it on every start (idempotent).
"""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError
from azure.cosmos import PartitionKey

from verbatim.platform import clients
from verbatim.platform.layout import BLOB_CONTAINERS, COSMOS_CONTAINERS, QUEUES, blob_account
from verbatim.platform.settings import Settings


def provision_cosmos(settings: Settings) -> None:
    database = clients.cosmos_client(settings).create_database_if_not_exists(settings.cosmos_database)
    for container in COSMOS_CONTAINERS:
        database.create_container_if_not_exists(container.name, PartitionKey(path=container.partition_key))


def provision_storage(settings: Settings) -> None:
    recordings = clients.blob_service(settings.recordings_storage_connection)
    runtime_blobs = clients.blob_service(settings.runtime_storage_connection)
    # The ledger's containers may be renamed by setting (tests give each its own); they live with the evidence.
    ledger = {settings.ledger_container, settings.ledger_anchor_container}
    for name in {*BLOB_CONTAINERS, *ledger}:
        on_recordings = (
            name in (settings.recordings_container, settings.captures_container)
            or name in ledger
            or blob_account(name) == "recordings"
        )
        with contextlib.suppress(ResourceExistsError):
            (recordings if on_recordings else runtime_blobs).create_container(name)
    queues = clients.queue_service(settings.runtime_storage_connection)
    for name in QUEUES:
        with contextlib.suppress(ResourceExistsError):
            queues.create_queue(name)
