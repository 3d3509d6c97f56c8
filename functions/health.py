"""GET /api/health: each dependency's status and the app version; 503 when one is down."""

import azure.durable_functions as df
import azure.functions as func

from verbatim.wiring import current
from verbatim.wiring.health import check_health

bp = df.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health(current())
    return func.HttpResponse(
        report.model_dump_json(),
        status_code=200 if report.status == "healthy" else 503,
        mimetype="application/json",
    )
