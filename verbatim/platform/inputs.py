"""Reading untrusted request values without surprises: numbers that are ASCII digits of a bounded length (Python's
`str.isdigit` says yes to `²` and `٣`, and `int()` refuses more than 4,300 digits with a ValueError), and JSON
whose nesting is checked before it is parsed (the parser recurses, and so does what walks the result).
Every refusal is `InvalidInput`: a 400 with the reason, never a 500.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from verbatim.platform.errors import InvalidInput

_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_JSON_DEPTH = 64


def bounded_int(raw: str | None, name: str, low: int, high: int, default: int | None = None) -> int:
    """`raw` as an integer from `low` to `high` (`default` when empty); `InvalidInput` otherwise."""
    if raw is None or raw == "":
        if default is None:
            raise InvalidInput(f"`{name}` is required")
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidInput(f"`{name}` must be an integer from {low} to {high}")
    return int(raw)


def json_depth_exceeds(text: bytes | str, max_depth: int) -> bool:
    """True when arrays and objects nest deeper than `max_depth` (strings are skipped; no parsing)."""
    data = text.encode() if isinstance(text, str) else text
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def load_json(body: bytes | str, what: str = "the body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON: `InvalidInput` when it is not JSON or nests deeper than `max_depth`."""
    if json_depth_exceeds(body, max_depth):
        raise InvalidInput(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidInput(f"{what} is not valid JSON: {str(error)[:200]}") from error


def forwarded_client(forwarded_for: str | None, trusted_hops: int) -> str | None:
    """The client address an `X-Forwarded-For` header gives, when the proxies in front of us can be trusted.

    Anyone can send the header; each proxy appends the address it saw. So with `trusted_hops` proxies of our
    own in front (Azure's front end is one), the client is the entry that many places from the right — never
    the first, which the client wrote itself. With 0 (the default) the header is not used at all."""
    if trusted_hops < 1 or not forwarded_for:
        return None
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_hops:
        return None
    candidate = entries[-trusted_hops].split("%")[0]
    if candidate.startswith("[") and "]" in candidate:
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":")[0]  # IPv4 with a port
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
