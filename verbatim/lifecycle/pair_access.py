"""The access copy of a pair: one Opus replay of the union of what its members captured (issue 21).

Each member keeps its own access copy, made from its own evidence: the replay of an instance killed mid-call
stops where it was killed. The pair's access copy is made from the union instead — every stretch of the pair's
attributed coverage (`verbatim.lifecycle.pairs.attribute`) read from the sealed evidence of the member it is
attributed to, laid on one timeline from the union's first instant, silence where neither captured anything —
so gaps in either capture are filled from the other. Nothing is mixed or re-aligned: each stretch is one
member's own samples, placed by its part's wall-clock start (docs/resilience.md: clocks).

It is an access copy, never evidence: the evidence stays each member's sealed FLAC. Its bytes depend only on the
members' sealed evidence and the pair's coverage (the same revision of the pair manifest always gives the same
copy), it is written create-only into each member's folder beside the pair manifest of the same revision, kept
and held as that member's evidence is, and its SHA-256 is in the `paired` ledger entry about each member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from verbatim.contracts.evidence import EvidenceTrack
from verbatim.contracts.lifecycle import AttributedInterval, RecordingRecord
from verbatim.evidence.access_copy import EVIDENCE_TAG, read_samples
from verbatim.evidence.ogg import write_ogg_opus
from verbatim.evidence.opus import DEFAULT_BITRATE, SAMPLE_RATE, encode_chunk, plan_chunks
from verbatim.evidence.sealed import read_sealed_manifest, sealed_parts
from verbatim.platform.blobs import BlobStore

CHUNK_SECONDS = 60  # encoded a minute at a time (memory stays small whatever the length of the call)


@dataclass(frozen=True)
class MemberPart:
    """A sealed part of a member: its mixed evidence track and the wall-clock time of its first sample."""

    track: EvidenceTrack
    starts_at: datetime


@dataclass(frozen=True)
class Stretch:
    """One attributed stretch on the pair's timeline: `samples` samples at `at` (from the union's first
    instant), read from `part`'s evidence from sample `offset` on."""

    at: int
    samples: int
    recording_id: str
    part_number: int
    part: MemberPart
    offset: int


@dataclass(frozen=True)
class PairAccessCopy:
    ogg: bytes
    sha256: str
    duration_seconds: float
    source_sha256: str  # SHA-256 of the stretches' sources, one line each: which evidence, which samples


PartLoader = Callable[[str, int], MemberPart | None]


def member_parts(recordings: BlobStore, record: RecordingRecord) -> dict[int, MemberPart]:
    """A sealed member's parts, from its sealed manifests (each checked against the hash its seal index holds)."""
    seal = record.seal
    started = record.facts.started_at
    if seal is None or started is None:
        return {}
    parts = {}
    for index in sealed_parts(seal):
        manifest, _ = read_sealed_manifest(
            recordings, index.manifest_blob, index.manifest_version_id, index.manifest_sha256
        )
        track = manifest.track()
        parts[index.part] = MemberPart(
            track=track, starts_at=started + timedelta(seconds=index.first_sample / index.sample_rate)
        )
    return parts


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def stretches(coverage: Sequence[AttributedInterval], load: PartLoader) -> list[Stretch]:
    """The coverage as samples on the pair's timeline, each stretch clipped to what its part's evidence holds
    (a member whose sealed parts are gone, or hold fewer samples than their span said, leaves silence)."""
    if not coverage:
        return []
    origin = coverage[0].start
    out: list[Stretch] = []
    for interval in coverage:
        part = load(interval.recording_id, interval.part)
        if part is None:
            continue
        at = _samples((interval.start - origin).total_seconds())
        offset = _samples((interval.start - part.starts_at).total_seconds())
        samples = _samples((interval.end - interval.start).total_seconds())
        if offset < 0:  # the span starts a rounding step before the part's first sample
            at, samples, offset = at - offset, samples + offset, 0
        samples = min(samples, part.track.samples - offset)
        if out:  # adjacent stretches rounded onto the same sample: the later one starts after the earlier
            overlap = out[-1].at + out[-1].samples - at
            if overlap > 0:
                at, offset, samples = at + overlap, offset + overlap, samples - overlap
        if samples > 0:
            out.append(Stretch(at, samples, interval.recording_id, interval.part, part, offset))
    return out


def read_union(recordings: BlobStore, parts: Sequence[Stretch], start: int, end: int) -> npt.NDArray[np.int16]:
    """Samples [start, end) of the pair's timeline: each stretch's own evidence, silence between them."""
    out = np.zeros(max(0, end - start), dtype=np.int16)
    for stretch in parts:
        lo, hi = max(start, stretch.at), min(end, stretch.at + stretch.samples)
        if lo >= hi:
            continue
        first = stretch.offset + lo - stretch.at
        piece = read_samples(recordings, stretch.part.track, first, first + hi - lo)
        out[lo - start : lo - start + len(piece)] = piece[: hi - lo]
    return out


def source_digest(parts: Sequence[Stretch]) -> str:
    lines = [f"{s.at} {s.samples} {s.recording_id} {s.part_number} {s.part.track.sha256} {s.offset}" for s in parts]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def make_pair_access_copy(
    recordings: BlobStore,
    pair_id: str,
    coverage: Sequence[AttributedInterval],
    load: PartLoader,
    *,
    bitrate: int = DEFAULT_BITRATE,
) -> PairAccessCopy | None:
    """The union's Ogg Opus bytes (None when no stretch can be read)."""
    parts = stretches(coverage, load)
    if not parts:
        return None
    total = parts[-1].at + parts[-1].samples
    packets: list[bytes] = []
    pre_skip = 0
    for plan in plan_chunks(total, CHUNK_SECONDS):
        chunk = encode_chunk(plan, read_union(recordings, parts, plan.input_start, plan.input_end), bitrate=bitrate)
        if plan.index == 0:
            pre_skip = chunk.pre_skip
        packets.extend(chunk.packets)
    source = source_digest(parts)
    ogg = write_ogg_opus(
        packets,
        pre_skip=pre_skip,
        input_sample_rate=SAMPLE_RATE,
        total_samples=total,
        serial=int(source[:8], 16),
        comments={"TITLE": f"pair {pair_id}", EVIDENCE_TAG: source, "ENCODER": "verbatim"},
    )
    return PairAccessCopy(
        ogg=ogg, sha256=hashlib.sha256(ogg).hexdigest(), duration_seconds=total / SAMPLE_RATE, source_sha256=source
    )
