"""Signed notes, checkpoints and tlog proofs (C2SP): the spec's example, real Rekor / Pixel ECDSA
checkpoints, the Tessera test log's Ed25519 checkpoints (reproduced byte for byte with its published test
key), our signers (local keys and the Key Vault adapter) and every way a note can be malformed or altered."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ledger.test_signing import FakeVaultCrypto
from verbatim.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    TlogProof,
    open_checkpoint,
    parse_checkpoint,
    parse_tlog_proof,
    sign_checkpoint,
)
from verbatim.ledger.merkle import EMPTY_ROOT, MemoryTree
from verbatim.ledger.note import (
    SIGNATURE_TYPE_ECDSA,
    SIGNATURE_TYPE_ED25519,
    KeyNoteSigner,
    NoteError,
    NoteSignature,
    NoteVerifier,
    add_signatures,
    note_signer,
    open_note,
    parse_note,
    sign_note,
)
from verbatim.ledger.signing import KeyVaultSigner, LocalKeySigner

# Hypothesis's per-example deadline would be a timed assertion, and the machine is shared.
untimed = settings(deadline=None)

VECTORS = Path(__file__).parent / "vectors"
NOTES = json.loads((VECTORS / "signed-notes.json").read_text())
TESSERA = VECTORS / "tessera-log"
TESSERA_KEY = NOTES["tessera_log"]


def tessera_signer() -> KeyNoteSigner:
    """The Tessera test log's key, from its published Go note private key `PRIVATE+KEY+name+id+b64(0x01||seed)`."""
    _, _, name, key_id, encoded = TESSERA_KEY["private_key"].split("+", 4)
    material = base64.b64decode(encoded)
    assert material[0] == SIGNATURE_TYPE_ED25519
    private = ed25519.Ed25519PrivateKey.from_private_bytes(material[1:])
    verifier = NoteVerifier.for_key(name, private.public_key())
    assert f"{verifier.key_id:08x}" == key_id
    return KeyNoteSigner(verifier, private.sign)


def ed25519_signer(name: str) -> KeyNoteSigner:
    key = ed25519.Ed25519PrivateKey.generate()
    return KeyNoteSigner(NoteVerifier.for_key(name, key.public_key()), key.sign)


# --- published vectors ---


@pytest.mark.parametrize("case", NOTES["valid"], ids=lambda c: c["vkey"].split("+")[0])
def test_published_note_verifies_with_its_vkey_and_the_vkey_round_trips(case: dict[str, Any]) -> None:
    verifier = NoteVerifier.from_vkey(case["vkey"])
    assert verifier.vkey() == case["vkey"]
    opened = open_note(case["note"].encode(), [verifier])
    assert opened.text == case["text"]
    assert opened.verified_by == (verifier,)
    assert parse_note(case["note"].encode()).encode() == case["note"].encode()


def test_ecdsa_vkeys_are_type_2_with_the_spki_hash_as_key_id_and_ed25519_vkeys_type_1() -> None:
    types = [NoteVerifier.from_vkey(c["vkey"]).signature_type for c in NOTES["valid"]]
    assert types == [SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_ECDSA, SIGNATURE_TYPE_ECDSA]


@pytest.mark.parametrize("case", NOTES["valid"], ids=lambda c: c["vkey"].split("+")[0])
def test_a_published_note_with_one_changed_character_of_text_is_refused(case: dict[str, Any]) -> None:
    altered = case["note"].replace("\n", "0\n", 1).encode()  # origin line changed
    with pytest.raises(NoteError) as failure:
        open_note(altered, [NoteVerifier.from_vkey(case["vkey"])])
    assert failure.value.code == "note.signature_invalid"


def test_a_key_with_the_same_id_but_another_name_is_ignored_and_so_the_note_is_untrusted() -> None:
    rekor = NOTES["valid"][1]["note"].encode()
    with pytest.raises(NoteError) as failure:
        open_note(rekor, [NoteVerifier.from_vkey(NOTES["wrong_key_name"]["vkey"])])
    assert failure.value.code == "note.no_trusted_signature"


@pytest.mark.parametrize("case", NOTES["bad_vkeys"], ids=lambda c: c["why"])
def test_malformed_published_vkey_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(NoteError) as failure:
        NoteVerifier.from_vkey(case["vkey"])
    assert failure.value.code == "note.bad_key"


def _tessera_checkpoints() -> list[Path]:
    return sorted(TESSERA.glob("checkpoint.*"), key=lambda p: int(p.suffix[1:]))


def test_tessera_log_checkpoints_verify_and_their_roots_are_the_roots_of_its_entries() -> None:
    verifier = NoteVerifier.from_vkey(TESSERA_KEY["vkey"])
    tree = MemoryTree.of_entries(e.encode() for e in TESSERA_KEY["entries"])
    sizes = []
    for path in _tessera_checkpoints():
        opened = open_checkpoint(path.read_bytes(), [verifier])
        assert opened.checkpoint.origin == "example.com/log/testdata"
        assert opened.checkpoint.root_hash == tree.root(opened.checkpoint.size)
        sizes.append(opened.checkpoint.size)
    assert sizes == list(range(16))
    assert (TESSERA / "checkpoint").read_bytes() == (TESSERA / "checkpoint.15").read_bytes()


def test_signing_the_tessera_checkpoints_with_its_published_test_key_reproduces_them_byte_for_byte() -> None:
    signer = tessera_signer()
    for path in _tessera_checkpoints():
        checkpoint = parse_checkpoint(parse_note(path.read_bytes()).text)
        assert sign_checkpoint(checkpoint, [signer]) == path.read_bytes()  # Ed25519 is deterministic


def test_signed_note_spec_example_vkey_matches_the_ed25519_key_id_rule() -> None:
    verifier = NoteVerifier.from_vkey(NOTES["valid"][0]["vkey"])
    assert verifier.name == "example.com/foo" and f"{verifier.key_id:08x}" == "530d903a"


# --- our signers ---


def test_local_ed25519_and_es256_signers_produce_notes_that_verify(tmp_path: Path) -> None:
    for key in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())):
        signer = note_signer("verbatim.example/ledger", LocalKeySigner(key, "file:test.pem"))
        note = sign_note("hello\n", [signer])
        assert open_note(note, [signer.verifier]).text == "hello\n"
        reparsed = NoteVerifier.from_vkey(signer.verifier.vkey())
        assert open_note(note, [reparsed]).verified_by == (reparsed,)


def test_key_vault_es256_signer_signs_notes_as_der_over_sha256_of_the_text() -> None:
    vault = FakeVaultCrypto()
    from cryptography.hazmat.primitives import serialization

    pem = (
        vault.private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    signer = note_signer("verbatim.example/ledger", KeyVaultSigner(vault, "https://kv/keys/k/1", pem))
    assert signer.verifier.signature_type == SIGNATURE_TYPE_ECDSA
    note = sign_note("origin\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", [signer])
    signature = parse_note(note).signatures[0].signature
    assert signature[0] == 0x30  # ASN.1 SEQUENCE: DER, as the spec's ECDSA type and Go's VerifyASN1 expect
    assert len(vault.digests) == 1
    assert open_note(note, [signer.verifier]).verified_by == (signer.verifier,)


def test_an_es256_signer_that_returns_a_short_signature_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = KeyNoteSigner(NoteVerifier.for_key("n", key.public_key()), lambda _text: b"\x01" * 63)
    with pytest.raises(NoteError, match="64"):
        sign_note("x\n", [signer])


def test_unknown_signatures_are_ignored_but_a_failing_known_one_rejects_the_note() -> None:
    log, witness, stranger = ed25519_signer("log.example"), ed25519_signer("w.example"), ed25519_signer("s.example")
    note = sign_note("text\n", [log, witness, stranger])
    assert open_note(note, [log.verifier, witness.verifier]).verified_by == (log.verifier, witness.verifier)
    forged = add_signatures(
        sign_note("text\n", [log]), [NoteSignature("w.example", witness.verifier.key_id, b"\0" * 64)]
    )
    with pytest.raises(NoteError) as failure:
        open_note(forged, [log.verifier, witness.verifier])
    assert failure.value.code == "note.signature_invalid"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"text\n", "no blank line"),
        (b"text\n\n", "no signatures"),
        (b"text\n\n\xe2\x80\x94 name AAAAAAA=", "no final newline"),
        (b"\n\n\xe2\x80\x94 name AAAAAAA=\n", "empty text"),
        (b"te\rxt\n\n\xe2\x80\x94 name AAAAAAA=\n", "control character"),
        (b"text\n\n- name AAAAAAA=\n", "hyphen for em dash"),
        (b"text\n\n\xe2\x80\x94 na+me AAAAAAA=\n", "plus in key name"),
        (b"text\n\n\xe2\x80\x94 name AAAA\n", "signature too short"),
        (b"text\n\n\xe2\x80\x94 name AAAAAAA\n", "bad base64"),
        (b"text\n\n\xe2\x80\x94 name\n", "no signature"),
        (b"\xff\n\n\xe2\x80\x94 name AAAAAAA=\n", "not utf-8"),
    ],
)
def test_malformed_note_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(NoteError) as failure:
        parse_note(data)
    assert failure.value.code in {"note.malformed", "note.bad_key_name"}, why


def test_text_with_blank_lines_is_split_at_the_last_blank_line() -> None:
    signer = ed25519_signer("n")
    note = sign_note("para one\n\npara two\n", [signer])
    assert open_note(note, [signer.verifier]).text == "para one\n\npara two\n"


# --- checkpoints ---


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Log\n123\n", "two lines"),
        ("\n123\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "empty origin"),
        ("Log\n0123\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "leading zero"),
        ("Log\n-1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "negative"),
        ("Log\n3438945738945739845734895735\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "too large"),
        ("Log\n1\nYmFuYW5hcw==\n", "root is not 32 bytes"),
        ("Log\n1\nThisIsn'tBase64\n", "root not base64"),
        ("Log\n1\n" + base64.b64encode(EMPTY_ROOT).decode(), "no final newline"),
        ("Log\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\nx\n", "empty extension line"),
        ("Log\n0\n" + base64.b64encode(b"\1" * 32).decode() + "\n", "size 0 with a non-empty root"),
    ],
)
def test_malformed_checkpoint_is_refused(text: str, why: str) -> None:
    with pytest.raises(CheckpointError) as failure:
        parse_checkpoint(text)
    assert failure.value.code == "checkpoint.malformed", why


@untimed
@given(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1, max_size=30),
    st.integers(0, (1 << 63) - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=10), max_size=3),
)
def test_checkpoint_body_round_trips(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    root = EMPTY_ROOT if size == 0 else root
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(checkpoint.body()) == checkpoint


def test_checkpoint_is_signed_by_the_key_named_after_its_origin_and_checked_against_it() -> None:
    log, other = ed25519_signer("verbatim.example/ledger"), ed25519_signer("elsewhere.example/ledger")
    checkpoint = Checkpoint("verbatim.example/ledger", 1, MemoryTree.of_entries([b"x"]).root())
    note = sign_checkpoint(checkpoint, [log])
    assert open_checkpoint(note, [log.verifier]).checkpoint == checkpoint
    with pytest.raises(CheckpointError) as failure:
        open_checkpoint(note, [log.verifier], origin="another/log")
    assert failure.value.code == "checkpoint.origin_mismatch"
    with pytest.raises(CheckpointError, match="named after the origin"):
        sign_checkpoint(checkpoint, [other])
    # A checkpoint for another origin, signed by a key named elsewhere, is not that log's checkpoint.
    foreign = sign_note(Checkpoint("verbatim.example/ledger", 1, checkpoint.root_hash).body(), [other])
    with pytest.raises(CheckpointError) as foreign_failure:
        open_checkpoint(foreign, [other.verifier])
    assert foreign_failure.value.code == "checkpoint.origin_mismatch"


# --- tlog proofs ---


def test_tlog_proof_encoding_matches_the_c2sp_reference_implementation_format() -> None:
    # The expected strings of transparency-dev/formats proof/tlog_proof_test.go TestMarshal, rebuilt here.
    import hashlib

    h1, h2 = hashlib.sha256(b"hash1").digest(), hashlib.sha256(b"hash2").digest()
    b1, b2 = base64.b64encode(h1).decode(), base64.b64encode(h2).decode()
    extra = base64.b64encode(b"extra information").decode()
    assert TlogProof(5, (h1, h2), b"test checkpoint\n").encode().decode() == (
        f"c2sp.org/tlog-proof@v1\nindex 5\n{b1}\n{b2}\n\ntest checkpoint\n"
    )
    assert TlogProof(10, (h1,), b"checkpoint data\n", b"extra information").encode().decode() == (
        f"c2sp.org/tlog-proof@v1\nextra {extra}\nindex 10\n{b1}\n\ncheckpoint data\n"
    )
    assert TlogProof(0, (), b"checkpoint\n").encode() == b"c2sp.org/tlog-proof@v1\nindex 0\n\ncheckpoint\n"


@untimed
@given(
    st.integers(0, (1 << 63) - 1),
    st.lists(st.binary(min_size=32, max_size=32), max_size=63),
    st.one_of(st.none(), st.binary(max_size=300)),
)
def test_tlog_proof_round_trips(index: int, hashes: list[bytes], extra: bytes | None) -> None:
    proof = TlogProof(index, tuple(hashes), b"origin\n1\nroot\n\n\xe2\x80\x94 k AAAAAAA=\n", extra)
    assert parse_tlog_proof(proof.encode()) == proof


@pytest.mark.parametrize(
    "data",
    [
        b"wrong-header\nindex 0\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nextra !!notbase64!!\nindex 0\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\n\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nindex notanumber\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nindex -5\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n!!notbase64!!\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n" + base64.b64encode(bytes(64)) + b"\n\ncheckpoint\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n\n",
    ],
)
def test_malformed_tlog_proof_is_refused(data: bytes) -> None:
    # The first seven are the error cases of transparency-dev/formats proof/tlog_proof_test.go TestUnmarshalErrors.
    with pytest.raises(CheckpointError) as failure:
        parse_tlog_proof(data)
    assert failure.value.code == "proof.malformed"
