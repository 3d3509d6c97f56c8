"""An export's work area in the `exports` container, beside its package: the plan (the recordings, in order),
each batch's snapshots (after attesting) and segment (after packaging). A batch is the items [first, end) of one
activity; its file is written once the whole batch is done, so a step that finds it already there returns it: a
retried activity or a restarted host repeats nothing that finished (a batch that died half way is done again
whole: its ledger appends are idempotent by key and its blocks are staged again with the same bytes). One file
per batch, not per item: each file is a storage request, and per item they were a third of packaging's cost.
The assembly removes the work area once the package is committed. These files are read only by the export that
wrote them (typed, validated on read; not registered contracts: no other process reads them).

    <export id>/package.zip                      the package (block blob: one segment of blocks per batch, then the end)
    <export id>/work/plan.json                   recording ids in package order, the chats after them, what was left out
    <export id>/work/snapshot/<first>-<end>.json what attesting items [first, end) saw (recordings, then chats)
    <export id>/work/segment/<first>-<end>.json  where each item's entries are in the batch's segment, and its blocks
    <export id>/work/parts.json                  where the package splits into parts (decided at the checkpoint)

A multi-part package (more blocks than one blob takes) is `part-0001.zip` ... beside `package-index.json` and
`package-index.sig` instead of `package.zip`; a batch that straddles two parts writes a segment into each.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from pydantic import Field

from verbatim.contracts import Contract
from verbatim.contracts.exports import PackagedChat, PackagedRecording, PartSummary
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import Verdict
from verbatim.exports import names
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
    media_sizes: list[int] = Field(default_factory=list)  # of the sealed media it will carry (the part split)


class ChatSnapshot(Contract):
    position: int
    chat_id: str
    bundle_ids: list[str]
    why: list[str] = Field(default_factory=list)
    chat: dict[str, Any] | None = None  # the chat's document (type, topic, members and their names)
    trail: list[int]
    exported: list[int]


class SnapshotBatch(Contract):
    """What attesting items [first, end) saw."""

    first: int
    end: int
    recordings: list[RecordingSnapshot] = Field(default_factory=list)
    chats: list[ChatSnapshot] = Field(default_factory=list)

    def recording(self, position: int) -> RecordingSnapshot | None:
        return next((s for s in self.recordings if s.position == position), None)

    def chat(self, position: int) -> ChatSnapshot | None:
        return next((s for s in self.chats if s.position == position), None)

    def exported(self) -> list[int]:
        """Every `exported` entry the batch's items were attested with."""
        return [i for r in self.recordings for i in r.exported] + [i for c in self.chats for i in c.exported]


class PartRecord(Contract):
    """One item of a segment: its entries (offsets from the start of the batch's segment) and its length."""

    position: int
    recording: PackagedRecording | None = None
    chat: PackagedChat | None = None
    entries: list[ZipEntry]
    length: int
    media_bytes: int

    def summary(self) -> PartSummary:
        return PartSummary(
            position=self.position,
            recording_id=self.recording.recording_id if self.recording else self.chat.chat_id if self.chat else "",
            length=self.length,
            media_bytes=self.media_bytes,
            kind="recording" if self.recording else "chat",
        )


class SegmentRecord(Contract):
    """The segment of items [first, end): its bytes are the blocks, in order; `length` bytes in all. `part`: the
    part of a multi-part package it is in (0: the single package)."""

    first: int
    end: int
    items: list[PartRecord]
    length: int
    blocks: list[str]
    part: int = 0


class PartsFile(Contract):
    """The first item position of each part; `[0]`: one package."""

    firsts: list[int]
    estimates: list[int] = Field(default_factory=list)  # the block bound of each part

    @property
    def multi(self) -> bool:
        return len(self.firsts) > 1

    def part_of(self, position: int) -> int:
        """The part number (from 1) of the item at `position`; 0 when the package is one part."""
        if not self.multi:
            return 0
        return sum(1 for first in self.firsts if first <= position)

    def pieces(self, first: int, end: int) -> list[tuple[int, int, int]]:
        """Items [first, end) cut where a part begins: (first, end, part) of each piece."""
        cuts = sorted({first, end, *(f for f in self.firsts if first < f < end)})
        return [(a, b, self.part_of(a)) for a, b in itertools.pairwise(cuts)]


class ExportWork:
    """The work area of one export."""

    def __init__(self, store: BlobStore, export_id: str) -> None:
        self.store = store
        self.export_id = export_id

    @property
    def package_blob(self) -> str:
        return f"{self.export_id}/{PACKAGE_NAME}"

    def part_blob(self, number: int) -> str:
        """The blob of part `number` (0: the single package)."""
        return self.package_blob if number == 0 else f"{self.export_id}/{names.part_name(number)}"

    def top_blob(self, name: str) -> str:
        """An object beside the parts (`package-index.json`, its signature)."""
        return f"{self.export_id}/{name}"

    def save_parts(self, parts: PartsFile) -> None:
        self.store.write(self._name("parts.json"), parts.model_dump_json().encode(), content_type="application/json")

    def parts(self) -> PartsFile | None:
        data = self._read(self._name("parts.json"))
        return PartsFile.model_validate_json(data) if data is not None else None

    def remove_package(self) -> int:
        """Remove the package's objects (the ZIP, or the index and every part) and the work area."""
        removed = 0
        for name in self.store.names(f"{self.export_id}/"):
            removed += self.store.delete(name)
        return removed

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

    def save_access_pending(self, recording_ids: list[str]) -> None:
        """The planned recordings whose access copies were still being made at the last check."""
        body = json.dumps(recording_ids).encode()
        self.store.write(self._name("access-pending.json"), body, content_type="application/json")

    def access_pending(self) -> list[str] | None:
        """What `save_access_pending` kept (None: not checked yet)."""
        data = self._read(self._name("access-pending.json"))
        return [str(value) for value in json.loads(data)] if data is not None else None

    @staticmethod
    def _batch(first: int, end: int) -> str:
        return f"{first:07d}-{end:07d}.json"

    def _batches(self, step: str) -> list[tuple[int, int, str]]:
        """(first, end, name) of every finished batch of `step`, in order: one listing."""
        prefix = self._name(step) + "/"
        found = []
        for name in self.store.names(prefix):
            first, _, end = name[len(prefix) :].removesuffix(".json").partition("-")
            found.append((int(first), int(end), name))
        return sorted(found)

    def save_snapshots(self, batch: SnapshotBatch) -> None:
        self.store.write(
            self._name("snapshot", self._batch(batch.first, batch.end)),
            batch.model_dump_json().encode(),
            content_type="application/json",
        )

    def snapshots(self, first: int, end: int) -> SnapshotBatch | None:
        data = self._read(self._name("snapshot", self._batch(first, end)))
        return SnapshotBatch.model_validate_json(data) if data is not None else None

    def all_snapshots(self) -> list[SnapshotBatch]:
        """Every attested batch, in order (a read per batch)."""
        batches = []
        for _, _, name in self._batches("snapshot"):
            data = self._read(name)
            if data is not None:
                batches.append(SnapshotBatch.model_validate_json(data))
        return batches

    def save_segment(self, segment: SegmentRecord) -> None:
        self.store.write(
            self._name("segment", self._batch(segment.first, segment.end)),
            segment.model_dump_json().encode(),
            content_type="application/json",
        )

    def segment(self, first: int, end: int) -> SegmentRecord | None:
        data = self._read(self._name("segment", self._batch(first, end)))
        return SegmentRecord.model_validate_json(data) if data is not None else None

    def segments(self, total: int) -> list[SegmentRecord]:
        """Every packaged segment, in order; RuntimeError unless they cover items 0 .. total - 1 exactly once."""
        segments: list[SegmentRecord] = []
        expected = 0
        for first, end, name in self._batches("segment"):
            if first != expected or end <= first:
                break
            data = self._read(name)
            if data is None:
                break
            segments.append(SegmentRecord.model_validate_json(data))
            expected = end
        if expected != total:
            raise RuntimeError(f"export {self.export_id}: items {expected} .. {total - 1} were not packaged")
        return segments

    def clear(self) -> int:
        """Remove the work area (not the package); returns how many blobs went."""
        removed = 0
        for name in self.store.names(f"{self.export_id}/work/"):
            removed += self.store.delete(name)
        return removed
