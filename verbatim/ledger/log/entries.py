"""Log entries (no I/O): the bytes a leaf holds and the typed view of them.

A v2 entry is the canonical JSON (`verbatim.ledger.canonical`) of {schema_version: 2, kind, subject, details,
actor, idempotency_key, at}; a leaf migrated from a v1 chain holds the canonical JSON of the whole stored v1
entry (schema_version 1, with its chain, seq and hashes). Verifiers hash the bytes as stored, never a
re-encoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import JsonValue, ValidationError

from verbatim.contracts.evidence import LedgerEntry
from verbatim.contracts.ledger import LogEntry
from verbatim.ledger.canonical import NotCanonicalizable, canonical_json, format_instant
from verbatim.ledger.merkle import leaf_hash
from verbatim.ledger.tiles import MAX_ENTRY_BYTES

ENTRY_SCHEMA_VERSION = 2
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class InvalidEntry(ValueError):
    """An entry the log cannot hold: a bad kind or subject, details with no canonical form, too large."""


def encode_entry(
    kind: str,
    subject: str,
    details: Mapping[str, JsonValue] | None,
    *,
    at: datetime,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> bytes:
    """The leaf bytes of a new entry; raises InvalidEntry for anything the log would not accept."""
    if not _KIND.match(kind) or len(kind) > 64:
        raise InvalidEntry(f"entry kind {kind[:80]!r} is not a dotted lowercase name of at most 64 characters")
    if not subject or len(subject) > 512:
        raise InvalidEntry("an entry's subject is 1 to 512 characters")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 256:
        raise InvalidEntry("an idempotency key is 1 to 256 characters")
    try:
        data = canonical_json(
            {
                "schema_version": ENTRY_SCHEMA_VERSION,
                "kind": kind,
                "subject": subject,
                "details": dict(details or {}),
                "actor": actor,
                "idempotency_key": idempotency_key,
                "at": format_instant(at),
            }
        )
    except NotCanonicalizable as error:
        raise InvalidEntry(f"entry details: {error}") from None
    if len(data) > MAX_ENTRY_BYTES:
        raise InvalidEntry(f"the entry is {len(data)} bytes encoded; the log holds at most {MAX_ENTRY_BYTES}")
    return data


def decode_entry(index: int, data: bytes) -> LogEntry:
    """The typed view of the leaf at `index` (a v2 entry or a migrated v1 entry); InvalidEntry if neither."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidEntry(f"entry {index} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidEntry(f"entry {index} is not a JSON object")
    try:
        if value.get("schema_version") == 1:
            v1 = LedgerEntry.model_validate(value)
            return LogEntry(
                index=index,
                leaf_hash=leaf_hash(data).hex(),
                kind=v1.kind,
                subject=v1.subject,
                details=v1.details,
                actor=v1.actor,
                idempotency_key=v1.idempotency_key,
                at=v1.at,
                entry_schema_version=1,
                v1=v1,
            )
        if value.get("schema_version") != ENTRY_SCHEMA_VERSION:
            raise InvalidEntry(f"entry {index} has schema_version {value.get('schema_version')!r}")
        return LogEntry(
            index=index,
            leaf_hash=leaf_hash(data).hex(),
            entry_schema_version=2,
            **{k: value.get(k) for k in ("kind", "subject", "details", "actor", "idempotency_key", "at")},
        )
    except ValidationError as error:
        raise InvalidEntry(f"entry {index}: {error.errors()[0]['msg']}") from None


def v1_leaf(entry: LedgerEntry) -> bytes:
    """The leaf bytes of a migrated v1 entry: the canonical JSON of the whole stored entry."""
    return canonical_json(entry.model_dump(mode="json"))
