"""Chats in an export (`options.chats`): which sealed chat-day bundles go in, and each chat's part of the package.

Which: for a legal hold, every bundle the hold covers (a custodian was a member and the hold's time range overlaps
the bundle's day — the rule chat retention applies); for recordings (by ids or a search), each recording's meeting
chat (the thread its call record's `joinWebUrl` names) and the chats its people (observed user and participants,
by object id) were members of on the UTC days the recording spans. Deleted bundles are never planned.

A chat then goes through the same two steps as a recording (verbatim.exports.recording): `attest` appends its
`exported` ledger entry (subject `chat:<id>`, the trail before it, and the bundle ids exported) and snapshots the
chat; `package` writes its segment: each bundle's `manifest.json` and `messages.ndjson` exactly as sealed (hashes
checked against the `chat.sealed` entry while reading), the hosted contents (inline images) by SHA-256, the
audit trail with a tlog-proof of each entry, and the renderings (`chat.json`, `transcript.html`,
`transcript.txt`, made from the sealed lines).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from pydantic import JsonValue

from verbatim.chat.exports import ChatEvidenceReader
from verbatim.chat.meetings import thread_id_from_join_url
from verbatim.chat.reads import summary as chat_summary
from verbatim.chat.retention import HoldScope, covering
from verbatim.chat.sealing import chat_key, chat_subject
from verbatim.chat.store import ChatRepository
from verbatim.contracts.exports import ExportRecord, PackagedChat
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.exports import names
from verbatim.exports.recording import append_exported, write_trail
from verbatim.exports.sealed_media import SealMismatch
from verbatim.exports.transcript import VersionLine, chat_json, messages_of, transcript_html, transcript_text
from verbatim.exports.work import ChatSnapshot, PartRecord, PlannedChat
from verbatim.exports.zip64 import SegmentWriter
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.errors import NotFound

PEOPLE_PER_QUERY = 50  # people per bundle query (an OR of ARRAY_CONTAINS: kept short)


@dataclass
class ChatSources:
    """What exporting chats reads: the chat store, the sealed bundles, and a legal hold's scope."""

    repository: ChatRepository
    reader: ChatEvidenceReader
    hold_scope: Callable[[str], HoldScope | None]


def _days(record: RecordingRecord) -> set[str]:
    start = record.facts.started_at
    if start is None:
        return set()
    end = record.facts.ended_at or start
    day = start.astimezone(UTC).date()
    last = max(end.astimezone(UTC).date(), day)
    found: set[str] = set()
    while day <= last and len(found) < 400:
        found.add(day.isoformat())
        day += timedelta(days=1)
    return found


def _people(record: RecordingRecord) -> set[str]:
    found = set()
    observed = record.facts.observed_user
    if observed is not None and observed.id:
        found.add(observed.id.lower())
    for participant in record.facts.participants:
        if participant.identity.id:
            found.add(participant.identity.id.lower())
    return found


def plan_for_recordings(
    chats: ChatSources,
    recordings: Iterable[RecordingRecord],
    join_url: Callable[[RecordingRecord], str | None],
) -> list[PlannedChat]:
    """The meeting chat of each recording and its people's chats on its days."""
    wanted: dict[str, set[str]] = defaultdict(set)  # bundle id -> why
    days_of: dict[str, set[str]] = defaultdict(set)  # person -> days
    meetings: dict[str, str] = {}
    for record in recordings:
        days = _days(record)
        for person in _people(record):
            days_of[person] |= days
        thread = thread_id_from_join_url(join_url(record))
        if thread is not None:
            meetings.setdefault(thread, record.id)
    bundles: dict[str, dict[str, Any]] = {}
    for thread, recording_id in meetings.items():
        for bundle in chats.repository.bundles(thread):
            if not bundle.get("deleted"):
                bundles[bundle["bundleId"]] = bundle
                wanted[bundle["bundleId"]].add(f"meeting chat of recording {recording_id}")
    people = sorted(days_of)
    for first in range(0, len(people), PEOPLE_PER_QUERY):
        for bundle in chats.repository.all_bundles(people[first : first + PEOPLE_PER_QUERY]):
            if bundle.get("deleted"):
                continue
            members = set(bundle.get("members", []))
            present = sorted(p for p in members if str(bundle["day"]) in days_of.get(p, ()))
            if present:
                bundles[bundle["bundleId"]] = bundle
                wanted[bundle["bundleId"]].update(f"member {p} on a recording's day" for p in present)
    return _group(bundles, wanted)


def plan_for_hold(chats: ChatSources, hold_id: str) -> list[PlannedChat]:
    """Every bundle the legal hold covers."""
    scope = chats.hold_scope(hold_id)
    if scope is None:
        return []
    if not scope.custodians:
        return []  # a hold without custodians holds recordings by other rules; chats are held by custodian
    bundles: dict[str, dict[str, Any]] = {}
    wanted: dict[str, set[str]] = defaultdict(set)
    for bundle in chats.repository.all_bundles(sorted(scope.custodians)):
        if not bundle.get("deleted") and covering([scope], bundle):
            bundles[bundle["bundleId"]] = bundle
            wanted[bundle["bundleId"]].add(f"under legal hold {hold_id}")
    return _group(bundles, wanted)


def _group(bundles: dict[str, dict[str, Any]], wanted: dict[str, set[str]]) -> list[PlannedChat]:
    by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bundle in bundles.values():
        by_chat[str(bundle["chatId"])].append(bundle)
    planned = []
    for chat_id in sorted(by_chat):
        ordered = sorted(by_chat[chat_id], key=lambda b: (str(b["day"]), int(b["part"])))
        why = sorted({reason for b in ordered for reason in wanted[b["bundleId"]]})
        planned.append(PlannedChat(chat_id=chat_id, bundle_ids=[str(b["bundleId"]) for b in ordered], why=why[:20]))
    return planned


def attest_chat(
    log: TransparencyLog,
    chats: ChatSources,
    export: ExportRecord,
    position: int,
    planned: PlannedChat,
) -> ChatSnapshot:
    sealed = {b["bundleId"] for b in chats.repository.bundles(planned.chat_id) if not b.get("deleted")}
    gone = [b for b in planned.bundle_ids if b not in sealed]
    if gone:
        raise NotFound(f"chat {planned.chat_id}: bundles {', '.join(gone)} are no longer sealed (deleted since)")
    extra: dict[str, JsonValue] = {"bundles": list(planned.bundle_ids)}
    trail, entries = append_exported(log, chat_subject(planned.chat_id), export, f"chat:{planned.chat_id}", extra)
    snapshot = ChatSnapshot(
        position=position,
        chat_id=planned.chat_id,
        bundle_ids=list(planned.bundle_ids),
        why=list(planned.why),
        chat=chats.repository.get_chat(planned.chat_id),
        trail=[e.index for e in trail],
        exported=[e.index for e in entries],
    )
    return snapshot


def _check(data: bytes, recorded: object, what: str) -> None:
    expected = recorded.get("sha256") if isinstance(recorded, dict) else None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise SealMismatch(f"{what} hashes to {digest}, sealed as {expected}", blob=what)


def package_chat(
    log: TransparencyLog,
    chats: ChatSources,
    writer: SegmentWriter,
    export: ExportRecord,
    snapshot: ChatSnapshot,
    chat_index: int,
    checkpoint_size: int,
) -> PartRecord:
    """Write the chat's entries into its batch's segment (`writer`); its part record says where they are."""
    position = snapshot.position
    start, first_entry = writer.position, len(writer.entries)
    folder = names.chat_folder(chat_index, chat_key(snapshot.chat_id))
    lines: list[VersionLine] = []
    hosted_written: dict[str, str] = {}
    media_bytes = 0
    holds: set[str] = set()
    found = list(chats.reader.bundles(chat_id=snapshot.chat_id, bundle_ids=set(snapshot.bundle_ids), with_proofs=False))
    missing = sorted(set(snapshot.bundle_ids) - {b.bundle_id for b in found})
    if missing:
        raise NotFound(f"chat {snapshot.chat_id}: bundles {', '.join(missing)} are no longer sealed (deleted since)")
    for bundle in found:
        what = f"bundle {bundle.bundle_id} of chat {snapshot.chat_id}"
        if bundle.sealed_entry is None:
            raise SealMismatch(f"{what} has no chat.sealed ledger entry", blob=what)
        details = bundle.sealed_entry.details
        _check(bundle.manifest_bytes, details.get("manifest"), f"the manifest of {what}")
        _check(bundle.messages_bytes, details.get("messages"), f"messages.ndjson of {what}")
        base = f"{folder}/{names.chat_bundle_folder(bundle.manifest.day, bundle.manifest.part)}"
        writer.add_bytes(f"{base}/{names.MANIFEST}", bundle.manifest_bytes)
        writer.add_bytes(f"{base}/{names.CHAT_MESSAGES}", bundle.messages_bytes)
        holds.update(bundle.manifest.legal_holds)
        images: dict[str, list[str]] = defaultdict(list)
        for hosted in bundle.hosted:
            digest = hashlib.sha256(hosted.data).hexdigest()
            if digest != hosted.sha256:
                raise SealMismatch(f"hosted content {hosted.name} of {what} hashes to {digest}", blob=hosted.name)
            path = f"{folder}/{names.chat_hosted_name(hosted.sha256)}"
            if hosted.sha256 not in hosted_written:
                writer.add_bytes(path, hosted.data)
                hosted_written[hosted.sha256] = path
                media_bytes += len(hosted.data)
        for ref in bundle.manifest.hosted_contents:
            if ref.sha256 in hosted_written:
                images[ref.message_id].append(hosted_written[ref.sha256].removeprefix(folder + "/"))
        for number, raw in enumerate(bundle.messages_bytes.splitlines()):
            record = json.loads(raw)
            lines.append(
                VersionLine(
                    bundle=bundle.bundle_id,
                    line=number,
                    record=record,
                    hosted=images.get(str(record["messageId"]), []) if record.get("state") != "deleted" else [],
                )
            )
    trail_entries = write_trail(writer, log, folder, chat_subject(snapshot.chat_id), snapshot, checkpoint_size)
    summary_doc: dict[str, JsonValue] = (
        chat_summary(snapshot.chat).model_dump(mode="json", by_alias=True)
        if snapshot.chat is not None
        else {"chatId": snapshot.chat_id}
    )
    messages = messages_of(lines)
    control = names.control_number(position)
    title = f"{control}: {summary_doc.get('topic') or summary_doc.get('chatType') or 'chat'}"
    summary_doc["bundles"] = list(snapshot.bundle_ids)
    summary_doc["why"] = list(snapshot.why)
    writer.add_bytes(f"{folder}/{names.CHAT_JSON}", chat_json(summary_doc, messages))
    html = writer.add_bytes(f"{folder}/{names.TRANSCRIPT_HTML}", transcript_html(title, summary_doc, messages))
    writer.add_bytes(f"{folder}/{names.TRANSCRIPT_TEXT}", transcript_text(title, summary_doc, messages))
    created = [m.created for m in messages if m.created]
    modified = [str(v[0].record.get("lastModified")) for m in messages for v in m.versions]
    row = PackagedChat(
        chat_id=snapshot.chat_id,
        folder=folder,
        control_number=control,
        chat_type=_text(summary_doc.get("chatType")),
        topic=_text(summary_doc.get("topic")),
        members=_texts(summary_doc.get("members")),
        member_names=_texts(summary_doc.get("memberNames")),
        policy_users=_texts(summary_doc.get("policyUsers")),
        first_message_at=min(created) if created else None,
        last_message_at=max(modified) if modified else None,
        messages=len(messages),
        versions=len(lines),
        bundles=list(snapshot.bundle_ids),
        legal_holds=sorted(holds),
        transcript=f"{folder}/{names.TRANSCRIPT_HTML}",
        transcript_text=f"{folder}/{names.TRANSCRIPT_TEXT}",
        transcript_sha256=html.sha256,
        transcript_bytes=html.size,
        exported_entry=snapshot.exported[-1],
        trail_entries=trail_entries,
        why=list(snapshot.why),
    )
    return PartRecord(
        position=position,
        chat=row,
        entries=writer.entries[first_entry:],
        length=writer.position - start,
        media_bytes=media_bytes,
    )


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def _texts(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
