"""Tying a meeting chat to its call: a meeting's chat is the meeting's thread (``19:meeting_…@thread.v2``),
which the meeting's ``joinWebUrl`` carries URL-encoded in its path
(``https://teams.microsoft.com/l/meetup-join/19%3ameeting_…%40thread.v2/0?context=…``, as in Microsoft's
examples) and the call record repeats as ``joinWebUrl``; the chat's ``onlineMeetingInfo.joinWebUrl`` is the same
URL."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_THREAD = re.compile(r"^19:[A-Za-z0-9_.=-]{1,200}@thread\.(v2|skype|tacv2)$")


def thread_id_from_join_url(url: str | None) -> str | None:
    """The thread id in a Teams ``meetup-join`` URL, or None when the URL is not one."""
    if not url:
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) < 3 or parts[0] != "l" or parts[1] != "meetup-join":
        return None
    candidate = unquote(parts[2])
    return candidate if _THREAD.match(candidate) else None
