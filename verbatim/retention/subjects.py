"""Data-subject requests (GDPR Art 15 and 17): find every recording, call record and captured chat a person took
part in, and answer an erasure request item by item.

A person is searched by any of object id, UPN and phone number; identities found together in one participant
(an object id with its UPN) are searched too, so a search by UPN also finds calls where only the object id was
recorded. Erasure deletes a recording only where no retention period and no legal hold applies — through the
same deletion path as the sweep, with a certificate — and otherwise refuses with the legal basis. A call record
is erased (reduced to ids, times and type) unless a recording of the call is still kept, whose basis it shares.
Every answer goes to the ledger with the firm's request id, never with the person's identifiers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError
from azure.storage.blob import ContainerClient

from verbatim.chat.retention import ChatEvidence
from verbatim.contracts.callrecords import CallRecord, Party
from verbatim.contracts.lifecycle import DELETION_BEGUN, RecordingRecord
from verbatim.contracts.retention import (
    DataSubject,
    ErasureAnswer,
    ErasureDecision,
    ErasureRequest,
    ErasureResult,
    Officer,
    RetentionClass,
    SubjectCallRecord,
    SubjectChat,
    SubjectRecording,
    SubjectSearchRequest,
    SubjectSearchResult,
)
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.errors import DependencyUnavailable
from verbatim.retention.common import Clock, call_record_subject, instant, recording_subject, utc_now
from verbatim.retention.deletion import RecordingDeleter, check
from verbatim.retention.holds import HoldStore
from verbatim.retention.people import PersonKeys, keys_in_recording, keys_of_subject, phone_digits
from verbatim.retention.recordings import LIVE, RetentionRecordings

log = logging.getLogger(__name__)

ERASURE_ANSWERED = "subject.erasure_answered"
SEARCHED = "subject.searched"
HOLD_BASIS = "GDPR Art 17(3)(e): kept for the establishment, exercise or defence of legal claims"
RETENTION_BASIS = "GDPR Art 17(3)(b): kept to comply with a legal obligation"
MAX_ROUNDS = 3
# What an erased call record keeps: ids, times, type — nothing about who took part.
_KEPT_CALL_FIELDS = (
    "id",
    "tenantId",
    "version",
    "type",
    "modalities",
    "startDateTime",
    "endDateTime",
    "lastModifiedDateTime",
    "durationSeconds",
    "ingestedAt",
    "source",
    "docType",
    "handedOffVersion",
    "schemaVersion",
)


def party_keys(party: Party) -> set[str]:
    keys: set[str] = set()
    if party.id:
        keys.add(f"id:{party.id.lower()}")
        if party.kind == "phone":
            keys.add(f"phone:+{phone_digits(party.id)}")
    if party.user_principal_name:
        keys.add(f"upn:{party.user_principal_name.lower()}")
    return keys


class CallRecordPeople(Protocol):
    def by_person(self, keys: PersonKeys) -> list[dict[str, Any]]: ...

    def erase(self, call_record_id: str, request_id: str, erased_at: str) -> bool:
        """Reduce the stored record to ids, times and type; False when it is gone."""


class CosmosCallRecordPeople:
    """Call records in Cosmos `calls` (the call-record area's documents), read and reduced for data subjects."""

    def __init__(self, container: ContainerProxy, raw_archive: ContainerClient | None = None) -> None:
        self._container = container
        self._archive = raw_archive

    def by_person(self, keys: PersonKeys) -> list[dict[str, Any]]:
        if keys.empty:
            return []
        participant_keys = [f"user:{i}" for i in keys.ids] + [f"phone:{p}" for p in keys.phones]
        participant_keys += [f"{kind}:{i}" for i in keys.ids for kind in ("guest", "application", "acsUser", "phone")]
        sql = (
            "SELECT * FROM c WHERE c.docType = 'callRecord' AND ("
            "EXISTS(SELECT VALUE k FROM k IN c.participantKeys WHERE ARRAY_CONTAINS(@keys, LOWER(k)))"
            " OR EXISTS(SELECT VALUE p FROM p IN c.participants WHERE ARRAY_CONTAINS(@upns, LOWER(p.userPrincipalName))"
            " OR ARRAY_CONTAINS(@ids, LOWER(p.id)))"
            " OR ARRAY_CONTAINS(@ids, LOWER(c.organizer.id))"
            " OR ARRAY_CONTAINS(@upns, LOWER(c.organizer.userPrincipalName)))"
        )
        params: list[dict[str, object]] = [
            {"name": "@keys", "value": sorted({k.lower() for k in participant_keys})},
            {"name": "@upns", "value": keys.upns},
            {"name": "@ids", "value": keys.ids},
        ]
        return list(self._container.query_items(sql, parameters=params, enable_cross_partition_query=True))

    def erase(self, call_record_id: str, request_id: str, erased_at: str) -> bool:
        for _ in range(20):
            docs = list(
                self._container.query_items(
                    "SELECT * FROM c WHERE c.id = @id",
                    parameters=[{"name": "@id", "value": call_record_id}],
                    partition_key=call_record_id,
                )
            )
            if not docs:
                return False
            doc = docs[0]
            reduced = {k: doc[k] for k in _KEPT_CALL_FIELDS if k in doc}
            reduced.update(
                {
                    "participants": [],
                    "participantKeys": [],
                    "organizer": None,
                    "sessions": [],
                    "raw": None,
                    "rawBlob": None,
                    "erasure": {"requestId": request_id, "erasedAt": erased_at},
                }
            )
            try:
                self._container.replace_item(
                    call_record_id, reduced, etag=doc["_etag"], match_condition=MatchConditions.IfNotModified
                )
            except CosmosHttpResponseError as error:
                if error.status_code == 412:
                    continue
                raise
            self._delete_raw(call_record_id)
            return True
        raise DependencyUnavailable(f"call record {call_record_id}: too many concurrent updates")

    def _delete_raw(self, call_record_id: str) -> None:
        """Raw Graph payloads too large for Cosmos live in the runtime account's `callrecords` container."""
        if self._archive is None:
            return
        for blob in self._archive.list_blobs(name_starts_with=f"{call_record_id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                self._archive.delete_blob(blob.name)


class InMemoryCallRecordPeople:
    def __init__(self, documents: dict[str, dict[str, Any]] | None = None) -> None:
        self.documents = documents if documents is not None else {}
        self._lock = threading.Lock()

    def by_person(self, keys: PersonKeys) -> list[dict[str, Any]]:
        wanted = _wanted(keys)
        found = []
        for doc in list(self.documents.values()):
            record = CallRecord.model_validate(doc)
            parties = [*record.participants, *([record.organizer] if record.organizer else [])]
            if any(party_keys(p) & wanted for p in parties):
                found.append(dict(doc))
        return found

    def erase(self, call_record_id: str, request_id: str, erased_at: str) -> bool:
        with self._lock:
            doc = self.documents.get(call_record_id)
            if doc is None:
                return False
            reduced = {k: doc[k] for k in _KEPT_CALL_FIELDS if k in doc}
            reduced.update({"participants": [], "participantKeys": [], "organizer": None, "sessions": []})
            reduced["erasure"] = {"requestId": request_id, "erasedAt": erased_at}
            self.documents[call_record_id] = reduced
            return True


def _wanted(keys: PersonKeys) -> set[str]:
    wanted = {f"id:{i}" for i in keys.ids} | {f"upn:{u}" for u in keys.upns}
    return wanted | {f"phone:+{p.lstrip('+')}" for p in keys.phones}


@dataclass
class _Found:
    keys: set[str]
    recordings: dict[str, RecordingRecord]
    calls: dict[str, dict[str, Any]]


class DataSubjectService:
    def __init__(
        self,
        recordings: RetentionRecordings,
        calls: CallRecordPeople,
        deleter: RecordingDeleter,
        holds: HoldStore,
        classes: Callable[[], Mapping[str, RetentionClass]],
        ledger: LedgerWriter,
        clock: Clock = utc_now,
        chats: ChatEvidence | None = None,
    ) -> None:
        self._chats = chats
        self._recordings = recordings
        self._calls = calls
        self._deleter = deleter
        self._holds = holds
        self._classes = classes
        self._ledger = ledger
        self._clock = clock

    def _find(self, subject: DataSubject) -> _Found:
        """Search, then search again with the identities found alongside (object id <-> UPN) until nothing new."""
        keys = keys_of_subject(subject)
        recordings: dict[str, RecordingRecord] = {}
        calls: dict[str, dict[str, Any]] = {}
        searched: set[str] = set()
        for _ in range(MAX_ROUNDS):
            pending = keys - searched
            if not pending:
                break
            searched |= pending
            query = PersonKeys.of(pending)
            for record in self._recordings.by_person(query, statuses=(*LIVE, "deleting")):
                recordings[record.id] = record
                keys |= _linked_in_recording(record, keys)
            for doc in self._calls.by_person(query):
                calls[str(doc["id"])] = doc
                keys |= _linked_in_call(CallRecord.model_validate(doc), keys)
        return _Found(keys, recordings, calls)

    def search(self, request: SubjectSearchRequest, officer: Officer) -> SubjectSearchResult:
        now = self._clock()
        found = self._find(request.subject)
        recordings = [_subject_recording(r, found.keys) for r in found.recordings.values()]
        calls = [_subject_call(doc, found.keys) for doc in found.calls.values()]
        chats = self._subject_chats(found.keys)
        self._ledger.append(
            SEARCHED,
            f"subject-request:{request.request_id}",
            {
                "request_id": request.request_id,
                "recordings": len(recordings),
                "call_records": len(calls),
                "chats": len(chats),
            },
            actor=officer.subject,
        )
        return SubjectSearchResult(
            request_id=request.request_id,
            searched_at=now,
            identifiers=sorted(found.keys),
            recordings=sorted(recordings, key=lambda r: (r.started_at is None, r.started_at, r.recording_id)),
            call_records=sorted(calls, key=lambda c: (c.start_date_time or "", c.call_record_id)),
            chats=chats,
        )

    def _subject_chats(self, keys: set[str]) -> list[SubjectChat]:
        """Chat is keyed by object id: the ids found (directly or through a UPN in a recording or call record)."""
        if self._chats is None:
            return []
        ids = [key.partition(":")[2] for key in keys if key.startswith("id:")]
        found = [
            SubjectChat(
                chat_id=b["chatId"],
                bundle_id=b["bundleId"],
                day=b["day"],
                versions=int(b.get("versions", 0)),
                retention_class=b.get("retentionClass"),
                retention_until=b.get("retentionUntil"),
                legal_holds=list(b.get("legalHolds", [])),
            )
            for b in self._chats.subject_bundles(ids)
            if not b.get("deleted")
        ]
        unsealed = {v["chatId"] for v in self._chats.unsealed_of(ids)}
        found += [SubjectChat(chat_id=c, sealed=False) for c in sorted(unsealed)]
        return sorted(found, key=lambda c: (c.chat_id, c.day or "", c.bundle_id or ""))

    def erase(self, request: ErasureRequest, officer: Officer) -> ErasureResult:
        found = self._find(request.subject)
        answers = [self._erase_recording(r.id, request.request_id, officer) for r in found.recordings.values()]
        for call_id in sorted(found.calls):
            answers.append(self._erase_call(call_id, request.request_id, officer))
        if self._chats is not None:
            ids = [key.partition(":")[2] for key in found.keys if key.startswith("id:")]
            for chat in self._chats.erase_subject(ids, request.request_id, officer.subject):
                answers.append(
                    ErasureAnswer(
                        item_type="chat_bundle" if "/" not in chat.item_id else "chat_message",
                        item_id=chat.item_id,
                        decision=chat.decision,
                        basis=chat.basis,
                        retained_until=chat.retained_until,
                        legal_holds=chat.legal_holds,
                        ledger_seq=chat.ledger_seq,
                    )
                )
        return ErasureResult(request_id=request.request_id, answered_at=self._clock(), answers=answers)

    def _erase_recording(self, recording_id: str, request_id: str, officer: Officer) -> ErasureAnswer:
        found = self._recordings.read(recording_id)
        if found is None or found.record.status == "deleted":
            return self._answer("recording", recording_id, request_id, officer, "already_erased", "already deleted")
        record = found.record
        if record.status not in ("sealed", "deleting"):
            basis = (
                f"the recording is {record.status}: a recording is answered once it is sealed; a record of a capture "
                "that failed is kept as evidence of the exception (MiFID II Art 76)"
            )
            return self._answer("recording", recording_id, request_id, officer, "refused", basis)
        verdict = check(record, self._classes(), self._holds.find("active"), self._clock())
        if verdict.decision == "held":
            holds = {h.id: h for h in self._holds.find()}
            matters = ", ".join(f"{h} (matter {holds[h].matter_id})" if h in holds else h for h in verdict.holds)
            basis = f"under legal hold {matters}; {HOLD_BASIS}"
            return self._answer(
                "recording",
                recording_id,
                request_id,
                officer,
                "refused",
                basis,
                until=verdict.until,
                holds=verdict.holds,
            )
        if verdict.decision == "retained":
            retention_class = verdict.retention_class
            name = record.seal.retention_class if record.seal else "?"
            legal = retention_class.legal_basis if retention_class else "the retention period sealed with it"
            basis = (
                f"retained until {instant(verdict.until) if verdict.until else '?'} under retention class {name!r}: "
                f"{legal}; {RETENTION_BASIS}"
            )
            return self._answer("recording", recording_id, request_id, officer, "refused", basis, until=verdict.until)
        outcome = self._deleter.delete(
            recording_id, reason="erasure_request", actor=officer.subject, request_id=request_id
        )
        seq = outcome.certificate.seq if outcome.certificate else None
        basis = (
            "no retention period or legal hold applies any more: the media, access copy and manifest were deleted "
            f"and the record reduced to a tombstone (GDPR Art 17(1)); deletion certificate in ledger entry {seq}"
        )
        return self._answer("recording", recording_id, request_id, officer, "erased", basis)

    def _erase_call(self, call_record_id: str, request_id: str, officer: Officer) -> ErasureAnswer:
        kept = [r for r in self._recordings_of_call(call_record_id) if r.status not in DELETION_BEGUN]
        if kept:
            record = kept[0]
            verdict = check(record, self._classes(), self._holds.find("active"), self._clock())
            basis = (
                f"the call record belongs to recording {record.id}, which is kept ({verdict.reason}); "
                f"{HOLD_BASIS if verdict.decision == 'held' else RETENTION_BASIS}"
            )
            return self._answer(
                "call_record",
                call_record_id,
                request_id,
                officer,
                "refused",
                basis,
                until=verdict.until,
                holds=verdict.holds,
            )
        # A newer version published by Graph (within hours of the call) would bring the data back; records older
        # than Graph's 30-day window are never fetched again.
        erased = self._calls.erase(call_record_id, request_id, instant(self._clock()))
        decision: ErasureDecision = "erased" if erased else "already_erased"
        basis = (
            "no recording of the call is kept: participants, organizer, sessions and the raw payload were removed "
            "(GDPR Art 17(1)); ids, times and type remain for the completeness reports"
        )
        return self._answer("call_record", call_record_id, request_id, officer, decision, basis)

    def _recordings_of_call(self, call_record_id: str) -> list[RecordingRecord]:
        return self._recordings.of_call(call_record_id)

    def _answer(
        self,
        item_type: Literal["recording", "call_record"],
        item_id: str,
        request_id: str,
        officer: Officer,
        decision: ErasureDecision,
        basis: str,
        *,
        until: datetime | None = None,
        holds: Iterable[str] = (),
    ) -> ErasureAnswer:
        retained_until = until
        subject = recording_subject(item_id) if item_type == "recording" else call_record_subject(item_id)
        entry = self._ledger.append(
            ERASURE_ANSWERED,
            subject,
            {
                "request_id": request_id,
                "decision": decision,
                "basis": basis,
                "retained_until": instant(retained_until) if retained_until else None,
                "legal_holds": [*holds],
            },
            actor=officer.subject,
        )
        return ErasureAnswer(
            item_type=item_type,
            item_id=item_id,
            decision=decision,
            basis=basis,
            retained_until=retained_until,
            legal_holds=list(holds),
            ledger_seq=entry.seq,
        )


def _linked_in_recording(record: RecordingRecord, keys: set[str]) -> set[str]:
    """The object id / UPN that appear together with one of `keys` in the same participant."""
    linked: set[str] = set()
    facts = record.facts
    identities = [(p.identity.id, p.identity.upn) for p in facts.participants]
    if facts.observed_user is not None:
        identities.append((facts.observed_user.id, facts.observed_user.upn))
    for id_, upn in identities:
        same = {k for k in (f"id:{id_.lower()}" if id_ else None, f"upn:{upn.lower()}" if upn else None) if k}
        if same & keys:
            linked |= same
    return linked


def _linked_in_call(record: CallRecord, keys: set[str]) -> set[str]:
    linked: set[str] = set()
    for party in [*record.participants, *([record.organizer] if record.organizer else [])]:
        same = {k for k in party_keys(party) if not k.startswith("phone:")}
        if same & keys:
            linked |= same
    return linked


def _subject_recording(record: RecordingRecord, keys: set[str]) -> SubjectRecording:
    present = keys_in_recording(record.facts)
    role = "observed_user" if any(present.get(k) == "observed_user" for k in keys) else "participant"
    seal = record.seal
    return SubjectRecording(
        recording_id=record.id,
        call_id=record.facts.call_id,
        call_chain_id=record.facts.call_chain_id,
        status=record.status,
        role=role,
        started_at=record.facts.started_at,
        ended_at=record.facts.ended_at,
        direction=record.facts.direction,
        call_type=record.facts.call_type,
        duration_seconds=seal.duration_seconds if seal else None,
        retention_class=seal.retention_class if seal else None,
        retention_until=seal.retention_until if seal else None,
        legal_holds=list(seal.legal_holds) if seal else [],
    )


def _subject_call(doc: dict[str, Any], keys: set[str]) -> SubjectCallRecord:
    record = CallRecord.model_validate(doc)
    organizer = record.organizer is not None and bool(party_keys(record.organizer) & keys)
    return SubjectCallRecord(
        call_record_id=record.id,
        version=record.version,
        role="organizer" if organizer else "participant",
        type=record.type,
        modalities=list(record.modalities),
        start_date_time=record.start_date_time,
        end_date_time=record.end_date_time,
        erased="erasure" in doc,
    )
