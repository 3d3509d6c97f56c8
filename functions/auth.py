"""`authorize(req, *roles)`: the caller of an HTTP trigger as a `Principal`, or 401 / 403.

Use inside a trigger wrapped with `@problem_responses`::

    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)   # any one of the roles
"""

from __future__ import annotations

import azure.functions as func

from verbatim.platform.auth import Principal, bearer_token
from verbatim.wiring import current


def authorize(req: func.HttpRequest, *roles: str) -> Principal:
    """Validate the request's bearer token and require one of `roles` (none given: any valid token)."""
    token = bearer_token(req.headers.get("authorization"))
    return current().token_validator.validate(token).require(*roles)
