"""POST /api/graph/notifications and /api/graph/lifecycle: Graph's webhooks for callRecords.

Each answers the validation handshake, or verifies the batch and enqueues it (202). Never calls Graph.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.http import client_address, graph_handshake, problem_responses
from verbatim.wiring import current

bp = df.Blueprint()


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    # Async on purpose: it runs on the event loop, never behind queue triggers holding the worker's
    # threads, so Graph gets its answer well inside 3 s even while ingestion is busy.
    handshake = graph_handshake(req)
    if handshake is not None:
        return handshake
    runtime = current().callrecords
    await runtime.receiver.accept_async(
        req.get_body(), req.headers.get("content-type"), runtime.async_webhook_queue(), client_address(req)
    )
    return func.HttpResponse(status_code=202)


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@problem_responses
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    handshake = graph_handshake(req)
    if handshake is not None:
        return handshake
    runtime = current().callrecords
    runtime.receiver.accept_lifecycle(
        req.get_body(), req.headers.get("content-type"), runtime.lifecycle_queue, client_address(req)
    )
    return func.HttpResponse(status_code=202)
