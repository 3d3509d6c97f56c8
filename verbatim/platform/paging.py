"""Paging for list endpoints: opaque continuation tokens, one page of a Cosmos query, and the same contract over
an in-memory list (the fakes' stores).

A token we hand out is URL-safe base64 of whatever the store needs to resume (Cosmos's own continuation, or
an offset for the fakes); a token we did not issue is a 400, never a 500.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from azure.cosmos.exceptions import CosmosHttpResponseError

from verbatim.platform.errors import InvalidInput

T = TypeVar("T")


# Every token we issue starts with this, so one we did not issue is refused here, before the store sees it
# (Azure Cosmos DB answers a malformed continuation with 400; its emulator ignores it and starts over).
_ISSUED_MARK = "vb1:"


def encode_token(value: str | None) -> str | None:
    return base64.urlsafe_b64encode(f"{_ISSUED_MARK}{value}".encode()).decode() if value else None


def decode_token(value: str | None) -> str | None:
    if not value:
        return None
    try:
        # validate=True: characters outside the alphabet are an error, not silently dropped (which turned a
        # garbled token into "no token": the first page again).
        decoded = base64.b64decode(value.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput("the continuation token is not one we issued") from error
    if not decoded.startswith(_ISSUED_MARK) or len(decoded) == len(_ISSUED_MARK):
        raise InvalidInput("the continuation token is not one we issued")
    return decoded[len(_ISSUED_MARK) :]


def cosmos_page(
    by_page: Callable[[str | None], Iterator[Iterable[dict[str, Any]]]],
    continuation: str | None,
    convert: Callable[[dict[str, Any]], T],
) -> tuple[list[T], str | None]:
    """One page of a Cosmos query (`query_items(...).by_page`) from our token, and the token of the next one."""
    pager = by_page(decode_token(continuation))
    try:
        page = next(pager, None)
    except CosmosHttpResponseError as error:
        if error.status_code == 400 and continuation:
            raise InvalidInput("the continuation token is not one we issued (or no longer valid)") from error
        raise
    if page is None:
        return [], None
    token = getattr(pager, "continuation_token", None)
    return [convert(item) for item in page], encode_token(token if isinstance(token, str) else None)


_OFFSET = re.compile(r"[0-9]{1,12}")


def offset_page(found: Sequence[T], continuation: str | None, limit: int) -> tuple[list[T], str | None]:
    """One page of an already filtered and ordered list, resumed by offset (in-memory stores)."""
    raw = decode_token(continuation) or "0"
    if not _OFFSET.fullmatch(raw):
        raise InvalidInput("the continuation token is not one we issued")
    offset = int(raw)
    page = list(found[offset : offset + limit])
    more = offset + limit < len(found)
    return page, encode_token(str(offset + limit)) if more else None
