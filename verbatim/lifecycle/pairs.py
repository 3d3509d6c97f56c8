"""Pairs: the recordings of one call leg for one policy user under one policy, made by different recorder
instances because the policy invites the recorder twice (`ConcurrentInvitationCount 2`) or a paired application
(New-CsTeamsComplianceRecordingApplication, New-CsTeamsComplianceRecordingPairedApplication).

Both recordings are evidence in their own right: each is sealed, verified and kept like any other, neither is
discarded. The pair adds what neither says alone: the union of what they cover, with each stretch of it
attributed to the recording (and so the instance) whose evidence holds it. A recording joins its pair by key —
tenant, call chain id, observed user, policy — on every change of its record, so the pair document is the same
whatever order the events arrive in and however often they are retried. Once every member is final the pair
manifest is sealed into each member's folder (written once, WORM, a `paired` ledger entry about each member).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from azure.cosmos import ContainerProxy
from pydantic import JsonValue

from verbatim.contracts.lifecycle import (
    AttributedInterval,
    PairManifest,
    PairManifestMember,
    PairManifestPart,
    PairManifestRef,
    PairMember,
    PairSpan,
    RecordingPair,
    RecordingRecord,
)
from verbatim.evidence import names
from verbatim.evidence.kinds import ACCESS_COPY, kind_tags
from verbatim.evidence.seal import recording_subject
from verbatim.evidence.verify import PAIRED
from verbatim.evidence.worm import WormProtection
from verbatim.ledger.writer import LedgerWriter
from verbatim.lifecycle.pair_access import PairAccessCopy
from verbatim.platform.blobs import BlobExists, BlobStore
from verbatim.platform.documents import VersionedDocuments
from verbatim.platform.errors import Conflict

MANIFEST_CONTENT_TYPE = "application/json"
OGG_CONTENT_TYPE = "audio/ogg"
SEALED = frozenset({"sealed", "deleting", "deleted"})
FINAL = SEALED | {"not_recorded"}
# How far a record has got: a member's entry in the pair never goes back to an earlier state (an older record
# read by a retry, or events folded out of order, leave a newer member as it is).
_RANK = {"capturing": 0, "stopped": 1, "failed": 1, "salvaged": 1, "not_recorded": 2, "sealed": 2}
_RANK.update({"deleting": 3, "deleted": 4})


class PairConflict(Conflict):
    """A pair manifest name already holds other bytes: something wrote where only the pair's seal writes."""

    title = "Pair manifest conflict"


@dataclass(frozen=True)
class PairKey:
    tenant_id: str | None
    call_chain_id: str
    observed_user_id: str
    policy_identifier: str | None

    @property
    def id(self) -> str:
        text = "\n".join(
            [self.tenant_id or "", self.call_chain_id, self.observed_user_id, self.policy_identifier or ""]
        )
        return "pair-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def pair_key(record: RecordingRecord) -> PairKey | None:
    """The pair a recording belongs to; None until its record knows the call chain and the observed user."""
    facts = record.facts
    user = facts.observed_user.id if facts.observed_user is not None else None
    if not facts.call_chain_id or not user:
        return None
    return PairKey(facts.tenant_id, facts.call_chain_id, user, facts.policy_identifier)


def sealed_spans(record: RecordingRecord) -> list[PairSpan]:
    """What a sealed recording covers on the wall clock, from its sealed evidence alone: each sealed part from
    where it starts in the recording for the duration measured by decoding it (never what the recorder said)."""
    if record.status not in SEALED or record.seal is None or record.facts.started_at is None:
        return []
    start = record.facts.started_at
    seal = record.seal
    if not seal.parts:
        interrupted = seal.interrupted or record.status == "salvaged"
        return [
            PairSpan(part=0, start=start, end=start + timedelta(seconds=seal.duration_seconds), interrupted=interrupted)
        ]
    spans = []
    for part in seal.parts:
        begin = start + timedelta(seconds=part.first_sample / part.sample_rate)
        end = begin + timedelta(seconds=part.duration_seconds)
        spans.append(PairSpan(part=part.part, start=begin, end=end, interrupted=part.interrupted))
    return spans


def is_final(record: RecordingRecord) -> bool:
    """Nothing more will be sealed for the recording: final itself, and every continuation too."""
    return record.status in FINAL and all(c.status in ("sealed", "not_recorded") for c in record.continuations)


def member_of(record: RecordingRecord) -> PairMember:
    seal = record.seal
    return PairMember(
        recording_id=record.id,
        recorder_instance=record.facts.recorder_instance,
        call_id=record.facts.call_id,
        status=record.status,
        final=is_final(record),
        started_at=record.facts.started_at,
        spans=sealed_spans(record),
        manifest_blob=seal.manifest_blob if seal else None,
        manifest_sha256=seal.manifest_sha256 if seal else None,
        ledger_seq=seal.ledger_seq if seal else None,
    )


def _progress(member: PairMember) -> tuple[int, bool, int]:
    return _RANK.get(member.status, 0), member.final, len(member.spans)


def join(pair: RecordingPair | None, key: PairKey, member: PairMember) -> RecordingPair:
    """The pair with `member` in it (pure). A member already further along is kept as it is."""
    if pair is None:
        pair = RecordingPair(
            id=key.id,
            tenant_id=key.tenant_id,
            call_chain_id=key.call_chain_id,
            observed_user_id=key.observed_user_id,
            policy_identifier=key.policy_identifier,
        )
    members = {m.recording_id: m for m in pair.members}
    known = members.get(member.recording_id)
    if known is not None and _progress(known) > _progress(member):
        return pair
    members[member.recording_id] = member
    ordered = [members[rid] for rid in sorted(members)]
    coverage = attribute(ordered)
    sealed = [m for m in ordered if m.spans]
    return pair.model_copy(
        update={
            "members": ordered,
            "coverage": coverage,
            "union_seconds": round(sum(i.seconds for i in coverage), 3),
            "complete": len(ordered) >= 2 and len(sealed) >= 2 and all(m.final for m in ordered),
        }
    )


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime
    recording_id: str
    instance: str
    part: int


def attribute(members: Sequence[PairMember]) -> list[AttributedInterval]:
    """The union of the members' sealed spans, cut where coverage changes, each stretch given to one member:
    the one that already held the stretch before it while it still covers (so the record switches source only
    where it must), else the one whose span reaches furthest (ties: the earlier start, then the recording id)."""
    spans = [
        _Span(s.start, s.end, m.recording_id, m.recorder_instance, s.part)
        for m in members
        for s in m.spans
        if s.end > s.start
    ]
    edges = sorted({t for s in spans for t in (s.start, s.end)})
    chosen: list[tuple[datetime, datetime, _Span]] = []
    for begin, end in itertools.pairwise(edges):
        covering = [s for s in spans if s.start <= begin and s.end >= end]
        if not covering:
            continue
        previous = chosen[-1][2] if chosen and chosen[-1][1] == begin else None
        pick = (
            previous
            if previous in covering
            else min(covering, key=lambda s: (-s.end.timestamp(), s.start, s.recording_id, s.part))
        )
        if previous is pick:
            chosen[-1] = (chosen[-1][0], end, pick)
        else:
            chosen.append((begin, end, pick))
    return [
        AttributedInterval(
            start=begin,
            end=end,
            seconds=round((end - begin).total_seconds(), 3),
            recording_id=span.recording_id,
            recorder_instance=span.instance,
            part=span.part,
        )
        for begin, end, span in chosen
    ]


# --- the store ------------------------------------------------------------------------------------------------


class PairStore(Protocol):
    def get(self, pair_id: str) -> RecordingPair | None: ...

    def update(self, pair_id: str, change: Callable[[RecordingPair | None], RecordingPair]) -> RecordingPair:
        """Read, change and write back with optimistic concurrency (retried on conflict)."""


class CosmosPairStore(VersionedDocuments[RecordingPair]):
    """Pair documents in the Cosmos `recording_pairs` container (partition key /id)."""

    def __init__(self, container: ContainerProxy, max_attempts: int = 20) -> None:
        super().__init__(container, RecordingPair, "pair", max_attempts)


class InMemoryPairStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, tuple[str, RecordingPair]] = {}
        self.writes = 0

    def get(self, pair_id: str) -> RecordingPair | None:
        entry = self.docs.get(pair_id)
        return entry[1] if entry else None

    def update(self, pair_id: str, change: Callable[[RecordingPair | None], RecordingPair]) -> RecordingPair:
        with self._lock:
            current = self.get(pair_id)
            updated = change(current)
            if current is not None and updated == current:
                return current
            self.docs[pair_id] = (uuid.uuid4().hex, updated)
            self.writes += 1
            return updated


def record_in_pair(store: PairStore, record: RecordingRecord) -> RecordingPair | None:
    """Put the recording's current state into its pair (None while its record cannot name the pair yet)."""
    key = pair_key(record)
    if key is None:
        return None
    member = member_of(record)
    return store.update(key.id, lambda pair: join(pair, key, member))


# --- the pair manifest ------------------------------------------------------------------------------------------


def build_pair_manifest(pair: RecordingPair) -> PairManifest:
    """The pair manifest of a complete pair: only sealed members, only what their seals say."""
    members = []
    for m in pair.members:
        if not m.spans or m.manifest_blob is None or m.manifest_sha256 is None or m.ledger_seq is None:
            continue
        members.append(
            PairManifestMember(
                recording_id=m.recording_id,
                recorder_instance=m.recorder_instance,
                call_id=m.call_id,
                manifest_blob=m.manifest_blob,
                manifest_sha256=m.manifest_sha256,
                ledger_seq=m.ledger_seq,
                parts=[
                    PairManifestPart(part=s.part, start=s.start, end=s.end, interrupted=s.interrupted) for s in m.spans
                ],
            )
        )
    sealed_at = max(s.end for m in pair.members for s in m.spans)
    return PairManifest(
        pair_id=pair.id,
        tenant_id=pair.tenant_id,
        call_chain_id=pair.call_chain_id,
        observed_user_id=pair.observed_user_id,
        policy_identifier=pair.policy_identifier,
        members=members,
        coverage=pair.coverage,
        union_seconds=pair.union_seconds,
        sealed_at=sealed_at,
    )


@dataclass(frozen=True)
class MemberRetention:
    """How long a member's evidence is kept and which holds apply: its pair manifest is kept the same."""

    until: datetime
    legal_holds: tuple[str, ...] = ()


def seal_pair_manifest(
    pair: RecordingPair,
    recordings: BlobStore,
    ledger: LedgerWriter,
    worm: WormProtection,
    retention: Callable[[str], MemberRetention | None],
    access_copy: PairAccessCopy | None = None,
) -> list[PairManifestRef]:
    """Write the pair manifest — and the access copy of the pair's union, when there is one — into each sealed
    member's folder (create-only: a retry finds its own bytes), protect them as that member's evidence is
    protected, and append a `paired` entry about that member naming both. The same pair state always gives the
    same bytes, so concurrent or repeated calls converge on one revision."""
    manifest = build_pair_manifest(pair)
    body = manifest.model_dump_json(indent=2).encode()
    digest = hashlib.sha256(body).hexdigest()
    refs = []
    for member in manifest.members:
        name = names.pair_manifest_name(member.recording_id, digest[:16])
        _write_once(recordings, name, body, digest, MANIFEST_CONTENT_TYPE, pair.id)
        copy_name = None
        if access_copy is not None:
            copy_name = names.pair_access_copy_name(member.recording_id, digest[:16])
            _write_once(recordings, copy_name, access_copy.ogg, access_copy.sha256, OGG_CONTENT_TYPE, pair.id)
        kept = retention(member.recording_id)
        if kept is not None:
            for protected in (name, copy_name):
                if protected is None:
                    continue
                worm.protect_until(protected, kept.until)
                if kept.legal_holds:
                    worm.set_legal_hold(protected, True)
        details: dict[str, JsonValue] = {
            "pair_id": pair.id,
            "manifest": {"blob": name, "bytes": len(body), "sha256": digest},
            "members": [m.recording_id for m in manifest.members],
            "union_ms": round(manifest.union_seconds * 1000),
        }
        if access_copy is not None and copy_name is not None:
            details["access_copy"] = {
                "blob": copy_name,
                "bytes": len(access_copy.ogg),
                "sha256": access_copy.sha256,
                "source_sha256": access_copy.source_sha256,
            }
        entry = ledger.append(
            PAIRED,
            recording_subject(member.recording_id),
            details,
            idempotency_key=f"paired:{member.recording_id}:{digest[:32]}",
        )
        refs.append(
            PairManifestRef(
                recording_id=member.recording_id,
                blob_name=name,
                sha256=digest,
                ledger_seq=entry.seq,
                access_copy_blob=copy_name,
                access_copy_sha256=access_copy.sha256 if access_copy is not None else None,
            )
        )
    return refs


def _write_once(recordings: BlobStore, name: str, data: bytes, digest: str, content_type: str, pair_id: str) -> None:
    tags = kind_tags(ACCESS_COPY) if content_type == OGG_CONTENT_TYPE else None
    try:
        recordings.write(name, data, overwrite=False, content_type=content_type, tags=tags)
    except BlobExists:
        if hashlib.sha256(recordings.read(name)).hexdigest() != digest:
            raise PairConflict(f"{name} holds other bytes than pair {pair_id}'s") from None


def revision_of(pair: RecordingPair) -> str:
    """What a pair manifest of this state would hash to (its bytes depend on the pair's state alone)."""
    return hashlib.sha256(build_pair_manifest(pair).model_dump_json(indent=2).encode()).hexdigest()
