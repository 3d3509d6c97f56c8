"""Search terms of a message's text: lower-cased words (Unicode letters and digits), each once, in order of
first appearance, at most ``MAX_TERMS``. Term search matches whole words; substring search (see docs/chat.md)
looks at the lower-cased text itself."""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 500
MAX_TERM_CHARS = 64
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """What search compares: NFKC, lower-cased (case and width folded)."""
    return unicodedata.normalize("NFKC", text).casefold()


def terms(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in _WORD.finditer(normalise(text)):
        word = match.group(0)[:MAX_TERM_CHARS]
        if word not in seen:
            seen[word] = None
            if len(seen) >= MAX_TERMS:
                break
    return list(seen)


def query_terms(query: str) -> list[str]:
    """The terms a query asks for (all must match)."""
    return terms(query)[:20]
