"""What every Graph change-notification webhook answers the same way, whatever the resource.

Graph validates a notification URL by POSTing `?validationToken=<token>` and expects the URL-decoded token
back as text/plain within 10 seconds (webhooks.md, "Notification endpoint validation").
"""

from __future__ import annotations

from verbatim.platform.errors import InvalidInput

MAX_VALIDATION_TOKEN = 4096


def validation_response(token: str | None) -> str | None:
    """The body answering Graph's validation handshake: the URL-decoded token, or None if this is not one."""
    if token is None:
        return None
    if len(token) > MAX_VALIDATION_TOKEN:
        raise InvalidInput("validationToken is too long")
    return token
