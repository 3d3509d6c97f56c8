"""Exports' services, built from the container's adapters: the export store, the work area beside the packages,
and `ExportService` reading recordings, verdicts, call records, holds and the ledger."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from verbatim.api.service import search_query
from verbatim.chat.retention import HoldScope
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.exports.chats import ChatSources
from verbatim.exports.links import UserDelegationLinks
from verbatim.exports.recording import RecordingSources
from verbatim.exports.service import ExportService
from verbatim.exports.store import CosmosExportStore
from verbatim.platform import layout
from verbatim.platform.blobs import AzureBlobStore

if TYPE_CHECKING:
    from verbatim.wiring.container import Container


class ExportServices:
    def __init__(self, container: Container) -> None:
        self._c = container

    @cached_property
    def store(self) -> CosmosExportStore:
        return CosmosExportStore(self._c.cosmos(layout.EXPORTS))

    @cached_property
    def packages(self) -> AzureBlobStore:
        return AzureBlobStore(self._c.blob_container(layout.EXPORTS_BLOBS))

    def _held(self, hold_id: str) -> list[RecordingRecord]:
        return self._c.retention.recordings.with_hold(hold_id)

    def _hold_active(self, hold_id: str) -> bool | None:
        found = self._c.retention.hold_store.get(hold_id)
        return None if found is None else found.hold.status == "active"

    def _hold_scope(self, hold_id: str) -> HoldScope | None:
        """A legal hold as chat evidence reads it (whatever its status: a released hold still names what it held)."""
        found = self._c.retention.hold_store.get(hold_id)
        if found is None:
            return None
        hold = found.hold
        return HoldScope(hold.id, frozenset(c.strip().lower() for c in hold.custodians), hold.from_, hold.until)

    def _chats(self) -> ChatSources | None:
        if not self._c.settings.chat_capture_enabled:
            return None
        chat = self._c.chat
        return ChatSources(repository=chat.repository, reader=chat.evidence_reader, hold_scope=self._hold_scope)

    def _links(self) -> UserDelegationLinks | None:
        """User-delegation SAS links where the packages' account is reached with an Entra identity (Azure); none
        with a connection string (a key: the local emulator), where downloads go through the API."""
        if not self._c.settings.recordings_storage_connection.uses_identity:
            return None
        return UserDelegationLinks(self._c.recordings_account_blobs, layout.EXPORTS_BLOBS, self._c.clock)

    @cached_property
    def service(self) -> ExportService:
        calls = self._c.callrecords
        return ExportService(
            store=self.store,
            log=self._c.ledger,
            media=self._c.recording_blobs,
            work_store=self.packages,
            audit=self._c.audit,
            index=self._c.recording_index,
            sources=RecordingSources(
                record=self._c.recording_finder.get,
                verdicts=self._c.verdicts,
                call_record=calls.store.get_raw,
            ),
            held_recordings=self._held,
            hold_active=self._hold_active,
            search_query=search_query,
            clock=self._c.clock,
            retention_days=self._c.settings.export_retention_days,
            access_copy_wait_minutes=self._c.settings.export_access_copy_wait_minutes,
            access_copy_poll_seconds=self._c.settings.export_access_copy_poll_seconds,
            chunk_bytes=self._c.settings.media_chunk_bytes,
            chats=self._chats(),
            links=self._links(),
            link_minutes=self._c.settings.export_link_minutes,
            part_blocks=self._c.settings.export_part_blocks,
            part_items=self._c.settings.export_part_items,
        )
