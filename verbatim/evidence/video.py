"""Sealing video: finalise a camera or screen-share stream into the recordings container (as audio's tracks are:
commit or check the staged blocks, re-hash every block and the whole object, write the exact bytes once), measure
it from its own timestamps, and make the MP4 replay copy of a recording with video.

The stream is the H.264 the recorder received, each access unit behind a timestamp SEI NAL unit
(`verbatim.evidence.h264`): finalise reads the timestamps to count the units, find when each block and the whole
stream were shown (seconds from sample 0 of the recording's audio), and the spans in which video arrived (a gap of
more than `SPAN_GAP_SECONDS` is a camera turned off or a share stopped). Nothing is repaired: what does not match is
written in `problems` and sealed with the stream.

The MP4 access copy takes the packets of the Opus access copy and every video stream's access units and remuxes them
(no decoding, no encoding) into one MP4 — audio first, then the screen shares, then the cameras — with each access
unit at its own timestamp, so a browser plays the call's audio with its screen share; and, because a browser plays
only an MP4's first video track, one MP4 per stream (the audio with that stream alone) for a player that switches
between the screen share and the cameras.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from datetime import datetime
from fractions import Fraction

import av

from verbatim.contracts.evidence import (
    AccessCopy,
    SealedVideoBlock,
    VideoAccessCopy,
    VideoEvidenceTrack,
    VideoSpan,
    VideoStreamCopy,
)
from verbatim.contracts.recorder import CaptureVideoTrack
from verbatim.evidence import names
from verbatim.evidence.blocks import decode_block_id
from verbatim.evidence.finalise import _commit_or_check_blocks, _download_stored, _write_once
from verbatim.evidence.h264 import StampedUnit, stamped_units
from verbatim.evidence.kinds import ACCESS_COPY, kind_tags
from verbatim.evidence.sealed import chunk_digests
from verbatim.platform.blobs import BlobExists, BlobStore

log = logging.getLogger(__name__)

H264_CONTENT_TYPE = "video/h264"
MP4_CONTENT_TYPE = "video/mp4"
SPAN_GAP_SECONDS = 2.0  # cameras send 15-30 frames a second, screen shares 1.875: a longer silence is "off"
TICKS = 10_000_000
_TICK_BASE = Fraction(1, TICKS)


def ticks_of(when: datetime) -> int:
    """100-ns ticks since the Unix epoch of an aware datetime, exactly."""
    delta = when - datetime(1970, 1, 1, tzinfo=when.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * TICKS + delta.microseconds * 10


def spans(units: list[StampedUnit], origin_ticks: int) -> list[VideoSpan]:
    """Where video arrived, as spans of the recording's timeline."""
    out: list[VideoSpan] = []
    for unit in units:
        at = (unit.ticks - origin_ticks) / TICKS
        if out and at - out[-1].end_seconds <= SPAN_GAP_SECONDS:
            out[-1].end_seconds = at
        else:
            out.append(VideoSpan(start_seconds=at, end_seconds=at))
    return out


def finalise_video_track(
    captures: BlobStore,
    recordings: BlobStore,
    track: CaptureVideoTrack,
    *,
    sealed_name: str,
    capture_name: str,
    origin_ticks: int,
) -> VideoEvidenceTrack:
    """Seal one video stream of a capture; `origin_ticks` is sample 0 of the recording's audio. As for audio
    (`verbatim.evidence.finalise`), the sealed block table is the stored object's own (its committed block list,
    each block hashed from the bytes sealed, its frames and times read from their timestamps), and where the
    capture manifest says otherwise the difference is in `problems`."""
    problems = _commit_or_check_blocks(captures, capture_name, track, H264_CONTENT_TYPE)
    if track.blob_name != capture_name:
        problems.append(f"the capture manifest names {track.blob_name[:200]!r}; it was read from {capture_name}")
    with tempfile.TemporaryFile() as spool:
        stored, whole, block_hashes = _download_stored(captures, capture_name, spool)
        size = spool.tell()
        spool.seek(0)
        data = spool.read()
        spool.seek(0)
        if whole != track.sha256:
            problems.append(f"SHA-256 of the stored object is {whole}, the recorder reported {track.sha256}")
        if size != track.bytes:
            problems.append(f"the stored object has {size} bytes, the recorder reported {track.bytes}")
        version_id = _write_once(recordings, sealed_name, spool, size, whole, H264_CONTENT_TYPE)
    units = stamped_units(data)
    if len(units) != track.units:
        problems.append(f"the stream holds {len(units)} timestamped access units, the recorder reported {track.units}")
    if units and not units[0].key:
        problems.append("the stream does not start with a key frame")
    described = {block.block_id: block for block in track.blocks}
    sealed: list[SealedVideoBlock] = []
    offset = 0
    for position, (block, digest) in enumerate(zip(stored, block_hashes, strict=True)):
        carried = decode_block_id(block.id)
        staged = described.get(block.id)
        if staged is not None and digest != staged.sha256:
            problems.append(
                f"block {staged.index} (bytes {staged.byte_offset}..{staged.byte_offset + staged.size}) hashes to "
                f"{digest}, the recorder staged {staged.sha256}"
            )
        elif staged is None and carried is not None and digest != carried.sha256_hex:
            problems.append(f"block {carried.sequence} hashes to {digest}, its id says {carried.sha256_hex}")
        inside = [unit for unit in units if offset <= unit.offset < offset + block.size]
        sealed.append(
            SealedVideoBlock(
                index=carried.sequence if carried is not None else position,
                block_id=block.id,
                size=block.size,
                sha256=digest,
                byte_offset=offset,
                units=len(inside),
                first_seconds=(inside[0].ticks - origin_ticks) / TICKS if inside else 0.0,
                last_seconds=(inside[-1].ticks - origin_ticks) / TICKS if inside else 0.0,
            )
        )
        offset += block.size
    for problem in problems:
        log.warning("finalise %s: %s", capture_name, problem)
    seconds = [(unit.ticks - origin_ticks) / TICKS for unit in units]
    return VideoEvidenceTrack(
        blob_name=sealed_name,
        version_id=version_id,
        bytes=size,
        sha256=whole,
        chunks=chunk_digests(data),
        track=track.track,
        kind=track.kind,
        source_id=track.source_id,
        participant_id=track.participant_id,
        timestamp_uuid=track.encoding.timestamp_uuid,
        width=track.width,
        height=track.height,
        units=len(units),
        key_units=sum(unit.key for unit in units),
        first_seconds=seconds[0] if seconds else None,
        last_seconds=seconds[-1] if seconds else None,
        spans=spans(units, origin_ticks),
        blocks=sealed,
        problems=problems,
    )


def finalise_video(
    captures: BlobStore,
    recordings: BlobStore,
    tracks: list[CaptureVideoTrack],
    *,
    recording_id: str,
    generation: int,
    part: int,
    origin_ticks: int,
) -> list[VideoEvidenceTrack]:
    """Every video stream of a capture generation into the sealed part (screen shares first, then cameras)."""
    ordered = sorted(tracks, key=lambda t: (t.kind != "screenShare", t.track))
    return [
        finalise_video_track(
            captures,
            recordings,
            track,
            sealed_name=names.sealed_track_name(recording_id, part, track.track),
            capture_name=names.capture_track_name(recording_id, generation, track.track),
            origin_ticks=origin_ticks,
        )
        for track in ordered
    ]


def make_video_access_copy(
    recordings: BlobStore,
    recording_id: str,
    part: int,
    videos: list[VideoEvidenceTrack],
    audio: AccessCopy | None,
    *,
    origin_ticks: int,
) -> VideoAccessCopy | None:
    """Remux the Opus access copy and the sealed video streams into one MP4, and each stream on its own with the
    audio into an MP4 of its own (`streams`), all written once beside the part's evidence (a retry finds the same
    bytes there). None when there is no video to show."""
    shown = [video for video in videos if video.units]
    if not shown:
        return None
    # One MP4 track per stream: a stream continued in a later part (the same `track` name) joins its earlier
    # part's track; screen shares first (the player's default picture), then cameras, each in order of appearance.
    groups: dict[str, list[VideoEvidenceTrack]] = {}
    for video in shown:
        groups.setdefault(video.track, []).append(video)
    ordered = sorted(groups.values(), key=lambda group: group[0].kind != "screenShare")
    body, duration = _mux_to_bytes(recordings, ordered, audio, origin_ticks)
    name = names.video_access_copy_name(recording_id, part)
    version_id, digest = _write_copy(recordings, name, body)
    # Browsers play only the first video track of an MP4 (Chromium's <video> has no track switching for MP4), so
    # each stream also gets a copy of its own, with the call's audio in it: one element, one clock, the picture
    # and the audio cannot drift apart, and switching is loading another copy at the same position.
    streams: list[VideoStreamCopy] = []
    for group in ordered:
        stream_body, stream_duration = _mux_to_bytes(recordings, [group], audio, origin_ticks)
        stream_name = names.video_stream_copy_name(recording_id, part, group[0].track)
        stream_version, stream_digest = _write_copy(recordings, stream_name, stream_body)
        streams.append(
            VideoStreamCopy(
                blob_name=stream_name,
                version_id=stream_version,
                bytes=len(stream_body),
                sha256=stream_digest,
                chunks=chunk_digests(stream_body),
                track=group[0].track,
                kind=group[0].kind,
                source_id=group[0].source_id,
                participant_id=next((video.participant_id for video in group if video.participant_id), None),
                audio_codec="opus" if audio is not None else None,
                duration_seconds=stream_duration,
                source_sha256=[*([audio.sha256] if audio is not None else []), *(video.sha256 for video in group)],
            )
        )
    return VideoAccessCopy(
        blob_name=name,
        version_id=version_id,
        bytes=len(body),
        sha256=digest,
        chunks=chunk_digests(body),  # what a ranged read of the copy is checked against (verbatim.evidence.sealed)
        audio_codec="opus" if audio is not None else None,
        video_tracks=[group[0].track for group in ordered],
        duration_seconds=duration,
        source_sha256=[
            *([audio.sha256] if audio is not None else []),
            *(video.sha256 for group in ordered for video in group),
        ],
        streams=streams,
    )


def _mux_to_bytes(
    recordings: BlobStore, groups: list[list[VideoEvidenceTrack]], audio: AccessCopy | None, origin_ticks: int
) -> tuple[bytes, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "access.mp4")
        duration = _mux(recordings, path, groups, audio, origin_ticks)
        with open(path, "rb") as handle:
            return handle.read(), duration


def _write_copy(recordings: BlobStore, name: str, body: bytes) -> tuple[str | None, str]:
    """Write an MP4 copy once (tagged for the access-copy tiering rule); a retry finds the same bytes there."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        version_id = recordings.write(
            name, body, overwrite=False, content_type=MP4_CONTENT_TYPE, tags=kind_tags(ACCESS_COPY)
        )
    except BlobExists:
        stored = recordings.read_versioned(name)
        if hashlib.sha256(stored.data).hexdigest() != digest:
            raise
        version_id = stored.version_id
    return version_id, digest


def _open(data: bytes, format_name: str) -> av.container.InputContainer:
    container = av.open(io.BytesIO(data), format=format_name)
    assert isinstance(container, av.container.InputContainer)
    return container


def _mux(
    recordings: BlobStore,
    path: str,
    groups: list[list[VideoEvidenceTrack]],
    audio: AccessCopy | None,
    origin_ticks: int,
) -> float:
    """Write the MP4 at `path`, one video track per group (a stream and its continuations, in order); returns
    its duration in seconds."""
    end = 0.0
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as output:
        inputs: list[av.container.InputContainer] = []
        try:
            audio_in = None
            if audio is not None:
                ogg = recordings.read(audio.blob_name, version_id=audio.version_id)
                audio_in = _open(ogg, "ogg")
                inputs.append(audio_in)
                audio_out = output.add_stream_from_template(audio_in.streams.audio[0])
                end = audio.duration_seconds
            tracks = []
            for group in groups:
                sources = []
                for video in group:
                    data = recordings.read(video.blob_name, version_id=video.version_id)
                    source = _open(data, "h264")
                    inputs.append(source)
                    sources.append((source, stamped_units(data)))
                stream = output.add_stream_from_template(sources[0][0].streams.video[0])
                tracks.append((stream, sources))
            if audio_in is not None:
                for packet in audio_in.demux(audio_in.streams.audio[0]):
                    if packet.dts is None:
                        continue
                    packet.stream = audio_out
                    output.mux(packet)
            for stream, sources in tracks:
                last = -1
                for source, units in sources:
                    index = 0
                    for unit_packet in source.demux(source.streams.video[0]):
                        if unit_packet.size == 0 or index >= len(units):
                            continue
                        ticks = units[index].ticks - origin_ticks
                        index += 1
                        if ticks < 0 or ticks <= last:
                            continue  # before the recording's first audio sample, or not after the unit before it
                        last = ticks
                        unit_packet.stream = stream
                        unit_packet.time_base = _TICK_BASE
                        unit_packet.pts = unit_packet.dts = ticks
                        output.mux(unit_packet)
                        end = max(end, ticks / TICKS)
        finally:
            for opened in inputs:
                opened.close()
    return end
