"""The recorder on one instance: takes invitations (or rejects them when draining or full), routes later
notifications to the call they belong to, reports progress, and drains or shuts down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recorder_vm.calls_api import CallGone, CallsApi, CallsApiError, RejectReason
from recorder_vm.capture.engine import CaptureEngine
from recorder_vm.capture.storage import CaptureFenced, RecordingStore, StorageUnavailable
from recorder_vm.events import EventPublisher
from recorder_vm.media.base import MediaPlatform
from recorder_vm.notifications import CHANGE_TYPES, CallUpdate, OtherUpdate, RosterUpdate, SignallingUpdate
from recorder_vm.platform_auth import PlatformCaller
from recorder_vm.roster import not_policy_recording
from recorder_vm.session import CallSession
from recorder_vm.settings import RecorderSettings
from verbatim.contracts.recorder import CaptureProgress
from verbatim.platform.logging import correlation

log = logging.getLogger(__name__)

ProgressSink = Callable[[CaptureProgress], None]
ENDED_REMEMBERED = 1000  # captures that ended lately, whose state the lifecycle may still ask about
# How often each tenant's Graph token is checked and the warm Graph connections topped up, off the answer's path: a
# token entering its refresh margin (5 min before expiry) is fetched within this, so no answer waits for Entra, and a
# connection Graph or the network closed is replaced well before the pool's 60-s keep-alive would let the others go.
GRAPH_PREPARE_SECONDS = 20.0
PROGRESS_HOLD_SECONDS = 1.0  # how long a heartbeat lets waiting answers go first
# How long an answered call's establishment work (updateRecordingStatus, the capture's start, recording.started) lets
# invitations still waiting for their answers go first. The answer has a deadline — "within 5 seconds for
# policy-based recording" (learn.microsoft.com/graph/api/call-answer) — the recording status has none documented
# (learn.microsoft.com/graph/api/call-updaterecordingstatus: only that no media may be recorded before its success
# reply). Waiting costs the call that much of its first audio (nothing before the status is kept), so the wait is
# short and bounded: a steady stream of invitations delays each call's recording by at most this, never starves it.
ANSWERS_FIRST_SECONDS = 1.0


@dataclass(frozen=True)
class HealthState:
    media: bool
    storage: bool
    draining: bool
    active_calls: int
    tenants: bool = True  # at least one tenant is configured; without one every call is refused

    @property
    def ready(self) -> bool:
        return self.media and self.storage and self.tenants and not self.draining


class Recorder:
    def __init__(
        self,
        settings: RecorderSettings,
        *,
        calls: CallsApi,
        media: MediaPlatform,
        store: RecordingStore,
        publisher: EventPublisher,
        capture_engine: CaptureEngine,
        progress_sink: ProgressSink | None = None,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.media = media
        self.store = store
        self.publisher = publisher
        self.capture_engine = capture_engine  # the workers every call's capture runs on
        self.spill = capture_engine.spill
        self.storage_health = capture_engine.health
        self._progress_sink = progress_sink
        self.sessions: dict[str, CallSession] = {}
        self._ended: OrderedDict[str, dict[str, Any]] = OrderedDict()  # recently ended captures, for the lifecycle
        self._fenced_spill: set[str] = set()
        self._capturing: dict[str, CallSession] = {}
        self._capturing_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.draining = False
        self.drain_reason: str | None = None
        self._accept_until = 0.0  # monotonic time until which a drain still answers invitations
        self.storage_reachable = True
        self.answer_latencies: deque[float] = deque(maxlen=10_000)
        self._answering = 0  # invitations accepted whose answer has not reached Graph (nor failed) yet
        self._answers_sent = asyncio.Event()  # set while no invitation waits for its answer
        self._answers_sent.set()
        self.rejected = 0  # invitations refused as busy (draining, at capacity)
        self.declined = 0  # invitations that were not policy-based recording calls
        self.progress_failures = 0
        self._progress_stop = threading.Event()
        self._progress_thread: threading.Thread | None = None

    # --- life ---

    def start(self) -> None:
        self._progress_thread = threading.Thread(target=self._progress_loop, name="capture-progress", daemon=True)
        self._progress_thread.start()
        self._spawn(self._watch_storage())
        self._spawn(self._keep_graph_ready())

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def answering(self) -> int:
        """Invitations accepted whose answer has not reached Graph (nor failed) yet."""
        return self._answering

    def answers_waiting(self) -> bool:
        """Invitations are waiting for their answers (5-s window): work that can wait — delivering events, writing
        progress — lets them go first (any thread may ask)."""
        return self._answering > 0

    async def answers_first(self) -> None:
        """On the loop, before work for a call already answered: wait while invitations wait for their answers, at
        most `ANSWERS_FIRST_SECONDS` (their 5-s window has a deadline, the work after an answer does not)."""
        if self._answering == 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANSWERS_FIRST_SECONDS):
                await self._answers_sent.wait()

    @property
    def active_calls(self) -> int:
        return sum(1 for session in self.sessions.values() if session.active)

    def settled(self) -> bool:
        """Nothing would be lost with this instance: no call left, every event delivered (the outbox is empty)
        and no block spilled to disk awaiting storage. What a termination notice or scale-in waits for."""
        return self.active_calls == 0 and self.publisher.pending == 0 and self.spill.used_bytes == 0

    def health(self) -> HealthState:
        return HealthState(
            media=self.media.healthy,
            storage=self.storage_reachable,
            draining=self.draining,
            active_calls=self.active_calls,
            tenants=bool(self.settings.tenant_ids),
        )

    # --- signalling ---

    async def handle(self, updates: list[SignallingUpdate], caller: PlatformCaller) -> None:
        """Act on one request's notifications. Returns quickly: answering runs in the background."""
        received = time.monotonic()
        for update in updates:
            if isinstance(update, OtherUpdate):
                if update.change_type not in CHANGE_TYPES:
                    log.info(
                        "change type not understood; acknowledged and ignored",
                        extra={"change_type": update.change_type[:64], "resource_url": update.resource_url[:256]},
                    )
                else:
                    log.debug("notification ignored", extra={"resource_url": update.resource_url})
                continue
            session = self.sessions.get(update.call_id)
            if session is not None:
                session.on_update(update)
            elif (
                isinstance(update, CallUpdate)
                and update.change_type == "created"
                and update.call.state in (None, "incoming")
            ):
                self._incoming(update, caller, received)
            elif isinstance(update, CallUpdate | RosterUpdate):
                with correlation(call_id=update.call_id):
                    log.info("notification for a call this instance does not hold", extra={"kind": update.kind})

    def _incoming(self, update: CallUpdate, caller: PlatformCaller, received: float) -> None:
        tenant = caller.tenant_id or update.call.tenant_id or self.settings.graph_tenant_id or ""
        with correlation(call_id=update.call_id):
            why_not = not_policy_recording(update.call)
            if why_not is not None:
                # Answering would only end in updateRecordingStatus refused (8506): say no at once.
                self.declined += 1
                log.warning("declining: not a policy-based recording invitation", extra={"reason": why_not})
                self._spawn(self.reject(tenant, update.call_id, "forbidden"))
                return
            refused = self.draining and time.monotonic() >= self._accept_until
            if refused or self.active_calls >= self.settings.max_concurrent_calls:
                self.rejected += 1
                reason = "draining" if refused else "at capacity"
                log.warning("rejecting an invitation", extra={"reason": reason, "active_calls": self.active_calls})
                self._spawn(self.reject(tenant, update.call_id, "busy"))
                return
            session = CallSession(self, call=update.call, call_id=update.call_id, tenant_id=tenant, received=received)
            self.sessions[update.call_id] = session
            log.info("incoming call", extra={"recording_id": session.recording_id})
            self._answering += 1
            self._answers_sent.clear()
            self._spawn(self._answer(session))

    async def _answer(self, session: CallSession) -> None:
        try:
            await session.answer()
        finally:
            self._answering -= 1
            if self._answering == 0:
                self._answers_sent.set()

    async def reject(self, tenant_id: str, call_id: str, reason: RejectReason) -> None:
        """Decline an invitation; "busy" lets Teams try another recorder (a paired one, or a second invitation)."""
        try:
            await self.calls.reject(tenant_id, call_id, reason, None)
        except (CallsApiError, CallGone) as error:
            log.warning("reject failed", extra={"reason": str(error)})

    def forget(self, session: CallSession) -> None:
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]

    def capturing_started(self, session: CallSession) -> None:
        with self._capturing_lock:
            self._capturing[session.recording_id] = session

    async def capturing_ended(self, session: CallSession) -> None:
        with self._capturing_lock:
            self._capturing.pop(session.recording_id, None)
        self._ended[session.recording_id] = self._describe(session)
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        # The final state (stopped / failed): a table write, blocking I/O (seconds when storage is slow), so on a
        # worker thread: the signalling loop goes on answering invitations meanwhile.
        await asyncio.to_thread(self._write_progress, session)

    def capture_state(self, recording_id: str) -> dict[str, Any] | None:
        """What this instance knows of a recording's capture: holding it (any state), having ended it lately, or
        nothing (None) — a restarted process holds nothing of what its predecessor captured."""
        for session in list(self.sessions.values()):
            if session.recording_id == recording_id:
                return self._describe(session)
        return self._ended.get(recording_id)

    def _describe(self, session: CallSession) -> dict[str, Any]:
        capture = session.capture
        mixed = capture.mixed
        return {
            "recording_id": session.recording_id,
            "instance": self.settings.instance_id,
            "state": session.state,
            "capture": capture.state,
            "generation": session.generation,
            "blocks_staged": mixed.staged_blocks if mixed else 0,
            "samples": mixed.samples if mixed else 0,  # captured into the mixed track, every generation
            "blocks_spilled": sum(track.spilled for track in capture.tracks),
            "frames_received": capture.frames_received,
            "committed": bool(session.result and session.result.committed),
        }

    # --- operations ---

    def drain(self, reason: str, *, accept_grace: bool = True) -> None:
        """Take no new calls; the calls in progress continue until they end. `/health` fails at once; invitations
        are still answered for `drain_accept_seconds` (the load balancer's time to notice), unless the process is
        stopping (`accept_grace` False)."""
        if not self.draining:
            log.warning("draining", extra={"reason": reason, "active_calls": self.active_calls})
            self._accept_until = time.monotonic() + (self.settings.drain_accept_seconds if accept_grace else 0.0)
        if not accept_grace:
            self._accept_until = 0.0
        self.draining = True
        self.drain_reason = reason

    def resume(self) -> None:
        self.draining = False
        self.drain_reason = None
        log.info("drain cancelled; taking calls again")

    async def shutdown(self, grace_seconds: float) -> None:
        """Graceful stop: no new calls; every capture commits what it has, reports, and the bot leaves."""
        self.drain("shutdown", accept_grace=False)
        sessions = list(self.sessions.values())
        endings = [session.end("shutdown", None) for session in sessions]
        if endings:
            await asyncio.wait(endings, timeout=grace_seconds)
        for session in sessions:
            if session.platform_state != "terminated":
                try:
                    await asyncio.wait_for(self.calls.hang_up(session.tenant_id, session.call_id), 3.0)
                except (CallsApiError, CallGone, TimeoutError) as error:
                    log.info("leaving the call failed", extra={"call_id": session.call_id, "reason": str(error)})
        self._progress_stop.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.to_thread(self.capture_engine.stop)
        await asyncio.to_thread(self.publisher.stop, 5.0)

    async def _keep_graph_ready(self) -> None:
        """Fetch each tenant's Graph token before it nears its expiry and keep the Graph connections warm, so the
        answer of an invitation (5-s budget) never waits for a token request or a TLS handshake. Never while
        invitations wait for their answers (they go first); a failure is logged and tried again at the next pass."""
        delay = GRAPH_PREPARE_SECONDS
        while True:
            await asyncio.sleep(delay)
            if self.answers_waiting():  # they go first: again in a moment
                delay = PROGRESS_HOLD_SECONDS / 2
                continue
            delay = GRAPH_PREPARE_SECONDS
            await self.prepare_graph()

    async def prepare_graph(self) -> None:
        """One pass: each tenant's token, then the Graph connections once — every tenant's requests share them."""
        for tenant in sorted(self.settings.tenant_ids):
            try:
                await self.calls.prepare(tenant)
            except Exception as error:  # only saves time later; the request itself will retry
                log.warning("could not prepare Graph", extra={"error": type(error).__name__})
        try:
            await self.calls.warm()
        except Exception as error:  # as above: a cold connection costs time, not correctness
            log.warning("could not warm the Graph connections", extra={"error": type(error).__name__})

    async def _watch_storage(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.store.check)
                reachable = True
            except StorageUnavailable:
                reachable = False
            if reachable != self.storage_reachable:
                log.warning("recordings storage reachability changed", extra={"reachable": reachable})
            self.storage_reachable = reachable
            await asyncio.sleep(2.0)

    # --- progress (a thread: the table writes are blocking I/O) ---

    def _progress_loop(self) -> None:
        while not self._progress_stop.wait(self.settings.heartbeat_seconds):
            # Answers go first: a heartbeat waits (up to a second, far inside the lifecycle's silence threshold)
            # while invitations are waiting for their answers, rather than write every capture's progress then.
            deadline = time.monotonic() + PROGRESS_HOLD_SECONDS
            while self.answers_waiting() and time.monotonic() < deadline and not self._progress_stop.wait(0.01):
                pass
            with self._capturing_lock:
                sessions = list(self._capturing.values())
            for session in sessions:
                self._write_progress(session)
            self._recover_spill()

    def _write_progress(self, session: CallSession) -> None:
        if self._progress_sink is None:
            return
        progress = session.capture.progress(heartbeat_seconds=self.settings.heartbeat_seconds)
        progress = progress.model_copy(
            update={"blob_container": self.settings.captures_container, "generation": session.generation}
        )
        try:
            self._progress_sink(progress)
        except Exception as error:  # progress is best effort; the capture must not suffer for it
            self.progress_failures += 1
            log.debug("progress not written", extra={"error": type(error).__name__})

    def _recover_spill(self) -> None:
        """Stage blocks left in the disk buffer by captures that are over (or by an earlier process)."""
        with self._capturing_lock:
            live = {track.blob_name for session in self._capturing.values() for track in session.capture.tracks}
        for block in self.spill.all_blocks():
            if block.blob_name in live:
                continue
            if not self.storage_health.may_try():
                return
            block_id, data = block.read()
            try:
                self.store.stage_block(block.blob_name, block_id, data)
            except CaptureFenced as fenced:
                # The lifecycle salvaged that capture while this block waited on disk (the process that captured
                # it is gone, so nobody can continue it): keep it, and say so loudly.
                if block.blob_name not in self._fenced_spill:
                    self._fenced_spill.add(block.blob_name)
                    log.error(
                        "spilled blocks of a fenced capture are kept on disk",
                        extra={"blob": block.blob_name, "reason": fenced.reason},
                    )
                continue
            except StorageUnavailable:
                self.storage_health.failed(block.blob_name)
                return
            self.storage_health.succeeded()
            self.spill.remove(block)
            log.info("recovered a spilled block", extra={"blob": block.blob_name, "sequence": block.sequence})
