"""Call-record ingestion triggers: the notification queue, the lifecycle queue, the subscription,
back-fill and PSTN timers, and their admin HTTP triggers (Recorder.Admin)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, parse_json_body, problem_responses
from verbatim.contracts.api import BackfillRequest, BackfillRun, PstnPullRequest, PstnPullRun, SubscriptionRun
from verbatim.contracts.callrecords import CallRecordNotification, GraphLifecycleEvent
from verbatim.platform import layout
from verbatim.platform.auth import RECORDER_ADMIN
from verbatim.platform.errors import InvalidInput
from verbatim.platform.settings import get_settings
from verbatim.platform.times import parse_datetime, utcnow
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()

QUEUE_CONNECTION = "AzureWebJobsStorage"


@bp.queue_trigger(arg_name="msg", queue_name=layout.CALLRECORD_NOTIFICATIONS_QUEUE, connection=QUEUE_CONNECTION)
def ingest_call_record(msg: func.QueueMessage) -> None:
    message = CallRecordNotification.model_validate_json(msg.get_body())
    current().callrecords.ingestor.ingest(message)


@bp.queue_trigger(arg_name="msg", queue_name=layout.GRAPH_LIFECYCLE_QUEUE, connection=QUEUE_CONNECTION)
def graph_lifecycle_event(msg: func.QueueMessage) -> None:
    event = GraphLifecycleEvent.model_validate_json(msg.get_body())
    current().callrecords.keeper.handle_lifecycle(event)


@bp.timer_trigger(arg_name="timer", schedule="0 */30 * * * *", run_on_startup=True)
def ensure_callrecord_subscriptions(timer: func.TimerRequest) -> None:
    runtime = current().callrecords
    for tenant in runtime.settings.callrecord_tenant_ids:
        # One tenant's failure must not keep the others' subscriptions from being renewed.
        try:
            runtime.keeper.ensure(tenant)
        except Exception:
            log.exception("ensuring the callRecords subscription failed", extra={"tenant_id": tenant})


@bp.timer_trigger(arg_name="timer", schedule="0 15 * * * *")
def backfill_call_records(timer: func.TimerRequest) -> None:
    runtime = current().callrecords
    for tenant in runtime.settings.callrecord_tenant_ids:
        try:
            runtime.backfiller.run(tenant)
        except Exception:
            log.exception("call-record back-fill failed", extra={"tenant_id": tenant})


@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *")
def pull_pstn_reports(timer: func.TimerRequest) -> None:
    runtime = current().callrecords
    end = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=runtime.settings.pstn_report_days)
    for tenant in runtime.settings.callrecord_tenant_ids:
        try:
            runtime.pstn.pull(tenant, start, end)
        except Exception:
            log.exception("PSTN report pull failed", extra={"tenant_id": tenant})


def _instant(value: str) -> datetime | None:
    """An ISO-8601 date (midnight UTC) or date-time."""
    text = value.strip()
    return parse_datetime(f"{text}T00:00:00Z" if len(text) == 10 else text)


def _tenants(requested: str | None) -> list[str]:
    configured = get_settings().callrecord_tenant_ids
    if requested is None:
        return configured
    if requested not in configured:
        raise InvalidInput(f"tenant {requested} is not configured for call records")
    return [requested]


@bp.route(route="v1/admin/pstn/pull", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_pull_pstn(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    body = parse_json_body(req, PstnPullRequest)
    start, end = _instant(body.start), _instant(body.end)
    if start is None or end is None:
        raise InvalidInput("`from` and `to` must be ISO-8601 dates or date-times")
    runtime = current().callrecords
    results = [runtime.pstn.pull(tenant, start, end).__dict__ for tenant in _tenants(body.tenant_id)]
    return json_response(PstnPullRun.model_validate({"results": results}))


@bp.route(route="v1/admin/callrecords/backfill", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_backfill(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    body = parse_json_body(req, BackfillRequest) if req.get_body() else BackfillRequest()
    since = _instant(body.since) if body.since else None
    if body.since and since is None:
        raise InvalidInput("`since` must be an ISO-8601 date-time")
    runtime = current().callrecords
    results = [runtime.backfiller.run(tenant, since).__dict__ for tenant in _tenants(body.tenant_id)]
    return json_response(BackfillRun.model_validate({"results": results}))


@bp.route(route="v1/admin/callrecords/subscriptions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def admin_ensure_subscriptions(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    runtime = current().callrecords
    results = [runtime.keeper.ensure(tenant).__dict__ for tenant in runtime.settings.callrecord_tenant_ids]
    return json_response(SubscriptionRun.model_validate({"results": results}))
