"""Paging for list endpoints: opaque continuation tokens, one page of a Cosmos query, and the same contract over
an in-memory list (the fakes' stores).

A token we hand out is URL-safe base64 of whatever the store needs to resume (Cosmos's own continuation, or
an offset for the fakes); a token we did not issue is a 400, never a 500.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from verbatim.platform.errors import InvalidInput

T = TypeVar("T")


def encode_token(value: str | None) -> str | None:
    return base64.urlsafe_b64encode(value.encode()).decode() if value else None


def decode_token(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(value.encode()).decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput("the continuation token is not one we issued") from error


def cosmos_page(
    by_page: Callable[[str | None], Iterator[Iterable[dict[str, Any]]]],
    continuation: str | None,
    convert: Callable[[dict[str, Any]], T],
) -> tuple[list[T], str | None]:
    """One page of a Cosmos query (`query_items(...).by_page`) from our token, and the token of the next one."""
    pager = by_page(decode_token(continuation))
    page = next(pager, None)
    if page is None:
        return [], None
    token = getattr(pager, "continuation_token", None)
    return [convert(item) for item in page], encode_token(token if isinstance(token, str) else None)


def offset_page(found: Sequence[T], continuation: str | None, limit: int) -> tuple[list[T], str | None]:
    """One page of an already filtered and ordered list, resumed by offset (in-memory stores)."""
    raw = decode_token(continuation) or "0"
    if not raw.isdigit():
        raise InvalidInput("the continuation token is not one we issued")
    offset = int(raw)
    page = list(found[offset : offset + limit])
    more = offset + limit < len(found)
    return page, encode_token(str(offset + limit)) if more else None
