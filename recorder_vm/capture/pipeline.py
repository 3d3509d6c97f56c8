"""One call's capture: the media callback appends frames to the call's queue and returns; a worker of the
process's `CaptureEngine` drains the queue with all its other calls' every tick, encodes and stages blocks;
stopping commits the block lists and writes the capture manifest.

The queue is a `deque` bounded by a length check: one producer (the platform's event thread for this
socket) and one consumer (the call's worker), whose `append`/`popleft` are atomic in CPython, so the callback
takes no lock and never waits. Everything else about the call runs on its worker's event loop; `halt` and
`stop` are the blocking entry points other threads use.

Nothing from before `updateRecordingStatus(recording)` succeeded is kept: until `start()` frames are not
even queued, and `start()` names the moment of the success reply, before which a frame's timestamp must not
fall ("You may NOT ... persist media content ... without first calling the updateRecordingStatus API ...
and receiving a success reply", Graph v1.0, call: updateRecordingStatus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from recorder_vm.capture.engine import CaptureEngine, CaptureWorker
from recorder_vm.capture.mixer import SlotMixer
from recorder_vm.capture.staging import BlobStager
from recorder_vm.capture.storage import AsyncRecordingStore, CaptureFenced, StorageUnavailable
from recorder_vm.capture.track import CommitPoint, TrackWriter
from recorder_vm.capture.video import VideoTrackWriter
from recorder_vm.media.base import MIXED_SOURCE, AudioFrame, VideoFrame
from verbatim.contracts.recorder import (
    CaptureManifest,
    CaptureProgress,
    CaptureState,
    DominantSpeakerChange,
    FailureStage,
    VideoKind,
)
from verbatim.evidence.capture import MIXED_TRACK, manifest_blob_name, track_blob_name
from verbatim.evidence.names import video_track

log = logging.getLogger(__name__)

FailureCallback = Callable[[FailureStage, str], None]
T = TypeVar("T")
# Dominant-speaker changes kept per capture: a change every 2 s for 10 hours is 18,000 (~0.8 MB of manifest).
MAX_DOMINANT_SPEAKER_CHANGES = 20_000


@dataclass(frozen=True)
class CaptureResult:
    manifest: CaptureManifest | None
    manifest_blob_name: str
    committed: bool
    failure: tuple[FailureStage, str] | None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.committed


class CallCapture:
    def __init__(
        self,
        *,
        recording_id: str,
        call_id: str,
        call_chain_id: str | None,
        recorder_instance: str,
        prefix: str,
        engine: CaptureEngine,
        queue_frames: int,
        unmixed: bool,
        on_failure: FailureCallback,
        clock: Callable[[], float] = time.monotonic,
        store_view: Callable[[AsyncRecordingStore], AsyncRecordingStore] | None = None,
        video_queue_units: int = 2000,
    ) -> None:
        """`store_view`: the call's own view of its worker's store (the session's capture generations: where
        each block may go now that the lifecycle may have fenced the generation it wrote)."""
        self.recording_id = recording_id
        self.call_id = call_id
        self.call_chain_id = call_chain_id
        self.recorder_instance = recorder_instance
        self.prefix = prefix
        self.blob_name = track_blob_name(prefix)
        self.manifest_blob_name = manifest_blob_name(prefix)
        self._engine = engine
        self._block_seconds = engine.block_seconds
        self._unmixed = unmixed
        self._on_failure = on_failure
        self._clock = clock
        self._store_view = store_view
        self._queue: deque[AudioFrame] = deque()
        self._queue_frames = queue_frames
        self._accepting = True
        self._allowed_from: int | None = None  # ticks of the recording status' success reply, once started
        self._worker: CaptureWorker | None = None
        self._started = False
        self._tracks: dict[int, TrackWriter] = {}
        self._mixer = SlotMixer()
        self._mixer_used = False
        self._mixed_seen = False
        self._halted = False
        self._origin: int | None = None
        self._failure: tuple[FailureStage, str] | None = None
        self.state: CaptureState = "capturing"
        self.frames_received = 0
        self.frames_dropped = 0
        self.frames_before_recording = 0  # received before recording was allowed: never persisted
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.dominant_speaker: int | None = None
        # The platform's dominant-speaker changes (repeats collapsed, at most MAX_DOMINANT_SPEAKER_CHANGES), each on
        # the audio frames' timeline: the timestamp of the last audio frame received before it.
        self.dominant_speakers: list[DominantSpeakerChange] = []
        self.dominant_speakers_dropped = 0
        self._last_audio_ticks: int | None = None
        # Video (cameras, screen share): its own queue, so audio's path is untouched; one writer per stream.
        self._video_queue: deque[VideoFrame] = deque()
        self._video_queue_units = video_queue_units
        self._videos: dict[tuple[str, int], VideoTrackWriter] = {}
        self._video_owners: dict[int, str | None] = {}
        self._kept_sockets: frozenset[str] = frozenset({"video", "vbss"})
        self.video_units_received = 0
        self.video_units_dropped = 0

    # --- the media callback (platform thread): copy into the queue and return ---

    def on_audio(self, frame: AudioFrame) -> None:
        if not self._accepting:
            return
        self._last_audio_ticks = frame.timestamp_ticks
        allowed_from = self._allowed_from
        if allowed_from is None or frame.timestamp_ticks < allowed_from:
            self.frames_before_recording += 1
            return
        self.frames_received += 1
        if len(self._queue) < self._queue_frames:
            self._queue.append(frame)
        else:
            self.frames_dropped += 1

    def on_video(self, frame: VideoFrame) -> None:
        """A video access unit (platform thread): queued as it is, like audio, once recording is allowed."""
        if not self._accepting or frame.socket not in self._kept_sockets:
            return
        allowed_from = self._allowed_from
        if allowed_from is None or frame.timestamp_ticks < allowed_from:
            return
        self.video_units_received += 1
        if len(self._video_queue) < self._video_queue_units:
            self._video_queue.append(frame)
        else:
            self.video_units_dropped += 1

    def on_dominant_speaker(self, source_id: int | None) -> None:
        """The platform named a new dominant speaker (platform thread; `None`: nobody). The event carries no time of
        its own, so it is placed at the last audio frame received (wall-clock ticks before any): the timeline the
        mixed track's samples are on. A repeat of the current speaker is not a change; past the bound, changes are
        counted, not kept."""
        previous, self.dominant_speaker = self.dominant_speaker, source_id
        if not self._accepting or source_id == previous:
            return
        changes = self.dominant_speakers
        if len(changes) >= MAX_DOMINANT_SPEAKER_CHANGES:
            self.dominant_speakers_dropped += 1
            return
        ticks = self._last_audio_ticks if self._last_audio_ticks is not None else time.time_ns() // 100
        changes.append(DominantSpeakerChange(ticks=ticks, source_id=source_id))

    def keep_video(self, *, cameras: bool, screen_share: bool) -> None:
        """Which sockets' units the capture policy keeps. A 1:1 call's video arrives without a subscription, so
        not subscribing is not enough: what the policy does not ask for is never queued."""
        self._kept_sockets = frozenset({*(["video"] if cameras else []), *(["vbss"] if screen_share else [])})

    def name_video_source(self, source_id: int, participant_id: str | None) -> None:
        """Whose stream `source_id` is (from the roster when it was subscribed)."""
        self._video_owners[source_id] = participant_id

    # --- control (signalling side) ---

    def start(self, *, allowed_from_ticks: int) -> None:
        """Recording is allowed from `allowed_from_ticks` (100-ns ticks since the Unix epoch: when the
        success reply arrived): persist frames stamped at or after it."""
        if not self._started:
            self._allowed_from = allowed_from_ticks
            self._started = True
            self._worker = self._engine.attach(self)

    def discard(self) -> None:
        """Recording was never allowed (or is over before it began): persist nothing."""
        self._accepting = False
        self._queue.clear()

    @property
    def persisting(self) -> bool:
        """Whether recording was allowed and frames have been (or are being) persisted."""
        return self._started

    @property
    def failure(self) -> tuple[FailureStage, str] | None:
        return self._failure

    def halt(self) -> None:
        """End the recording: accept no more media, and encode every frame already received (full blocks are
        staged). Blocking; call it off the event loop. Committing is `stop`'s job."""
        self._accepting = False
        if self._worker is not None and not self._halted:
            self._worker.run(self._halt())
        if self.ended_at is None:
            self.ended_at = datetime.now(UTC)

    @property
    def halted(self) -> bool:
        """Whether the recording has ended (`halt` returned): nothing received is left unwritten."""
        return self.ended_at is not None

    def stop(self, *, drain_seconds: float) -> CaptureResult:
        """Finish: halt, stage the last blocks, retry spilled ones for up to `drain_seconds`, commit and write
        the capture manifest. Blocking; call it off the event loop."""
        self.halt()
        if self._worker is None:  # never started: an empty record
            self.discard()
            self._worker = self._engine.attach(self)
        return self._worker.run(self._stop(self._worker, drain_seconds))

    # --- on the worker's loop ---

    def service(self, now: float) -> None:
        """One tick: take the frames queued since the last one, cut blocks that are due, retry waiting ones."""
        if self._halted:  # detached while its worker's pass let the loop run: `_stop` owns the tracks now
            return
        if self._failure is not None:
            self._queue.clear()
            self._video_queue.clear()
            return
        try:
            self._drain()
            for track in list(self._tracks.values()):
                if track.due(now):
                    track.cut()
                track.stager.kick()
            if self._video_queue or self._videos:
                self._drain_video()
                for video in list(self._videos.values()):
                    if video.due(now):
                        video.cut()
                    video.stager.kick()
            self._update_state()
        except Exception as error:
            log.exception("capture worker failed", extra={"recording_id": self.recording_id})
            self._fail("capture", f"{type(error).__name__}: {error}")

    async def _halt(self) -> None:
        if self._failure is None:
            try:
                self._drain()
                self._drain_video()
            except Exception as error:
                log.exception("capture worker failed", extra={"recording_id": self.recording_id})
                self._fail("capture", f"{type(error).__name__}: {error}")
        self._queue.clear()
        self._video_queue.clear()
        self._halted = True
        assert self._worker is not None
        self._worker.detach(self)

    async def _stop(self, worker: CaptureWorker, drain_seconds: float) -> CaptureResult:
        if not self._halted:
            await self._halt()
        clock = self._clock
        deadline = clock() + drain_seconds
        committed = False
        points: dict[int, CommitPoint] = {}
        video_points: dict[tuple[str, int], CommitPoint] = {}
        try:
            if self._failure is None:
                self._finish_tracks()
                for video in list(self._videos.values()):
                    video.finish()
            # Stage every block already cut before committing, after a failure too (a full disk buffer leaves its
            # blocks intact): a block staged after the manifest is written would never be in the evidence.
            for track in list(self._tracks.values()):
                await track.stager.settle(deadline, clock)
            for video in list(self._videos.values()):
                await video.stager.settle(deadline, clock)
            # After a failure, commit only what is known to be staged, so it is playable now. Blocks that could
            # still be staged (storage down past the deadline) mean no commit and no manifest: they stay in the disk
            # buffer, the recovery stages them, and the lifecycle salvages what was staged (a manifest written now
            # would stop short of them). Blocks that can never be staged (a stager broken) are left out.
            prefix_only = self._failure is not None
            for source, track in list(self._tracks.items()):
                if not track.stager.settled and not track.stager.broken:
                    waiting = track.stager.waiting
                    raise StorageUnavailable(f"{waiting} blocks of {track.blob_name} are still in the local buffer")
                point = track.commit_point(staged_prefix=prefix_only)
                ids = [block.block_id for block in track.blocks[: point.blocks]]
                store = self._store(worker)
                await self._retry(partial(store.commit_blocks, track.blob_name, ids, self._metadata(track)), deadline)
                points[source] = point
            for key, video in list(self._videos.items()):
                if not video.stager.settled and not video.stager.broken:
                    waiting = video.stager.waiting
                    raise StorageUnavailable(f"{waiting} blocks of {video.blob_name} are still in the local buffer")
                point = video.commit_point(staged_prefix=prefix_only)
                ids = [block.block_id for block in video.blocks[: point.blocks]]
                store = self._store(worker)
                await self._retry(partial(store.commit_blocks, video.blob_name, ids, self._metadata(video)), deadline)
                video_points[key] = point
            committed = True
        except StorageUnavailable as error:
            self._fail("storage", f"could not commit the recording: {error}")
        except CaptureFenced as fenced:
            # Only a store without generations lets this through (a call's store goes on in the next one): what
            # the lifecycle salvaged is the record; the blocks it did not take are in the disk buffer.
            self._fail("storage", f"could not commit the recording: capture fenced by the lifecycle: {fenced}")
        manifest = self._manifest(
            points if committed else None,
            complete=committed and not self._failure,
            video_points=video_points if committed else None,
        )
        if committed:
            store = self._store(worker)
            try:
                await self._retry(partial(store.write_manifest, self.manifest_blob_name, manifest), deadline)
            except (StorageUnavailable, CaptureFenced) as error:
                self._fail("storage", f"could not write the capture manifest: {error}")
                committed = False
        for track in list(self._tracks.values()):
            track.close()  # now, not when the garbage collector gets to this capture's reference cycles
        self.state = "failed" if self._failure else "stopped"
        return CaptureResult(manifest, self.manifest_blob_name, committed, self._failure)

    def _drain(self) -> None:
        frames = self._queue
        count = len(frames)
        if not count:
            return
        batch = [frames.popleft() for _ in range(count)]
        if self._origin is None:
            first = batch[0]
            self._origin = first.timestamp_ticks
            self.started_at = datetime.fromtimestamp(first.timestamp_ticks / 10_000_000, UTC)
        if not self._unmixed and not self._mixer_used and not any(frame.source_id for frame in batch):
            self._mixed_seen = True
            self._track(MIXED_SOURCE).add_frames(batch)
            return
        self._route(batch)

    def _route(self, batch: list[AudioFrame]) -> None:
        """Frames of several sources: speakers' tracks (unmixed audio) and the mix, each as one batch."""
        by_source: dict[int, list[AudioFrame]] = {}
        mixed: list[AudioFrame] = []
        for frame in batch:
            if self._unmixed:
                # Unmixed audio only: the record is the sum of the speakers (source 0 = a slot of silence).
                if frame.source_id != MIXED_SOURCE:
                    by_source.setdefault(frame.source_id, []).append(frame)
                self._mix(frame, mixed)
            elif frame.source_id == MIXED_SOURCE:
                self._mixed_seen = True
                mixed.append(frame)
            elif not self._mixed_seen:
                self._mix(frame, mixed)
        for source, frames in by_source.items():
            self._track(source).add_frames(frames)
        if mixed:
            self._track(MIXED_SOURCE).add_frames(mixed)

    def _drain_video(self) -> None:
        """Video units queued since the last tick, to their streams' writers, each stream's as one batch."""
        units = self._video_queue
        count = len(units)
        if not count:
            return
        batches: dict[tuple[str, int], list[VideoFrame]] = {}
        for _ in range(count):
            frame = units.popleft()
            batches.setdefault((frame.socket, frame.source_id), []).append(frame)
        for key, frames in batches.items():
            self._video(*key).add(frames)

    def _video(self, socket: str, source: int) -> VideoTrackWriter:
        writer = self._videos.get((socket, source))
        if writer is None:
            kind: VideoKind = "screenShare" if socket == "vbss" else "camera"
            name = video_track(kind, source)
            writer = VideoTrackWriter(
                track=name,
                kind=kind,
                source_id=source,
                participant_id=self._video_owners.get(source),
                blob_name=track_blob_name(self.prefix, name),
                stager=self._stager,
                block_seconds=self._block_seconds,
                clock=self._clock,
            )
            self._videos[(socket, source)] = writer
        return writer

    def _mix(self, frame: AudioFrame, into: list[AudioFrame]) -> None:
        self._mixer_used = True
        done = self._mixer.add(frame)
        if done is not None:
            into.append(done)

    def _track(self, source: int) -> TrackWriter:
        track = self._tracks.get(source)
        if track is None:
            name = MIXED_TRACK if source == MIXED_SOURCE else f"source-{source}"
            track = TrackWriter(
                track=name,
                kind="mixed" if source == MIXED_SOURCE else "unmixed",
                source_id=None if source == MIXED_SOURCE else source,
                blob_name=track_blob_name(self.prefix, name),
                origin_ticks=self._origin if self._origin is not None else time.time_ns() // 100,
                stager=self._stager,
                block_seconds=self._block_seconds,
                clock=self._clock,
            )
            self._tracks[source] = track
        return track

    def _store(self, worker: CaptureWorker) -> AsyncRecordingStore:
        store = worker.store
        assert store is not None, "the worker is not running"
        return self._store_view(store) if self._store_view is not None else store

    def _stager(self, blob_name: str, track: TrackWriter | VideoTrackWriter) -> BlobStager:
        worker = self._worker
        assert worker is not None
        return worker.stager(
            blob_name, track.staged, lambda reason: self._fail("storage", reason), store=self._store(worker)
        )

    def _finish_tracks(self) -> None:
        mixed: list[AudioFrame] = []
        done = self._mixer.flush()
        if done is not None:
            mixed.append(done)
        self._track(MIXED_SOURCE).add_frames(mixed)  # the record exists even when no audio ever arrived
        for track in list(self._tracks.values()):
            track.finish()

    async def _retry(self, action: Callable[[], Awaitable[T]], deadline: float) -> T:
        """Run a storage request, again after a pause while the deadline allows (a busy or restarting account)."""
        pause = 0.2
        while True:
            try:
                return await action()
            except StorageUnavailable:
                if self._clock() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _update_state(self) -> None:
        if self._failure is None:
            spilling = any(track.spilled for track in self._tracks.values()) or any(
                video.spilled for video in self._videos.values()
            )
            self.state = "spilling" if spilling else "capturing"

    def _fail(self, stage: FailureStage, reason: str) -> None:
        self._accepting = False
        if self._failure is not None:
            return
        self._failure = (stage, reason)
        self.state = "failed"
        log.error("capture failed", extra={"recording_id": self.recording_id, "stage": stage, "reason": reason})
        self._on_failure(stage, reason)

    def _metadata(self, track: TrackWriter | VideoTrackWriter) -> dict[str, str]:
        return {
            "recording_id": self.recording_id,
            "call_id": self.call_id,
            "track": track.track,
            "recorder_instance": self.recorder_instance,
        }

    # --- what it has done ---

    @property
    def mixed(self) -> TrackWriter | None:
        return self._tracks.get(MIXED_SOURCE)

    @property
    def tracks(self) -> list[TrackWriter]:
        return list(self._tracks.values())

    @property
    def videos(self) -> list[VideoTrackWriter]:
        return list(self._videos.values())

    def _manifest(
        self,
        committed: dict[int, CommitPoint] | None,
        *,
        complete: bool,
        video_points: dict[tuple[str, int], CommitPoint] | None = None,
    ) -> CaptureManifest:
        tracks = [
            track.manifest(None if committed is None else committed.get(source))
            for source, track in sorted(self._tracks.items())
        ]
        videos = [
            video.manifest(None if video_points is None else video_points.get(key))
            for key, video in sorted(self._videos.items())
        ]
        return CaptureManifest(
            recording_id=self.recording_id,
            call_id=self.call_id,
            call_chain_id=self.call_chain_id,
            recorder_instance=self.recorder_instance,
            started_at=self.started_at,
            ended_at=self.ended_at,
            written_at=datetime.now(UTC),
            complete=complete,
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            tracks=tracks,
            video_tracks=videos,
            dominant_speakers=list(self.dominant_speakers),
            dominant_speakers_dropped=self.dominant_speakers_dropped,
        )

    def progress(self, *, heartbeat_seconds: float) -> CaptureProgress:
        mixed = self.mixed
        tracks = list(self._tracks.values())
        return CaptureProgress(
            recording_id=self.recording_id,
            call_id=self.call_id,
            recorder_instance=self.recorder_instance,
            state=self.state,
            updated_at=datetime.now(UTC),
            started_at=self.started_at,
            blob_container="",  # filled in by the progress writer, which knows the container
            blob_name=self.blob_name,
            blocks_staged=mixed.staged_blocks if mixed else 0,
            bytes_staged=mixed.staged_bytes if mixed else 0,
            seconds_staged=(mixed.staged_samples / 16000) if mixed else 0.0,
            blocks_spilled=sum(track.spilled for track in tracks),
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            heartbeat_interval_seconds=heartbeat_seconds,
        )
