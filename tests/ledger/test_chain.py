"""The hash chain without storage: canonical form, entry hashing, segment and inclusion verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verbatim.contracts.evidence import GENESIS_HASH, InclusionProof, LedgerEntry
from verbatim.ledger.canonical import NotCanonicalizable, canonical_json
from verbatim.ledger.chain import (
    build_entry,
    links_after,
    sign_checkpoint,
    verify_checkpoint,
    verify_inclusion,
    verify_segment,
)
from verbatim.ledger.signing import LocalKeySigner, ensure_local_key, fingerprint

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def chain_of(count: int) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        entry = build_entry(
            chain="main",
            seq=seq,
            kind="sealed",
            subject=f"recording:r{seq}",
            details={"sha256": f"{seq:064x}", "bytes": seq * 1000},
            at=T0 + timedelta(seconds=seq),
            prev_hash=prev,
        )
        entries.append(entry)
        prev = entry.hash
    return entries


@pytest.fixture
def signer(tmp_path: Path) -> LocalKeySigner:
    return LocalKeySigner.from_file(ensure_local_key(tmp_path / "ledger.pem"))


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert (
        canonical_json({"b": [1, {"d": None, "c": "é"}], "a": True}) == '{"a":true,"b":[1,{"c":"é","d":null}]}'.encode()
    )


@pytest.mark.parametrize("value", [1.5, {"x": 2**60}, {1: "a"}, b"bytes", {"t": datetime.now(UTC)}])
def test_canonical_json_refuses_values_without_a_portable_form(value: object) -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(min_size=1), json_values, max_size=5))
def test_an_entry_survives_a_json_round_trip_with_its_hash_intact(details: dict[str, object]) -> None:
    entry = build_entry(
        chain="main", seq=1, kind="accessed", subject="recording:x", details=details, at=T0, prev_hash=GENESIS_HASH
    )  # type: ignore[arg-type]
    again = LedgerEntry.model_validate_json(entry.model_dump_json())
    assert verify_segment([again], prev_hash=GENESIS_HASH, first_seq=1) == []


def test_an_untouched_chain_verifies() -> None:
    assert verify_segment(chain_of(10), prev_hash=GENESIS_HASH, first_seq=1) == []


def test_altered_details_are_reported_at_the_altered_entry() -> None:
    entries = chain_of(5)
    entries[2] = entries[2].model_copy(update={"details": {**entries[2].details, "bytes": 1}})

    findings = verify_segment(entries, prev_hash=GENESIS_HASH, first_seq=1)

    assert [(f.code, f.seq) for f in findings] == [("entry.content_altered", 3)]
    assert "changed after it was written" in findings[0].message


def test_a_rewritten_entry_with_recomputed_hashes_breaks_the_next_link() -> None:
    entries = chain_of(5)
    forged = build_entry(
        chain="main", seq=3, kind="sealed", subject="recording:other", details={}, at=T0, prev_hash=entries[1].hash
    )
    entries[2] = forged

    findings = verify_segment(entries, prev_hash=GENESIS_HASH, first_seq=1)

    assert [(f.code, f.seq) for f in findings] == [("chain.broken_link", 4)]


def test_a_removed_entry_is_a_gap() -> None:
    entries = chain_of(5)
    del entries[2]

    findings = verify_segment(entries, prev_hash=GENESIS_HASH, first_seq=1)

    assert findings[0].code == "chain.gap"
    assert findings[0].seq == 3


def test_a_checkpoint_verifies_with_a_trusted_key_only(signer: LocalKeySigner, tmp_path: Path) -> None:
    checkpoint = sign_checkpoint(chain_of(3)[-1], signer, T0)
    stranger = LocalKeySigner.from_file(ensure_local_key(tmp_path / "other.pem"))

    assert verify_checkpoint(checkpoint, {fingerprint(signer.public_key_pem())}) == []
    assert [f.code for f in verify_checkpoint(checkpoint, {fingerprint(stranger.public_key_pem())})] == [
        "checkpoint.untrusted_key"
    ]


def test_a_checkpoint_with_a_changed_hash_fails_its_signature(signer: LocalKeySigner) -> None:
    checkpoint = sign_checkpoint(chain_of(3)[-1], signer, T0)
    altered = checkpoint.model_copy(update={"hash": chain_of(2)[-1].hash})

    assert [f.code for f in verify_checkpoint(altered, {fingerprint(signer.public_key_pem())})] == [
        "checkpoint.signature_invalid"
    ]


def test_an_inclusion_proof_carries_only_digests_of_the_following_entries(signer: LocalKeySigner) -> None:
    entries = chain_of(8)
    proof = InclusionProof(
        entry=entries[2], links=links_after(entries[3:]), checkpoint=sign_checkpoint(entries[-1], signer, T0)
    )
    trusted = {fingerprint(signer.public_key_pem())}

    assert verify_inclusion(proof, trusted) == []
    # Offline: the JSON export alone proves it, and holds no other entry's details.
    exported = InclusionProof.model_validate_json(proof.model_dump_json())
    assert verify_inclusion(exported, trusted) == []
    assert "recording:r5" not in proof.model_dump_json()


def test_an_inclusion_proof_of_an_altered_entry_explains_both_the_entry_and_the_signed_head(
    signer: LocalKeySigner,
) -> None:
    entries = chain_of(8)
    checkpoint = sign_checkpoint(entries[-1], signer, T0)
    altered = entries[2].model_copy(update={"subject": "recording:someone-else"})
    proof = InclusionProof(entry=altered, links=links_after(entries[3:]), checkpoint=checkpoint)

    codes = [f.code for f in verify_inclusion(proof, {fingerprint(signer.public_key_pem())})]

    assert codes == ["entry.content_altered", "chain.broken_link"]
