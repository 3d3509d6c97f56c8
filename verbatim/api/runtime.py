"""The compliance API wired from settings, built once per process (per settings object)."""

from __future__ import annotations

import threading
from functools import cached_property

from verbatim import clients
from verbatim.api.access import AccessLog
from verbatim.api.audit import CosmosAuditReader
from verbatim.api.service import ComplianceApi
from verbatim.callrecords.runtime import callrecords_runtime
from verbatim.ledger import trusted_fingerprints
from verbatim.reconciliation.runtime import reconciliation_runtime
from verbatim.settings import Settings


class ApiRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def api(self) -> ComplianceApi:
        reconciliation = reconciliation_runtime(self.settings)
        calls = callrecords_runtime(self.settings)
        ledger = reconciliation.ledger
        media = clients.blob_service(self.settings.recordings_storage_connection).get_container_client(
            self.settings.recordings_container
        )
        return ComplianceApi(
            index=reconciliation.index,
            recordings=reconciliation.recordings,
            verdicts=reconciliation.verdicts,
            media_container=media,
            ledger=ledger,
            access=AccessLog(ledger=ledger, audit=calls.audit),
            reporter=reconciliation.reporter,
            audit_reader=CosmosAuditReader(calls.database.get_container_client("audit")),
            trusted_fingerprints=trusted_fingerprints(self.settings, ledger.signer),
            chunk_bytes=self.settings.media_chunk_bytes,
            max_full_bytes=self.settings.media_max_full_bytes,
        )


_current: tuple[Settings, ApiRuntime] | None = None
_lock = threading.Lock()


def compliance_api(settings: Settings) -> ComplianceApi:
    """The process's API service for these settings (rebuilt when the settings object changes)."""
    global _current
    with _lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, ApiRuntime(settings))
        return _current[1].api
