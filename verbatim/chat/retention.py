"""Chat evidence under retention and legal hold: the sweep that deletes chat-day bundles past their retention
date, legal holds applied to (and lifted from) the bundles of held custodians, and data-subject requests —
which chats a person took part in, and erasure answered bundle by bundle.

Nothing is deleted while a hold covers it or before its retention date: the checks run on the holds in force at
the moment of deletion, and Azure's WORM refuses the delete of a protected blob anyway. A deletion leaves a
`chat.deleted` ledger entry — the certificate: which bundle, the hashes that were sealed, the class, the reason
and when — with no personal data. A hold covers a bundle when one of its custodians (object ids) was a member of
the chat and the hold's time range overlaps the bundle's day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from verbatim.chat.sealing import chat_subject
from verbatim.chat.store import ChatRepository
from verbatim.evidence.worm import WormProtection
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.blobs import BlobStore
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

CHAT_DELETED = "chat.deleted"
CHAT_HOLD_APPLIED = "chat.hold.applied"
CHAT_HOLD_LIFTED = "chat.hold.lifted"
HOLD_BASIS = "GDPR Art 17(3)(e): kept for the establishment, exercise or defence of legal claims"
RETENTION_BASIS = "GDPR Art 17(3)(b): kept to comply with a legal obligation"


@dataclass(frozen=True)
class HoldScope:
    hold_id: str
    custodians: frozenset[str]  # lower-case object ids (and UPNs, which chat members never match)
    start: datetime | None
    end: datetime | None


class ActiveHolds(Protocol):
    def active(self) -> list[HoldScope]: ...


def _day_span(bundle: dict[str, Any]) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(str(bundle["day"])).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def covering(holds: Iterable[HoldScope], bundle: dict[str, Any]) -> list[str]:
    start, end = _day_span(bundle)
    members = set(bundle.get("members", []))
    found = []
    for hold in holds:
        if hold.custodians and not (hold.custodians & members):
            continue
        if hold.start is not None and end <= hold.start:
            continue
        if hold.end is not None and start > hold.end:
            continue
        found.append(hold.hold_id)
    return sorted(found)


@dataclass(frozen=True)
class ChatErasureAnswer:
    item_id: str
    decision: Literal["erased", "refused", "already_erased"]
    basis: str
    retained_until: datetime | None
    legal_holds: list[str]
    ledger_seq: int


class ChatEvidence:
    def __init__(
        self,
        *,
        repository: ChatRepository,
        blobs: BlobStore,
        worm: WormProtection,
        ledger: LedgerWriter,
        holds: ActiveHolds,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repository
        self._blobs = blobs
        self._worm = worm
        self._ledger = ledger
        self._holds = holds
        self._clock = clock

    # -- retention ---------------------------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> list[dict[str, Any]]:
        moment = format_datetime(now or self._clock())
        return [
            b for b in self._repo.all_bundles() if not b.get("deleted") and str(b.get("retentionUntil", "~")) <= moment
        ]

    def sweep(self, *, max_deletions: int = 1000, actor: str = "system") -> list[str]:
        """Delete the bundles past their retention date that no hold covers; the ids deleted."""
        active = self._holds.active()
        deleted = []
        for bundle in self.due()[:max_deletions]:
            if covering(active, bundle):
                continue
            self.delete(bundle, reason="retention_expired", actor=actor)
            deleted.append(str(bundle["bundleId"]))
        return deleted

    def delete(self, bundle: dict[str, Any], *, reason: str, actor: str, request_id: str | None = None) -> int:
        """Delete one bundle's blobs and versions, leaving the certificate; the certificate's ledger seq."""
        now = self._clock()
        until = parse_datetime(bundle.get("retentionUntil"))
        if until is None or until > now:
            raise ValueError(f"bundle {bundle['bundleId']} is retained until {bundle.get('retentionUntil')}")
        if covering(self._holds.active(), bundle):
            raise ValueError(f"bundle {bundle['bundleId']} is under legal hold")
        manifest = self._blobs.read(bundle["manifestBlob"]) if self._blobs.exists(bundle["manifestBlob"]) else None
        entry = self._ledger.append(
            CHAT_DELETED,
            chat_subject(bundle["chatId"]),
            {
                "bundle_id": bundle["bundleId"],
                "day": bundle["day"],
                "part": int(bundle["part"]),
                "reason": reason,
                "request_id": request_id,
                "retention_class": bundle.get("retentionClass"),
                "retention_until": bundle.get("retentionUntil"),
                "sealed_seq": bundle.get("ledgerSeq"),
                "versions": int(bundle.get("versions", 0)),
                "manifest_bytes": len(manifest) if manifest is not None else None,
                "deleted_at": format_datetime(now),
            },
            actor=actor,
            idempotency_key=f"{CHAT_DELETED}:{bundle['bundleId']}",
        )
        versions = [v for v in self._repo.versions(bundle["chatId"]) if v.get("sealedIn") == bundle["bundleId"]]
        hosted = {h["blob"] for v in versions for h in v.get("hostedContents", []) if h.get("blob")}
        still_used = {
            h["blob"]
            for v in self._repo.versions(bundle["chatId"])
            if v.get("sealedIn") != bundle["bundleId"]
            for h in v.get("hostedContents", [])
            if h.get("blob")
        }
        for name in [bundle["messagesBlob"], bundle["manifestBlob"], *sorted(hosted - still_used)]:
            self._blobs.delete(name)
        for version in versions:
            self._repo.delete_version(bundle["chatId"], version["id"])
        self._repo.add_bundle({**bundle, "deleted": True, "deletedAt": format_datetime(now), "deletedSeq": entry.seq})
        log.info("chat bundle deleted", extra={"bundle_id": bundle["bundleId"], "reason": reason})
        return entry.seq

    # -- legal holds -------------------------------------------------------------------------------------

    def sync_holds(self) -> tuple[int, int]:
        """Set the legal hold on the blobs of every bundle an active hold covers, and lift it where none does
        any more; (applied, lifted)."""
        active = self._holds.active()
        applied = lifted = 0
        for bundle in self._repo.all_bundles():
            if bundle.get("deleted"):
                continue
            now_held = covering(active, bundle)
            before = sorted(bundle.get("legalHolds", []))
            if now_held == before:
                continue
            for name in self._blob_names(bundle):
                self._worm.set_legal_hold(name, bool(now_held))
            kind = CHAT_HOLD_APPLIED if now_held else CHAT_HOLD_LIFTED
            self._ledger.append(
                kind,
                chat_subject(bundle["chatId"]),
                {"bundle_id": bundle["bundleId"], "holds": list(now_held), "previous": before},
            )
            self._repo.add_bundle({**bundle, "legalHolds": now_held})
            if now_held:
                applied += 1
            else:
                lifted += 1
        return applied, lifted

    def _blob_names(self, bundle: dict[str, Any]) -> list[str]:
        names = [bundle["messagesBlob"], bundle["manifestBlob"]]
        for version in self._repo.versions(bundle["chatId"]):
            if version.get("sealedIn") == bundle["bundleId"]:
                names += [h["blob"] for h in version.get("hostedContents", []) if h.get("blob")]
        return sorted(set(names))

    # -- data subjects -----------------------------------------------------------------------------------

    def subject_bundles(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        return self._repo.all_bundles(sorted({u.lower() for u in user_ids}))

    def unsealed_of(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for user in {u.lower() for u in user_ids}:
            for version in self._repo.versions_of_user(user):
                if version.get("sealedIn") is None:
                    found[f"{version['chatId']}/{version['id']}"] = version
        return list(found.values())

    def erase_subject(self, user_ids: Iterable[str], request_id: str, actor: str) -> list[ChatErasureAnswer]:
        """Answer an erasure request for every chat-day bundle the person took part in."""
        users = sorted({u.lower() for u in user_ids})
        active = self._holds.active()
        now = self._clock()
        answers = []
        for bundle in self.subject_bundles(users):
            bundle_id = str(bundle["bundleId"])
            until = parse_datetime(bundle.get("retentionUntil"))
            if bundle.get("deleted"):
                answers.append(self._answer(bundle, request_id, actor, "already_erased", "already deleted", None, []))
                continue
            held = covering(active, bundle)
            if held:
                basis = f"under legal hold {', '.join(held)}; {HOLD_BASIS}"
                answers.append(self._answer(bundle, request_id, actor, "refused", basis, until, held))
                continue
            if until is None or until > now:
                basis = (
                    f"retained until {format_datetime(until) if until else '?'} under retention class "
                    f"{bundle.get('retentionClass')!r}; {RETENTION_BASIS}"
                )
                answers.append(self._answer(bundle, request_id, actor, "refused", basis, until, []))
                continue
            seq = self.delete(bundle, reason="erasure_request", actor=actor, request_id=request_id)
            answers.append(
                ChatErasureAnswer(
                    bundle_id,
                    "erased",
                    f"no retention period or legal hold applies any more: deleted (GDPR Art 17(1)); "
                    f"certificate in ledger entry {seq}",
                    None,
                    [],
                    seq,
                )
            )
        for version in self.unsealed_of(users):
            basis = "captured chat not yet sealed (it is sealed the day after): answered once sealed"
            entry = self._ledger.append(
                "subject.erasure_answered",
                f"subject-request:{request_id}",
                {"item": f"chat:{version['chatId']}/{version['messageId']}", "decision": "refused"},
                actor=actor,
            )
            answers.append(
                ChatErasureAnswer(f"{version['chatId']}/{version['messageId']}", "refused", basis, None, [], entry.seq)
            )
        return answers

    def _answer(
        self,
        bundle: dict[str, Any],
        request_id: str,
        actor: str,
        decision: Literal["erased", "refused", "already_erased"],
        basis: str,
        until: datetime | None,
        holds: list[str],
    ) -> ChatErasureAnswer:
        entry = self._ledger.append(
            "subject.erasure_answered",
            f"subject-request:{request_id}",
            {"item": f"chat-bundle:{bundle['bundleId']}", "decision": decision, "legal_holds": list(holds)},
            actor=actor,
        )
        return ChatErasureAnswer(str(bundle["bundleId"]), decision, basis, until, holds, entry.seq)
