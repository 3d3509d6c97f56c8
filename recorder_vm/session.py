"""The life of one recorded call on this instance: answer, recording status, roster, keepAlive, capture, end.

Runs on the signalling event loop. Media callbacks arrive on the media platform's threads; audio goes
straight into the capture's queue, anything else is handed over to the loop. The recorded user is never
removed from the call, whatever happens here: on a failure the recorder reports `failed` and stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from recorder_vm.calls_api import CallGone, CallsApiError, RecordingStatus
from recorder_vm.capture.generations import Continued, GenerationStore
from recorder_vm.capture.pipeline import CallCapture, CaptureResult
from recorder_vm.media.base import AudioFrame, MediaSession, MediaSessionError, VideoFrame
from recorder_vm.notifications import CALL_STATES, Call, CallUpdate, ResultInfo, RosterUpdate
from recorder_vm.roster import (
    Roster,
    call_type_of,
    direction_of,
    observed_user,
    phone_numbers,
    policy_of,
)
from recorder_vm.video_subscriptions import SpeakerHistory, VideoPlan, plan_video
from verbatim.contracts import recorder as contracts
from verbatim.contracts.recorder import FailureStage, StopReason
from verbatim.evidence.capture import capture_prefix
from verbatim.platform.logging import correlation

if TYPE_CHECKING:
    from recorder_vm.service import Recorder

log = logging.getLogger(__name__)

SessionState = Literal["answering", "answered", "recording", "ending", "ended", "failed"]
STATE_RANK = {"incoming": 0, "establishing": 1, "ringing": 1, "established": 2, "terminating": 3, "terminated": 4}


@dataclass
class Timing:
    received: float  # monotonic time the incoming-call notification arrived
    answered: float | None = None

    @property
    def answer_seconds(self) -> float | None:
        return None if self.answered is None else self.answered - self.received


class _MediaEvents:
    """The `MediaHandler` of one call: audio to the capture queue, the rest onto the event loop."""

    def __init__(self, session: CallSession, loop: asyncio.AbstractEventLoop) -> None:
        self._capture = session.capture
        self._session = session
        self._loop = loop

    def on_audio(self, frame: AudioFrame) -> None:
        self._capture.on_audio(frame)

    def on_dominant_speaker(self, source_id: int | None) -> None:
        self._capture.on_dominant_speaker(source_id)
        if self._session.receives_video:
            self._loop.call_soon_threadsafe(self._session.dominant_speaker_changed, source_id)

    def on_video(self, frame: VideoFrame) -> None:
        self._capture.on_video(frame)

    def on_media_failure(self, reason: str) -> None:
        self._loop.call_soon_threadsafe(self._session.media_failed, reason)

    def on_media_ended(self) -> None:
        self._loop.call_soon_threadsafe(self._session.media_ended)


class CallSession:
    def __init__(self, recorder: Recorder, *, call: Call, call_id: str, tenant_id: str, received: float) -> None:
        self.recorder = recorder
        self.settings = recorder.settings
        self.call_id = call_id
        self.tenant_id = tenant_id
        self.incoming = call
        self.recording_id = str(uuid.uuid4())
        self.created_at = datetime.now(UTC)
        self.timing = Timing(received=received)
        self.state: SessionState = "answering"
        self.platform_state = "incoming"
        self.roster = Roster(delta=self.settings.delta_roster)
        self.generation = 0  # the capture generation being written (one more after each fence)
        self.prefix = capture_prefix(self.recording_id, 0)  # generation 0 (verbatim.evidence.names)
        self._loop = asyncio.get_running_loop()
        self._sequence = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._begin: asyncio.Task[None] | None = None
        self._ending: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._media_end_timer: asyncio.TimerHandle | None = None
        # The capture writes generation 0's names; this store puts each block into the generation that is
        # current, and goes on in the next one when the lifecycle fences it (recorder_vm.capture.generations).
        self.store = GenerationStore(None, self.recording_id, on_continued=self._continued_threadsafe)
        self.capture = CallCapture(
            recording_id=self.recording_id,
            call_id=call_id,
            call_chain_id=call.call_chain_id,
            recorder_instance=self.settings.instance_id,
            prefix=self.prefix,
            engine=recorder.capture_engine,
            store_view=self.store.bind,
            queue_frames=self.settings.frame_queue_frames,
            unmixed=self.settings.unmixed_audio,
            on_failure=self._capture_failed_threadsafe,
            video_queue_units=self.settings.video_queue_units,
        )
        self.media: MediaSession | None = None
        self.result: CaptureResult | None = None
        self.speakers = SpeakerHistory()
        self.video = VideoPlan()

    @property
    def receives_video(self) -> bool:
        return self.settings.video_sockets > 0 or self.settings.screen_share

    @property
    def active(self) -> bool:
        return self.state in ("answering", "answered", "recording", "ending")

    @property
    def capturing(self) -> bool:
        return self.state == "recording"

    def _correlation(self) -> Any:
        return correlation(call_id=self.call_id, recording_id=self.recording_id)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- answering ---

    async def answer(self) -> None:
        """Create the media session and answer, inside the policy-recording window."""
        with self._correlation():
            try:
                self.media = self.recorder.media.create_session(
                    self.call_id,
                    _MediaEvents(self, self._loop),
                    unmixed=self.settings.unmixed_audio,
                    video_sockets=self.settings.video_sockets,
                    vbss=self.settings.screen_share,
                )
            except MediaSessionError as error:
                # Without a media session there is nothing to answer with: decline at once ("busy", so Teams
                # may invite another recorder) rather than let the answer window lapse.
                log.error("no media session; declining the invitation", extra={"reason": str(error)})
                self._answer_failed(f"no media session: {error}")
                await self.recorder.reject(self.tenant_id, self.call_id, "busy")
                return
            try:
                body: dict[str, Any] = {
                    "callbackUri": self.settings.callback_uri,
                    # The answer's modalities as Graph's `call: answer` example lists them (audio, video,
                    # videoBasedScreenSharing), for what this media session can receive.
                    "acceptedModalities": self._modalities(),
                    "mediaConfig": self.media.media_config(),
                    "callOptions": {
                        "@odata.type": "#microsoft.graph.incomingCallOptions",
                        "isDeltaRosterEnabled": self.settings.delta_roster,
                    },
                }
                budget = self.settings.answer_budget_seconds - (time.monotonic() - self.timing.received)
                await asyncio.wait_for(self.recorder.calls.answer(self.tenant_id, self.call_id, body), budget)
            except (CallsApiError, CallGone, TimeoutError) as error:
                reason = "answer timed out" if isinstance(error, TimeoutError) else str(error)
                log.error("answering failed", extra={"reason": reason})
                self._answer_failed(reason)
                return
            except Exception as error:
                # A defect, not a platform answer: still end in a known state, so the call is not held
                # as active (and counted against capacity) forever.
                log.exception("answering failed unexpectedly")
                self._answer_failed(f"{type(error).__name__}: {error}")
                return
            self.timing.answered = time.monotonic()
            if self._ending is not None:
                return
            self.recorder.answer_latencies.append(self.timing.answer_seconds or 0.0)
            if self.state == "answering":
                self.state = "answered"
            log.info("call answered", extra={"answer_ms": round((self.timing.answer_seconds or 0) * 1000, 1)})
            # The call exists from now on: keep it alive for as long as the bot is in it.
            self._keepalive = self._spawn(self._keep_alive())
            if self.platform_state == "established":
                self._start_recording()

    def _modalities(self) -> list[str]:
        modalities = ["audio"]
        if self.media is not None and self.media.video_sockets > 0:
            modalities.append("video")
        if self.media is not None and self.media.vbss_socket:
            modalities.append("videoBasedScreenSharing")
        return modalities

    def _capture_modalities(self) -> list[str]:
        """What this call keeps: the answer's modalities, narrowed by the capture policy of the invitation's
        `policyIdentifier` (the audio always)."""
        wanted = self.settings.capture_for(policy_of(self.incoming).identifier)
        return [m for m in self._modalities() if wanted is None or m in wanted or m == "audio"]

    def _answer_failed(self, reason: str) -> None:
        """The call was not answered: release the media session, persist nothing, report, forget the call."""
        self._close_media()
        self.capture.discard()
        self.state = "failed"
        self._publish_failed("answer", reason, committed=False)
        self.recorder.forget(self)

    # --- signalling updates ---

    def on_update(self, update: CallUpdate | RosterUpdate) -> None:
        with self._correlation():
            if isinstance(update, RosterUpdate):
                self._on_roster(update)
            else:
                self._on_call(update)

    def _on_call(self, update: CallUpdate) -> None:
        call = update.call
        if update.change_type == "deleted" or call.state == "terminated":
            self.platform_state = "terminated"
            if self._ending is not None and self._ending.done():
                # Capture failed earlier and the call went on; now it is over.
                self._release()
                return
            self.end("call_ended", call.result_info)
            return
        state = call.state
        if state is not None and state not in CALL_STATES:
            log.info("call state not understood; acknowledged and ignored", extra={"state": state[:64]})
            return
        if state is None or STATE_RANK.get(state, 0) <= STATE_RANK.get(self.platform_state, 0):
            return  # establishing after established, duplicates, hold and transfer states: nothing new
        self.platform_state = state
        if state == "established" and self.state == "answered":
            self._start_recording()

    def _on_roster(self, update: RosterUpdate) -> None:
        change = self.roster.apply(update.participants, datetime.now(UTC))
        if change.any and self.state == "recording":
            self._subscribe_video()
            self._publish(
                contracts.ParticipantsChanged(
                    **self._envelope(),
                    participants=self.roster.participants,
                    joined=change.joined,
                    left=change.left,
                    roster_sequence_number=self.roster.sequence_number,
                )
            )

    # --- recording ---

    def _start_recording(self) -> None:
        if self._begin is None:
            self._begin = self._spawn(self._begin_recording())

    async def _begin_recording(self) -> None:
        with self._correlation():
            # Answers go first: the recording status, the capture's start and recording.started wait (bounded) while
            # other invitations wait for their answers (Recorder.answers_first).
            await self.recorder.answers_first()
            if self._ending is not None:
                return  # the call ended (or failed) meanwhile: nothing to report as recording
            try:
                await self._recording_status("recording")
                allowed_from = time.time_ns() // 100  # media stamped before the success reply is never kept
            except (CallsApiError, CallGone) as error:
                # Without a successful `recording` status nothing may be persisted.
                self.capture.discard()
                self.state = "failed"
                self._publish_failed("recording_status", str(error), committed=False)
                return
            if self.state != "answered":
                return
            self.state = "recording"
            capture = self._capture_modalities()
            self.capture.keep_video(cameras="video" in capture, screen_share="videoBasedScreenSharing" in capture)
            self.capture.start(allowed_from_ticks=allowed_from)
            self.recorder.capturing_started(self)
            self._subscribe_video()
            observed = observed_user(self.incoming, self.roster)
            participants = self.roster.participants
            self._publish(
                contracts.RecordingStarted(
                    **self._envelope(),
                    call_chain_id=self.incoming.call_chain_id,
                    tenant_id=self.incoming.tenant_id or self.tenant_id,
                    observed_user=observed,
                    participants=participants,
                    direction=direction_of(self.incoming),
                    call_type=call_type_of(self.incoming),
                    phone_numbers=phone_numbers(participants, observed),
                    policy=policy_of(self.incoming),
                    recorder_app_id=self.settings.bot_app_id or "",
                    recorder_version=self.settings.version,
                    modalities=self._modalities(),  # what the answer accepted (audio, video, screen sharing)
                    capture=capture,  # what the capture policy keeps of them
                    started_at=self.capture.started_at or datetime.now(UTC),
                    blob_container=self.settings.captures_container,
                    blob_name=self.capture.blob_name,
                    manifest_blob_name=self.capture.manifest_blob_name,
                    unmixed=self.settings.unmixed_audio,
                    heartbeat_interval_seconds=self.settings.heartbeat_seconds,
                    control_url=self.settings.public_base_url,
                )
            )
            log.info("recording")

    async def _recording_status(self, status: RecordingStatus) -> None:
        await self.recorder.calls.update_recording_status(
            self.tenant_id, self.call_id, status, client_context=self.recording_id
        )

    async def _keep_alive(self) -> None:
        """keepAlive from the answer until the bot leaves the call. Graph ends a call that has had no
        successful keepAlive for 45 minutes (since the previous one or the start of the call), so a failed
        one is retried soon, with back-off, rather than at the next interval."""
        interval = self.settings.keepalive_seconds
        failures = 0
        while True:
            await asyncio.sleep(interval if failures == 0 else min(interval / 30 * 2 ** (failures - 1), interval / 3))
            try:
                await self.recorder.calls.keep_alive(self.tenant_id, self.call_id)
            except CallGone:
                log.warning("keepAlive: the call is gone")
                self._call_gone()
                return
            except CallsApiError as error:
                failures += 1
                log.warning("keepAlive failed; retrying soon", extra={"reason": str(error), "failures": failures})
            else:
                failures = 0

    def _call_gone(self) -> None:
        self.platform_state = "terminated"
        if self._ending is not None and self._ending.done():
            self._release()  # the capture ended earlier; the bot had stayed in the call
        else:
            self.end("call_ended", None)

    # --- video subscriptions ---

    def dominant_speaker_changed(self, source_id: int | None) -> None:
        """On the loop: a new dominant speaker may bring their camera into the sockets."""
        if self.speakers.spoke(source_id) and self.state == "recording":
            self._subscribe_video()

    def _subscribe_video(self) -> None:
        """Make the media session's video subscriptions what the policy says they should be now."""
        media = self.media
        if media is None or not self.receives_video:
            return
        observed = observed_user(self.incoming, self.roster).participant_id
        capture = self._capture_modalities()  # no subscription for what the capture policy does not keep
        plan = plan_video(
            self.roster.participants,
            sockets=media.video_sockets if "video" in capture else 0,
            vbss=media.vbss_socket and "videoBasedScreenSharing" in capture,
            policy_participants={observed} if observed else set(),
            speakers=self.speakers.sources,
            current=self.video.cameras,
            current_screen=self.video.screen,
        )
        try:
            for socket in sorted(set(self.video.cameras) - set(plan.cameras)):
                media.unsubscribe_video(socket)
            for socket, source in plan.cameras.items():
                if self.video.cameras.get(socket) != source:
                    self.capture.name_video_source(source, plan.owners.get(source))
                    media.subscribe_video(socket, source)
            if plan.screen is not None and plan.screen != self.video.screen:
                self.capture.name_video_source(plan.screen, plan.owners.get(plan.screen))
                media.subscribe_vbss(plan.screen)
        except Exception as error:  # the media library refused: audio goes on, the next change tries again
            log.warning("video subscription failed", extra={"reason": f"{type(error).__name__}: {error}"[:300]})
            return
        if plan != self.video:
            log.info(
                "video subscriptions",
                extra={"cameras": {str(k): v for k, v in plan.cameras.items()}, "screen": plan.screen},
            )
        self.video = plan

    # --- media and capture events ---

    def media_failed(self, reason: str) -> None:
        with self._correlation():
            log.error("media stream failed", extra={"reason": reason})
            self._fail("media", reason)

    def media_ended(self) -> None:
        """The stream ended; the terminated notification normally follows. Stop anyway after a grace period."""
        if self._media_end_timer is None and self.active:
            self._media_end_timer = self._loop.call_later(
                self.settings.media_end_grace_seconds, self.end, "media_ended", None
            )

    def _continued_threadsafe(self, continued: Continued) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._continued, continued)

    def _continued(self, continued: Continued) -> None:
        """The lifecycle fenced the capture generation we wrote (it thought us gone); we go on in the next one,
        and say so, so that it seals what follows as a continuation of the recording."""
        with self._correlation():
            self.generation = max(self.generation, continued.generation)
            mixed = self.capture.mixed
            blocks = mixed.blocks if mixed is not None else []
            first = next((b for b in blocks if b.index == continued.first_block), None)
            if first is not None:
                first_sample = first.start_sample
            else:
                first_sample = (blocks[-1].start_sample + blocks[-1].samples) if blocks else 0
            log.warning(
                "recording continues in a new capture generation",
                extra={"generation": continued.generation, "first_block": continued.first_block},
            )
            self._publish(
                contracts.RecordingContinued(
                    **self._envelope(generation=continued.generation),
                    first_block=continued.first_block,
                    first_sample=first_sample,
                    kept_blocks=continued.kept_blocks,
                    reason=f"generation {continued.fenced} was fenced: {continued.reason}"[:1000],
                )
            )

    def _capture_failed_threadsafe(self, stage: FailureStage, reason: str) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._fail, stage, reason)

    def _fail(self, stage: FailureStage, reason: str) -> None:
        if self.state in ("ending", "ended", "failed"):
            return
        self._ending = self._spawn(self._finish(None, None, failure=(stage, reason)))

    # --- ending ---

    def end(self, reason: StopReason, result_info: ResultInfo | None) -> asyncio.Task[None]:
        """Stop capturing and report; idempotent. Returns the task doing it."""
        if self._ending is None:
            self._ending = self._spawn(self._finish(reason, result_info, failure=None))
        return self._ending

    async def _finish(
        self,
        reason: StopReason | None,
        result_info: ResultInfo | None,
        *,
        failure: tuple[FailureStage, str] | None,
    ) -> None:
        with self._correlation():
            if self._media_end_timer is not None:
                self._media_end_timer.cancel()
            if self._begin is not None and not self._begin.done():
                await asyncio.wait([self._begin])
            if self.state != "recording":
                # Nothing was persisted: the recording status failed, or the call ended or failed first.
                self.capture.discard()
                if self.state != "failed":
                    self.state = "failed"
                    stage, why = failure or ("recording_status", "the call ended before recording started")
                    self._publish_failed(stage, why, committed=False)
                if reason is not None or self.platform_state == "terminated":
                    self._release()
                return
            self.state = "ending"
            # The recording ends before Teams is told it has ended (call: updateRecordingStatus): no more media
            # is taken and everything received is written. Committing it follows the report, since it can
            # take a while when storage is the problem.
            await asyncio.to_thread(self.capture.halt)
            if failure is not None:
                await self._report_status("failed")
            result = await asyncio.to_thread(self.capture.stop, drain_seconds=self.settings.stop_drain_seconds)
            self.result = result
            reported = failure is not None
            failure = failure or result.failure
            if failure is not None:
                if not reported:
                    await self._report_status("failed")
                self.state = "failed"
                self._publish_failed(failure[0], failure[1], committed=result.committed)
            else:
                if reason in ("shutdown", "left_call"):
                    await self._report_status("notRecording")
                self.state = "ended"
                self._publish_stopped(reason or "call_ended", result_info, result)
            await self.recorder.capturing_ended(self)
            if reason is not None or self.platform_state == "terminated":
                self._release()
            # else: the call goes on without recording (status `failed`); its media session stays open and
            # keepAlive goes on so the platform sees a healthy leg, until the call ends.
            log.info("capture ended", extra={"state": self.state})

    async def _report_status(self, status: RecordingStatus) -> None:
        if self.platform_state == "terminated":
            return  # nobody to tell
        try:
            await self._recording_status(status)
        except (CallsApiError, CallGone) as error:
            log.warning("recording status not delivered", extra={"status": status, "reason": str(error)})

    def _release(self) -> None:
        """The bot is out of the call: stop keepAlive, close the media session, forget the call."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._close_media()
        self.recorder.forget(self)

    def _close_media(self) -> None:
        if self.media is not None:
            self.media.close()

    # --- events ---

    def _envelope(self, generation: int | None = None) -> dict[str, Any]:
        sequence = self._sequence
        self._sequence += 1
        return {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC),
            "recording_id": self.recording_id,
            "call_id": self.call_id,
            "sequence": sequence,
            "recorder_instance": self.settings.instance_id,
            "generation": self.generation if generation is None else generation,
        }

    def _publish(self, event: contracts.RecorderEventBase) -> None:
        self.recorder.publisher.publish(event)

    def _publish_stopped(self, reason: StopReason, result_info: ResultInfo | None, result: CaptureResult) -> None:
        manifest = result.manifest
        mixed = manifest.track() if manifest is not None else None
        self.generation = max(self.generation, self.store.generation)
        self._publish(
            contracts.RecordingStopped(
                **self._envelope(),
                reason=reason,
                result_info=contracts.ResultInfo(**result_info.model_dump(include={"code", "subcode", "message"}))
                if result_info
                else None,
                ended_at=self.capture.ended_at or datetime.now(UTC),
                blob_container=self.settings.captures_container,
                blob_name=self.store.physical(self.capture.blob_name),
                manifest_blob_name=self.store.manifest_name,
                duration_seconds=mixed.duration_seconds if mixed else 0.0,
                bytes=mixed.bytes if mixed else 0,
                block_count=len(mixed.blocks) if mixed else 0,
                sha256=mixed.sha256 if mixed else "",
                gaps_seconds=sum(gap.samples for gap in mixed.gaps) / 16000 if mixed else 0.0,
                frames_dropped=self.capture.frames_dropped,
                tracks=[
                    contracts.TrackInfo(
                        track=track.track,
                        kind=track.kind,
                        source_id=track.source_id,
                        blob_name=self.store.physical(track.blob_name),
                    )
                    for track in (manifest.tracks if manifest else [])
                ],
                video=[
                    contracts.VideoInfo(
                        track=track.track,
                        kind=track.kind,
                        source_id=track.source_id,
                        blob_name=self.store.physical(track.blob_name),
                    )
                    for track in (manifest.video_tracks if manifest else [])
                ],
            )
        )

    def _publish_failed(self, stage: FailureStage, reason: str, *, committed: bool) -> None:
        mixed = self.capture.mixed
        started = self.capture.persisting
        self.generation = max(self.generation, self.store.generation)
        self._publish(
            contracts.RecordingFailed(
                **self._envelope(),
                stage=stage,
                reason=reason[:1000],
                failed_at=datetime.now(UTC),
                call_chain_id=self.incoming.call_chain_id,
                tenant_id=self.incoming.tenant_id or self.tenant_id,
                observed_user=observed_user(self.incoming, self.roster),
                blob_container=self.settings.captures_container if started else None,
                blob_name=self.store.physical(self.capture.blob_name) if started else None,
                manifest_blob_name=self.store.manifest_name if committed else None,
                committed=committed,
                blocks_staged=mixed.staged_blocks if mixed else 0,
                bytes_staged=mixed.staged_bytes if mixed else 0,
                duration_seconds=(mixed.staged_samples / 16000) if mixed else 0.0,
            )
        )
