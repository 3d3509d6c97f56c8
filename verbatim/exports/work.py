"""An export's work area in the `exports` container, beside its package: the plan (the recordings, in order),
each recording's snapshot (after attesting) and part (after packaging). Each is written once its step is done,
so a step that finds its output already there returns it: a retried activity or a restarted host repeats
nothing that finished. The assembly removes the work area once the package is committed. These files are read
only by the export that wrote them (typed, validated on read; not registered contracts: no other process reads
them, and a format change cannot meet an old file after the export finishes or expires).

    <export id>/package.zip            the package (block blob: one segment of blocks per recording, then the end)
    <export id>/work/plan.json         recording ids in package order, the chats after them, what was left out
    <export id>/work/snapshot/<n>.json what attesting item n (a recording, or a chat after the recordings) saw
    <export id>/work/part/<n>.json     where item n's entries are in its segment, and its blocks
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from verbatim.contracts import Contract
from verbatim.contracts.exports import PackagedChat, PackagedRecording, PartSummary
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import Verdict
from verbatim.exports.zip64 import ZipEntry
from verbatim.platform.blobs import BlobNotFound, BlobStore

PACKAGE_NAME = "package.zip"


class Excluded(Contract):
    recording_id: str
    reason: str


class PlannedChat(Contract):
    """A chat of the export: the sealed bundles (chat-days) it carries and why it is in."""

    chat_id: str
    bundle_ids: list[str]
    why: list[str] = Field(default_factory=list)


class PlanFile(Contract):
    recording_ids: list[str]
    chats: list[PlannedChat] = Field(default_factory=list)
    excluded: list[Excluded] = Field(default_factory=list)

    @property
    def total(self) -> int:
        """Items in package order: the recordings (positions from 0), then the chats."""
        return len(self.recording_ids) + len(self.chats)

    def chat_at(self, position: int) -> PlannedChat | None:
        """The chat at `position`, or None when the position is a recording's."""
        index = position - len(self.recording_ids)
        return self.chats[index] if 0 <= index < len(self.chats) else None


class RecordingSnapshot(Contract):
    position: int
    recording_id: str
    record: RecordingRecord
    verdicts: list[Verdict] = Field(default_factory=list)
    call_record: dict[str, Any] | None = None
    trail: list[int]  # indexes of the entries the exported entry attests
    exported: list[int]  # this export's exported entries for the recording (more than one if the trail moved)


class ChatSnapshot(Contract):
    position: int
    chat_id: str
    bundle_ids: list[str]
    why: list[str] = Field(default_factory=list)
    chat: dict[str, Any] | None = None  # the chat's document (type, topic, members and their names)
    trail: list[int]
    exported: list[int]


class PartRecord(Contract):
    position: int
    recording: PackagedRecording | None = None
    chat: PackagedChat | None = None
    entries: list[ZipEntry]
    length: int
    blocks: list[str]
    media_bytes: int

    def summary(self) -> PartSummary:
        return PartSummary(
            position=self.position,
            recording_id=self.recording.recording_id if self.recording else self.chat.chat_id if self.chat else "",
            length=self.length,
            media_bytes=self.media_bytes,
            kind="recording" if self.recording else "chat",
        )


class ExportWork:
    """The work area of one export."""

    def __init__(self, store: BlobStore, export_id: str) -> None:
        self.store = store
        self.export_id = export_id

    @property
    def package_blob(self) -> str:
        return f"{self.export_id}/{PACKAGE_NAME}"

    def _name(self, *parts: str) -> str:
        return "/".join((self.export_id, "work", *parts))

    def _read(self, name: str) -> bytes | None:
        try:
            return self.store.read(name)
        except BlobNotFound:
            return None

    def save_plan(self, plan: PlanFile) -> None:
        self.store.write(self._name("plan.json"), plan.model_dump_json().encode(), content_type="application/json")

    def plan(self) -> PlanFile | None:
        data = self._read(self._name("plan.json"))
        return PlanFile.model_validate_json(data) if data is not None else None

    def save_snapshot(self, snapshot: RecordingSnapshot) -> None:
        self.store.write(
            self._name("snapshot", f"{snapshot.position}.json"),
            snapshot.model_dump_json().encode(),
            content_type="application/json",
        )

    def snapshot(self, position: int) -> RecordingSnapshot | None:
        data = self._read(self._name("snapshot", f"{position}.json"))
        return RecordingSnapshot.model_validate_json(data) if data is not None else None

    def save_chat_snapshot(self, snapshot: ChatSnapshot) -> None:
        self.store.write(
            self._name("snapshot", f"{snapshot.position}.json"),
            snapshot.model_dump_json().encode(),
            content_type="application/json",
        )

    def chat_snapshot(self, position: int) -> ChatSnapshot | None:
        data = self._read(self._name("snapshot", f"{position}.json"))
        return ChatSnapshot.model_validate_json(data) if data is not None else None

    def exported(self, position: int) -> list[int] | None:
        """The `exported` entries item `position` was attested with (a recording or a chat), None before."""
        data = self._read(self._name("snapshot", f"{position}.json"))
        if data is None:
            return None
        return [int(i) for i in json.loads(data)["exported"]]

    def save_part(self, part: PartRecord) -> None:
        self.store.write(
            self._name("part", f"{part.position}.json"),
            part.model_dump_json().encode(),
            content_type="application/json",
        )

    def part(self, position: int) -> PartRecord | None:
        data = self._read(self._name("part", f"{position}.json"))
        return PartRecord.model_validate_json(data) if data is not None else None

    def finished(self, step: str) -> set[int]:
        """The positions that have finished `step` (`snapshot` or `part`): one listing, not a read per item."""
        prefix = self._name(step) + "/"
        return {int(name[len(prefix) :].split(".", 1)[0]) for name in self.store.names(prefix)}

    def done(self, step: str) -> int:
        """How many recordings have finished `step` (`snapshot` or `part`): the progress batches report while
        they run in parallel."""
        return sum(1 for _ in self.store.names(self._name(step) + "/"))

    def clear(self) -> int:
        """Remove the work area (not the package); returns how many blobs went."""
        removed = 0
        for name in self.store.names(f"{self.export_id}/work/"):
            removed += self.store.delete(name)
        return removed
