"""GET /api/health: healthy or not, to anyone (load balancers, `verbatim doctor`); each dependency's status,
the app version and the evidence store's WORM lock to a caller with one of the API's app roles. 503 when a
dependency is down."""

import azure.durable_functions as df
import azure.functions as func

from functions.http import problem_responses
from verbatim.platform.auth import APP_ROLES, bearer_token
from verbatim.wiring import current
from verbatim.wiring.health import check_health, health_status

bp = df.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def health(req: func.HttpRequest) -> func.HttpResponse:
    container = current()
    report = check_health(container)
    status = 200 if report.status == "healthy" else 503
    authorization = req.headers.get("authorization")
    if authorization:  # a bad token is a 401, not a quiet fall-back to the anonymous answer
        container.token_validator.validate(bearer_token(authorization)).require(*APP_ROLES)
        return func.HttpResponse(report.model_dump_json(), status_code=status, mimetype="application/json")
    return func.HttpResponse(health_status(report).model_dump_json(), status_code=status, mimetype="application/json")
