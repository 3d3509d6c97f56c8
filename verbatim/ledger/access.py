"""Recording every read of the compliance API: who, what, when and why.

Each read appends an `accessed` entry to the ledger (tamper-evident: who read which recording, with which
reason) and writes an `access` record to the Cosmos `audit` container (queryable by day). The ledger entry
comes first: a read that cannot be recorded is refused (503). Media players fetch one recording in many
Range requests; those share one ledger entry per (reader, recording, copy, reason, UTC hour) — the
idempotency key — while each request still gets its own audit record with the byte range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from verbatim.contracts.evidence import EntryKind
from verbatim.ledger.writer import LedgerRecord, LedgerWriter
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import InvalidInput
from verbatim.platform.times import utcnow

REASON_HEADER = "X-Access-Reason"
MAX_REASON = 500
MAX_RECORDED_IDS = 1000


def returned(ids: Iterable[str]) -> dict[str, JsonValue]:
    """What a search or list answered, for its access record: the ids (at most `MAX_RECORDED_IDS`, the count
    always), so the record says which recordings, calls or holds the reader saw."""
    every = list(ids)
    return {"results": list(every[:MAX_RECORDED_IDS]), "results_count": len(every)}


def access_reason(value: str | None, *, required: bool) -> str | None:
    """The `X-Access-Reason` header, trimmed; 400 when required and absent, or when unusable."""
    reason = " ".join((value or "").split())
    if not reason:
        if required:
            raise InvalidInput(f"an {REASON_HEADER} header (why you access this recording) is required")
        return None
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"{REASON_HEADER} is longer than {MAX_REASON} characters")
    if any(ord(ch) < 32 for ch in reason):
        raise InvalidInput(f"{REASON_HEADER} contains control characters")
    return reason


@dataclass
class AccessLog:
    ledger: LedgerWriter
    audit: AuditLog
    clock: Callable[[], datetime] = utcnow

    def record(
        self,
        principal: Principal,
        action: str,
        subject: str,
        reason: str | None,
        details: Mapping[str, JsonValue] | None = None,
        *,
        per_hour: bool = False,
        distinct: str = "",
    ) -> LedgerRecord:
        """Append the `accessed` ledger entry and the audit record of one read; returns the ledger entry.
        `per_hour`: one ledger entry per principal, action, subject, reason (and `distinct`, e.g. which video stream
        was watched) and hour; every read still gets its audit record."""
        now = self.clock()
        roles: list[JsonValue] = list(sorted(principal.roles))
        body: dict[str, JsonValue] = {
            "action": action,
            "reason": reason,
            "actor_name": principal.name,
            "roles": roles,
            "tenant": principal.tenant,
            **(details or {}),
        }
        key = None
        if per_hour:
            keyed = f"{action}\n{subject}\n{reason}" + (f"\n{distinct}" if distinct else "")
            digest = hashlib.sha256(keyed.encode()).hexdigest()[:24]
            key = f"accessed:{principal.subject}:{digest}:{now.strftime('%Y%m%dT%H')}"
            body = {k: v for k, v in body.items() if k not in ("range",)}
        entry = self.ledger.append(EntryKind.ACCESSED, subject, body, actor=principal.subject, idempotency_key=key)
        self.audit.record(
            AuditEvent(
                category="access",
                action=action,
                actor=principal.subject,
                actor_name=principal.name,
                target=subject,
                detail={**body, **(details or {}), "ledgerSeq": entry.seq},
                at=now,
            )
        )
        return entry
