"""Canonical JSON: the one byte form of a JSON value that the ledger and manifests hash and sign.

Objects with sorted keys, no insignificant whitespace, UTF-8, strings escaped as Python's `json` does.
Numbers are integers only, within ±2**53: Cosmos DB stores numbers as IEEE doubles, so larger integers
and floats would not survive a round trip bit-exactly, and their text forms differ between languages —
an offline verifier in any language must reproduce these bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonicalizable(ValueError):
    """A value that has no canonical form here (a float, a huge integer, a non-string key...)."""


def canonical_json(value: object) -> bytes:
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_sha256(value: object) -> str:
    return sha256_hex(canonical_json(value))


def format_instant(moment: datetime) -> str:
    """An aware datetime as the fixed-width UTC text used inside hashed content (microseconds, `Z`)."""
    if moment.tzinfo is None:
        raise NotCanonicalizable("a naive datetime has no canonical instant")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check(value: object, path: str) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonicalizable(f"{path}: integer {value} is outside ±2**53")
        return
    if isinstance(value, float):
        raise NotCanonicalizable(f"{path}: floats have no canonical form here; use an integer or a string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonicalizable(f"{path}: object key {key!r} is not a string")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NotCanonicalizable(f"{path}: {type(value).__name__} is not a JSON value")
