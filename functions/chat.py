"""Chat capture triggers: Graph's chat-message webhook and lifecycle webhook, the ingestion, lifecycle and
back-fill queues, the subscription, back-fill and sealing timers, admin triggers (Recorder.Admin), and the
compliance API's chat reads (Compliance.Officer / Compliance.Auditor)."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import (
    client_address,
    graph_handshake,
    json_response,
    optional_reason,
    parse_json_body,
    problem_responses,
)
from verbatim.chat.reads import READERS
from verbatim.chat.verify import verify_chat
from verbatim.contracts.api import (
    ChatBackfillBody,
    ChatBackfillRun,
    ChatSealRun,
    ChatVerificationView,
    SubscriptionRun,
    VerificationFinding,
)
from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.contracts.chat import BackfillReason, ChatBackfillRequest, ChatMessageCaptured
from verbatim.platform import layout
from verbatim.platform.auth import RECORDER_ADMIN
from verbatim.platform.errors import Conflict, InvalidInput
from verbatim.platform.settings import get_settings
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()

QUEUE_CONNECTION = "AzureWebJobsStorage"


def _enabled() -> bool:
    return get_settings().chat_capture_enabled


def _require_capture() -> None:
    """The admin runs act on chat capture: 409 where it is off (not a 5xx: nothing is broken)."""
    if not _enabled():
        raise Conflict("chat capture is not enabled here (CHAT_CAPTURE_ENABLED)")


# --- Graph's webhooks -----------------------------------------------------------------------------------


@bp.route(route="chat/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
async def chat_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # Async: the checks run in a worker thread and the sends on the event loop, never behind queue triggers.
    handshake = graph_handshake(req)
    if handshake is not None:
        return handshake
    chat = current().chat
    await chat.receiver.accept_async(
        req.get_body(), req.headers.get("content-type"), chat.async_messages_queue(), client_address(req)
    )
    return func.HttpResponse(status_code=202)


@bp.route(route="chat/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
def chat_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    handshake = graph_handshake(req)
    if handshake is not None:
        return handshake
    chat = current().chat
    chat.receiver.accept_lifecycle(
        req.get_body(), req.headers.get("content-type"), chat.lifecycle_queue, client_address(req)
    )
    return func.HttpResponse(status_code=202)


# --- queues ---------------------------------------------------------------------------------------------


@bp.queue_trigger(arg_name="msg", queue_name=layout.CHAT_MESSAGES_QUEUE, connection=QUEUE_CONNECTION)
def ingest_chat_message(msg: func.QueueMessage) -> None:
    outcome = current().chat.ingestor.ingest(ChatMessageCaptured.model_validate_json(msg.get_body()))
    log.info("chat message %s", outcome.action, extra={"chat_message": outcome.message_id, "reason": outcome.reason})


@bp.queue_trigger(arg_name="msg", queue_name=layout.CHAT_LIFECYCLE_QUEUE, connection=QUEUE_CONNECTION)
def chat_lifecycle_event(msg: func.QueueMessage) -> None:
    current().chat.keeper.handle_lifecycle(GraphLifecycleEvent.model_validate_json(msg.get_body()))


@bp.queue_trigger(arg_name="msg", queue_name=layout.CHAT_BACKFILL_QUEUE, connection=QUEUE_CONNECTION)
def chat_backfill(msg: func.QueueMessage) -> None:
    current().chat.backfiller.run(ChatBackfillRequest.model_validate_json(msg.get_body()))


# --- timers ---------------------------------------------------------------------------------------------


def _each_tenant(action: str, reason: BackfillReason | None = None) -> None:
    if not _enabled():
        return
    chat = current().chat
    for tenant in chat.settings.chat_tenant_ids:
        try:
            if action == "ensure":
                chat.keeper.ensure(tenant)
            else:
                assert reason is not None
                chat.backfill_queue.send(
                    ChatBackfillRequest(tenant_id=tenant, reason=reason).model_dump_json(by_alias=True)
                )
        except Exception:
            log.exception("chat %s failed", action, extra={"tenant_id": tenant})


@bp.timer_trigger(arg_name="timer", schedule="0 */30 * * * *", run_on_startup=True)
def ensure_chat_subscriptions(timer: func.TimerRequest) -> None:
    _each_tenant("ensure")


@bp.timer_trigger(arg_name="timer", schedule="0 45 * * * *", run_on_startup=True)
def backfill_chats(timer: func.TimerRequest) -> None:
    # Hourly from the watermark (and at start-up): outages of our own longer than Graph's 4 hours of retries.
    _each_tenant("backfill", "startup" if timer.past_due else "timer")


@bp.timer_trigger(arg_name="timer", schedule="0 */15 * * * *")
def seal_chat_days(timer: func.TimerRequest) -> None:
    if _enabled():
        current().chat.sealer.seal_due()


@bp.timer_trigger(arg_name="timer", schedule="0 20 2 * * *")
def sweep_chat_retention(timer: func.TimerRequest) -> None:
    # After the recordings' sweep (02:00 UTC): chat-day bundles past their retention date that no hold covers.
    if _enabled():
        current().chat.evidence.sweep()


@bp.timer_trigger(arg_name="timer", schedule="0 5,20,35,50 * * * *")
def sync_chat_holds(timer: func.TimerRequest) -> None:
    # Legal holds placed or released since: set or lift the hold on the covered bundles' blobs.
    if _enabled():
        current().chat.evidence.sync_holds()


# --- admin ----------------------------------------------------------------------------------------------


@bp.route(route="v1/admin/chat/subscriptions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_chat_subscriptions(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    _require_capture()
    chat = current().chat
    results = [chat.keeper.ensure(t).__dict__ for t in chat.settings.chat_tenant_ids]
    return json_response(SubscriptionRun.model_validate({"results": results}))


@bp.route(route="v1/admin/chat/backfill", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_chat_backfill(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    _require_capture()
    body = parse_json_body(req, ChatBackfillBody) if req.get_body() else ChatBackfillBody()
    chat = current().chat
    tenants = chat.settings.chat_tenant_ids
    if body.tenant_id is not None and body.tenant_id not in tenants:
        raise InvalidInput(f"tenant {body.tenant_id} is not configured for chat capture")
    results = []
    for tenant in [body.tenant_id] if body.tenant_id else tenants:
        request = ChatBackfillRequest(
            tenant_id=tenant, reason="admin", since=body.since, until=body.until, user_ids=body.user_ids
        )
        result = chat.backfiller.run(request)
        results.append({k: v for k, v in result.__dict__.items() if k != "stored_keys"})
    return json_response(ChatBackfillRun.model_validate({"results": results}))


@bp.route(route="v1/admin/chat/seal", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_chat_seal(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    _require_capture()
    return json_response(ChatSealRun.model_validate({"sealed": [o.__dict__ for o in current().chat.sealer.seal_due()]}))


# --- compliance API -------------------------------------------------------------------------------------


@bp.route(route="v1/chats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_chats(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(current().chat.reader.list(dict(req.params), principal, optional_reason(req)))


@bp.route(route="v1/chats/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_chat(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(current().chat.reader.detail(req.route_params["id"], principal, optional_reason(req)))


@bp.route(route="v1/chats/{id}/verification", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def verify_chat_evidence(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    container = current()
    chat_id = req.route_params["id"]
    container.access.record(principal, "chat.verify", f"chat:{chat_id}", optional_reason(req))
    result = verify_chat(chat_id, container.chat.blobs, container.ledger, container.ledger_anchors)
    return json_response(
        ChatVerificationView(
            chat_id=chat_id,
            ok=result.ok,
            bundles=result.bundles,
            versions=result.versions,
            findings=[VerificationFinding(code=f.code, message=f.message) for f in result.findings],
            notes=result.notes,
        )
    )


@bp.route(route="v1/chat-search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def search_chats(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(current().chat.reader.search(dict(req.params), principal, optional_reason(req)))


@bp.route(route="v1/recordings/{id}/chat", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def recording_chat(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(
        current().chat.recording_chats.for_recording(req.route_params["id"], principal, optional_reason(req))
    )
