"""The ledger v2 part of the compliance API on an in-memory log: pages by subject (paged, not loaded whole)
and by index, the latest checkpoint from one lookup, proofs that verify, 4xx for every bad parameter, the
Compliance.Auditor role, and every read recorded."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from pydantic import JsonValue

from tests.ledger.logkit import memory_log
from verbatim.api.ledger import LedgerApi, parse_index, parse_size
from verbatim.ledger import merkle
from verbatim.ledger.checkpoint import open_checkpoint, parse_tlog_proof
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import Forbidden, InvalidInput, NotFound

AUDITOR = Principal(subject="auditor-1", roles=frozenset({"Compliance.Auditor"}))
OFFICER = Principal(subject="officer-1", roles=frozenset({"Compliance.Officer"}))


@dataclass
class Recorded:
    reads: list[tuple[str, str, dict[str, JsonValue]]] = field(default_factory=list)

    def record(
        self,
        principal: Principal,
        action: str,
        subject: str,
        reason: str | None,
        details: Mapping[str, JsonValue] | None = None,
        *,
        per_hour: bool = False,
    ) -> None:
        self.reads.append((principal.subject, action, dict(details or {})))


Api = tuple[LedgerApi, TransparencyLog, "Recorded"]


@pytest.fixture
def api() -> Api:
    log = memory_log()
    for n in range(30):
        log.append("accessed" if n % 3 else "sealed", f"recording:{n % 2}", {"n": n})
    log.checkpoint()
    log.append("sealed", "recording:0", {"late": True})
    recorded = Recorded()
    return LedgerApi(log, recorded), log, recorded


def test_a_subject_is_read_page_by_page_with_the_latest_checkpoint(
    api: Api,
) -> None:
    ledger, log, recorded = api
    first = ledger.page({"subject": "recording:0", "limit": "10"}, AUDITOR, "audit")
    assert [e.index for e in first.entries] == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19] and first.next_after == 19
    rest = ledger.page({"subject": "recording:0", "after": "19", "limit": "10"}, AUDITOR, None)
    assert [e.index for e in rest.entries] == [21, 23, 25, 27, 29, 31] and rest.next_after is None
    assert first.checkpoint_size == 31 and first.checkpoint is not None
    assert open_checkpoint(first.checkpoint.encode(), log.keys.verifiers).checkpoint.size == 31
    assert recorded.reads[0] == ("auditor-1", "ledger.read", {"subject": "recording:0", "after": None})
    newest = ledger.page({}, AUDITOR, None)
    assert [e.index for e in newest.entries][-1] == 31 and len(newest.entries) == 32
    assert [e.index for e in ledger.page({"from": "3", "to": "5"}, AUDITOR, None).entries] == [3, 4, 5]


def test_an_inclusion_proof_verifies_against_its_checkpoint(api: Api) -> None:
    ledger, log, _ = api
    proof = ledger.proof(7, None, AUDITOR, None)
    root = open_checkpoint(proof.checkpoint.encode(), log.keys.verifiers).checkpoint.root_hash
    leaf = merkle.leaf_hash(base64.b64decode(proof.entry))
    merkle.verify_inclusion(7, proof.tree_size, leaf, [base64.b64decode(h) for h in proof.hashes], root)
    assert parse_tlog_proof(ledger.tlog_proof(7, 31, AUDITOR, None)).index == 7
    with pytest.raises(NotFound, match="not covered by a signed checkpoint yet"):
        ledger.proof(31, None, AUDITOR, None)
    with pytest.raises(InvalidInput, match="not in the tree of size"):
        ledger.proof(31, 31, AUDITOR, None)
    with pytest.raises(InvalidInput, match="treeSize must be between 1 and"):
        ledger.proof(3, 40, AUDITOR, None)


def test_consistency_and_checkpoint_reads(api: Api) -> None:
    ledger, log, _ = api
    assert ledger.consistency({"from": "31"}, AUDITOR, None).hashes == []
    log.checkpoint()
    proof = ledger.consistency({"from": "10", "to": "32"}, AUDITOR, None)
    assert proof.old_size == 10 and proof.new_size == 32 and proof.hashes
    assert ledger.checkpoint(AUDITOR, None) == log.latest_checkpoint()
    assert ledger.checkpoint(AUDITOR, None, 31) == log.checkpoint_at(31)
    with pytest.raises(NotFound, match="no checkpoint was signed at tree size 12"):
        ledger.checkpoint(AUDITOR, None, 12)
    assert ledger.tile("tile/0/000.p/32", AUDITOR, None) == log.blobs.read("tile/0/000.p/32")
    with pytest.raises(InvalidInput):
        ledger.tile("tile/0/../../etc", AUDITOR, None)


@pytest.mark.parametrize(
    "params",
    [{"from": "0"}, {"from": "x"}, {"from": "9", "to": "3"}, {"from": "9" * 30}, {"to": "-1", "from": "1"}],
)
def test_bad_consistency_parameters_are_4xx(api: Api, params: dict[str, str]) -> None:
    ledger, _, _ = api
    with pytest.raises(InvalidInput):
        ledger.consistency(params, AUDITOR, None)


def test_bad_page_and_path_parameters_are_4xx(api: Api) -> None:
    ledger, _, _ = api
    for params in (
        {"limit": "0"},
        {"limit": "500"},
        {"subject": "recording:0", "after": "²"},
        {"limit": "²"},
        {"from": "5", "to": "2"},
        {"subject": "s" * 600},
    ):
        with pytest.raises(InvalidInput):
            ledger.page(params, AUDITOR, None)
    for raw in ("-1", "1e3", "9" * 40, "", "²", "٣"):
        with pytest.raises(InvalidInput):
            parse_index(raw)
    with pytest.raises(InvalidInput):
        parse_size("0")


def test_only_auditors_read_the_ledger(api: Api) -> None:
    ledger, _, recorded = api
    with pytest.raises(Forbidden):
        ledger.proof(1, None, OFFICER, None)
    with pytest.raises(Forbidden):
        ledger.tile("tile/0/000.p/31", OFFICER, None)
    assert recorded.reads == []
