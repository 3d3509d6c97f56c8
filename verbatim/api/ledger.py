"""The ledger v2 part of the compliance API: pages of entries (by subject, paged; or by index range), the
latest and any signed checkpoint, one entry, its inclusion proof (C2SP tlog-proof or JSON), consistency
proofs and the tiles themselves. Compliance.Auditor only; every read is recorded like the rest of /api/v1
(tiles and checkpoints, which mirroring auditors read by the hundred, once per principal and hour)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pydantic import JsonValue

from verbatim.contracts.ledger import LogConsistencyProof, LogEntry, LogInclusionProof, LogPage
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.auth import COMPLIANCE_AUDITOR, Principal
from verbatim.platform.errors import InvalidInput, NotFound

_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_PAGE = 200
MAX_INDEX = (1 << 63) - 1
TLOG_PROOF_MEDIA_TYPE = "application/x-tlog-proof"


class AccessRecorder(Protocol):
    def record(
        self,
        principal: Principal,
        action: str,
        subject: str,
        reason: str | None,
        details: Mapping[str, JsonValue] | None = None,
        *,
        per_hour: bool = False,
    ) -> object: ...


def _number(params: Mapping[str, str], name: str, *, low: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_INDEX:  # ASCII digits only: "²".isdigit() is True
        raise InvalidInput(f"`{name}` must be a whole number between {low} and {MAX_INDEX}")
    value = int(raw)
    if value < low:
        raise InvalidInput(f"`{name}` must be at least {low}")
    return value


@dataclass
class LedgerApi:
    log: TransparencyLog
    access: AccessRecorder

    def _read(self, principal: Principal, action: str, reason: str | None, detail: dict[str, JsonValue]) -> None:
        principal.require(COMPLIANCE_AUDITOR)
        self.access.record(principal, action, f"ledger:{self.log.origin}", reason, detail)

    def page(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> LogPage:
        """`subject` (+ `after`, `limit`): that subject's entries, paged; else `from`..`to` (indexes, at most
        200; default the newest). The latest checkpoint comes from one lookup, not a scan."""
        subject = (params.get("subject") or "").strip()
        if len(subject) > 512:
            raise InvalidInput("`subject` is at most 512 characters")
        limit = _number(params, "limit", low=1) or 100
        if limit > MAX_PAGE:
            raise InvalidInput(f"`limit` is at most {MAX_PAGE}")
        progress = self.log.store.read_progress()
        entries: list[LogEntry]
        next_after = None
        if subject:
            after = _number(params, "after")
            self._read(principal, "ledger.read", reason, {"subject": subject, "after": after})
            entries = self.log.entries_for_subject(subject, after=-1 if after is None else after, limit=limit)
            next_after = entries[-1].index if len(entries) == limit else None
        else:
            size = self.log.size()
            last = _number(params, "to")
            first = _number(params, "from")
            top = min(size - 1, last if last is not None else size - 1)
            low = first if first is not None else max(0, top - limit + 1)
            if first is not None and last is not None and first > last:
                raise InvalidInput("`from` must not be after `to`")
            top = min(top, low + MAX_PAGE - 1)
            self._read(principal, "ledger.read", reason, {"from": low, "to": top})
            entries = self.log.entries_between(low, top + 1) if top >= low else []
        return LogPage(
            origin=self.log.origin,
            entries=entries,
            next_after=next_after,
            checkpoint=progress.checkpoint.decode() if progress.checkpoint else None,
            checkpoint_size=progress.checkpoint_size,
        )

    def checkpoint(self, principal: Principal, reason: str | None, size: int | None = None) -> bytes:
        principal.require(COMPLIANCE_AUDITOR)
        self.access.record(principal, "ledger.checkpoint.read", f"ledger:{self.log.origin}", reason, per_hour=True)
        if size is None:
            note = self.log.latest_checkpoint()
            if note is None:
                raise NotFound("no checkpoint has been signed yet")
            return note
        return self.log.checkpoint_at(size)

    def entry(self, index: int, principal: Principal, reason: str | None) -> LogEntry:
        self._read(principal, "ledger.entry.read", reason, {"index": index})
        entry = self.log.entry(index)
        if entry is None:
            raise NotFound(f"entry {index} is not in the log")
        return entry

    def proof(self, index: int, tree_size: int | None, principal: Principal, reason: str | None) -> LogInclusionProof:
        self._read(principal, "ledger.proof.read", reason, {"index": index, "treeSize": tree_size})
        return self.log.prove(index, tree_size)

    def tlog_proof(self, index: int, tree_size: int | None, principal: Principal, reason: str | None) -> bytes:
        self._read(principal, "ledger.proof.read", reason, {"index": index, "treeSize": tree_size})
        return self.log.tlog_proof(index, tree_size)

    def consistency(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> LogConsistencyProof:
        old = _number(params, "from", low=1)
        new = _number(params, "to", low=1)
        if old is None:
            raise InvalidInput("`from` (the older tree size, 1 or more) is required")
        if new is not None and old > new:
            raise InvalidInput("`from` must not be larger than `to`")
        self._read(principal, "ledger.consistency.read", reason, {"from": old, "to": new})
        return self.log.consistency(old, new)

    def tile(self, path: str, principal: Principal, reason: str | None) -> bytes:
        principal.require(COMPLIANCE_AUDITOR)
        self.access.record(principal, "ledger.tile.read", f"ledger:{self.log.origin}", reason, per_hour=True)
        return self.log.tile(path)


def parse_index(raw: str) -> int:
    """A path's entry index (a 4xx for anything else)."""
    value = _number({"index": raw}, "index")
    if value is None:
        raise InvalidInput("the entry index is a whole number")
    return value


def parse_size(raw: str | None, name: str = "treeSize") -> int | None:
    return _number({name: raw or ""}, name, low=1)
