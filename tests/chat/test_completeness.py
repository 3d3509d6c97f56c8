"""The daily chat reconciliation: what the export API lists for a policy user's day against what was captured;
gaps are back-filled and counted, and the chat section rides in the signed completeness report without changing
how reports without it hash."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.chat.world import START, TENANT, TOM, World, message
from verbatim.chat.completeness import ChatReconciler
from verbatim.contracts.reconciliation import CompletenessReport
from verbatim.ledger.signing import LocalKeySigner
from verbatim.reconciliation.report import content_sha256, sign_report, verify_report


class Export:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def export(self, tenant_id: str, user_id: str, since: datetime, until: datetime, result: Any = None) -> list[Any]:
        return list(self.items)


class Users:
    def recorded(self, tenant_id: str, at: datetime) -> list[str]:
        return [TOM]


def test_gaps_are_backfilled_and_counted() -> None:
    world = World()
    delivered = message("delivered", START)
    lost = message("lost", START + timedelta(minutes=5))
    edited_later = message(
        "v2", START + timedelta(minutes=9), created=START + timedelta(minutes=8), edited=START + timedelta(minutes=9)
    )
    world.capture(delivered)
    world.capture(message("v1", START + timedelta(minutes=8)))  # an earlier version the export no longer shows
    reconciler = ChatReconciler(
        repository=world.repo,
        backfiller=Export([delivered, lost, edited_later]),  # type: ignore[arg-type]
        ingestor=world.ingestor,
        users=Users(),
        tenant_ids=[TENANT],
        clock=lambda: world.now,
    )
    [result] = reconciler.reconcile_day("2030-01-01")
    assert (result.export_versions, result.captured_before, result.backfilled, result.missing_after) == (3, 1, 2, 0)
    assert result.status == "gaps-filled"
    [again] = reconciler.reconcile_day("2030-01-01")
    assert again.status == "complete" and again.backfilled == 0


def test_a_report_with_a_chat_section_is_signed_and_one_without_hashes_as_before(tmp_path: Any) -> None:
    plain = CompletenessReport(day="2030-01-01", generated_at="2030-01-02T01:00:00Z", generated_by="t")
    before = content_sha256(plain)
    # the hash of a report without chat is that of the body without the field at all (as reports were written)
    from verbatim.ledger.canonical import canonical_sha256

    assert before == canonical_sha256(plain.model_dump(mode="json", by_alias=True, exclude={"signature", "chat"}))
    world = World()
    reconciler = ChatReconciler(
        repository=world.repo,
        backfiller=Export([message("x", START)]),  # type: ignore[arg-type]
        ingestor=world.ingestor,
        users=Users(),
        tenant_ids=[TENANT],
    )
    with_chat = plain.model_copy(update={"chat": reconciler.reconcile_day("2030-01-01")})
    assert content_sha256(with_chat) != before
    from verbatim.ledger.signing import ensure_local_key

    signer = LocalKeySigner.from_file(ensure_local_key(tmp_path / "key.pem"))
    signed = sign_report(with_chat, signer)
    assert verify_report(signed)
    tampered = signed.model_copy(update={"chat": [signed.chat[0].model_copy(update={"missing_after": 7})]})  # type: ignore[index]
    assert not verify_report(tampered)
