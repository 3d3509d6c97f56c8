"""Domain errors. Each carries the HTTP status it maps to; `functions/http.py` turns them into
`application/problem+json` in one place, so a trigger never decides a status code itself."""

from __future__ import annotations


class VerbatimError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 500
    title = "Internal error"
    # Seconds after which the same request may succeed (sent as `Retry-After`), when the error is a wait.
    retry_after: int | None = None

    def __init__(self, detail: str, **extensions: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInput(VerbatimError):
    status = 400
    title = "Invalid input"


class Unauthenticated(VerbatimError):
    status = 401
    title = "Authentication required"


class Forbidden(VerbatimError):
    status = 403
    title = "Forbidden"


class NotFound(VerbatimError):
    status = 404
    title = "Not found"


class Conflict(VerbatimError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(VerbatimError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(VerbatimError):
    status = 415
    title = "Unsupported media type"


class RetentionViolation(VerbatimError):
    """Deleting or shortening the retention of evidence before its time, or while a hold applies."""

    status = 409
    title = "Refused by retention or legal hold"


class DependencyUnavailable(VerbatimError):
    """A store or service we depend on failed; the caller should retry (Graph retries a 5xx webhook)."""

    status = 503
    title = "Dependency unavailable"
