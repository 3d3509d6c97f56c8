"""POST /api/graph/notifications and /api/graph/lifecycle: Graph's webhooks for callRecords.

Each answers the validation handshake, or verifies the batch and enqueues it (202). Never calls Graph.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.http import problem_responses
from verbatim.callrecords.webhook import validation_response
from verbatim.platform.inputs import forwarded_client
from verbatim.platform.settings import get_settings
from verbatim.wiring import current

bp = df.Blueprint()


def _handshake(req: func.HttpRequest) -> func.HttpResponse | None:
    # func.HttpRequest.params holds the URL-decoded query values, as Graph requires the echo to be.
    token = validation_response(req.params.get("validationToken"))
    if token is None:
        return None
    return func.HttpResponse(
        token, status_code=200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"}
    )


def _source_ip(req: func.HttpRequest) -> str | None:
    # Only as far as our own proxies vouch for it (TRUSTED_FORWARDED_HOPS); a client can write the header itself.
    return forwarded_client(req.headers.get("x-forwarded-for"), get_settings().trusted_forwarded_hops)


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # Async on purpose: it runs on the event loop, never behind queue triggers holding the worker's
    # threads, so Graph gets its answer well inside 3 s even while ingestion is busy.
    handshake = _handshake(req)
    if handshake is not None:
        return handshake
    runtime = current().callrecords
    await runtime.receiver.accept_async(
        req.get_body(), req.headers.get("content-type"), runtime.async_webhook_queue(), _source_ip(req)
    )
    return func.HttpResponse(status_code=202)


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    handshake = _handshake(req)
    if handshake is not None:
        return handshake
    runtime = current().callrecords
    runtime.receiver.accept_lifecycle(
        req.get_body(), req.headers.get("content-type"), runtime.lifecycle_queue, _source_ip(req)
    )
    return func.HttpResponse(status_code=202)
