"""Witness cosignatures (C2SP tlog-cosignature v1, tlog-witness): the formats against published values, the
log asking a real witness process (devstack/witness.py over HTTP) to cosign each checkpoint, the witness
refusing what the protocol says it must refuse, and verifiers requiring a quorum.

Published values used as they are:
- c2sp.org/tlog-cosignature, its example: the cosignature line of witness.example.com/w1 carries the time
  1679315147, the time line of the signed-message example ("time 1679315147").
- transparency-dev/formats note/note_cosigv1_test.go: the native cosignature/v1 verifier key of
  remora.n621.de (its key ID da77ade7 must match our key-ID computation, or the vkey is refused), and the
  cosignature "ZGhGuQAAAABm/qTP…" whose timestamp is 1727964367.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from devstack.processes import free_port
from devstack.witness import ensure_witness_key, witness
from tests.ledger.logkit import ORIGIN, log_keys
from verbatim.ledger import standalone_verifier
from verbatim.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from verbatim.ledger.log.blobs import InMemoryLogBlobs
from verbatim.ledger.log.maintenance import LogKeys
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.log.store import InMemoryLogStore
from verbatim.ledger.log.witnesses import Witness, Witnesses
from verbatim.ledger.note import NoteError, NoteVerifier, cosignature_time, parse_note
from verbatim.ledger.witness import (
    Cosigner,
    WitnessPolicy,
    add_checkpoint_body,
    check_cosignatures,
    parse_add_checkpoint_body,
)

SPEC_COSIGNATURE = (
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
FORMATS_COSIGNATURE = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


# --- formats ---


@pytest.mark.parametrize(("line", "time"), [(SPEC_COSIGNATURE, 1679315147), (FORMATS_COSIGNATURE, 1727964367)])
def test_a_cosignature_carries_its_time_as_published(line: str, time: int) -> None:
    raw = base64.b64decode(line)
    assert cosignature_time(raw[4:]) == time


def test_a_published_cosigner_key_parses_with_its_key_id() -> None:
    verifier = NoteVerifier.from_vkey(REMORA_VKEY)
    assert verifier.is_cosigner and f"{verifier.key_id:08x}" == "da77ade7"
    assert verifier.vkey() == REMORA_VKEY
    with pytest.raises(NoteError, match="does not match its key"):
        NoteVerifier.from_vkey(REMORA_VKEY.replace("da77ade7", "da77ade8"))


def test_a_cosignature_signs_the_header_the_time_and_the_whole_checkpoint() -> None:
    cosigner = Cosigner("witness.test/w1", ed25519.Ed25519PrivateKey.generate())
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    signature = cosigner.cosign(text, 1679315147)
    message = b"cosignature/v1\ntime 1679315147\n" + text.encode()
    cosigner.private_key.public_key().verify(signature.signature[8:], message)  # raises if not exactly that
    assert cosigner.verifier.verify(text.encode(), signature.signature)
    assert not cosigner.verifier.verify(text.replace("20852163", "20852164").encode(), signature.signature)
    # A log key (type 0x01) with the same Ed25519 key does not accept a cosignature, nor the reverse.
    log_key = NoteVerifier.for_key("witness.test/w1", cosigner.private_key.public_key())
    assert log_key.key_id != cosigner.verifier.key_id


def test_the_add_checkpoint_body_reads_back_and_bad_bodies_are_refused() -> None:
    hashes = [bytes([n]) * 32 for n in range(3)]
    body = add_checkpoint_body(20852014, hashes, b"cp")
    parsed = parse_add_checkpoint_body(body)
    assert (parsed.old_size, parsed.proof, parsed.checkpoint) == (20852014, tuple(hashes), b"cp")
    for bad in (b"old 01\n\ncp", b"old 1\nnot-base64!\n\ncp", b"old 1\ncp", b"new 1\n\ncp", b"old 1\nAAAA\n\ncp"):
        with pytest.raises(NoteError) as refused:
            parse_add_checkpoint_body(bad)
        assert refused.value.code == "witness.bad_request"


# --- a real witness process ---


@pytest.fixture
def keys() -> LogKeys:
    return log_keys()


@pytest.fixture
def running_witness(keys: LogKeys, tmp_path: Path) -> Iterator[tuple[Witness, Path]]:
    port = free_port()
    directory = tmp_path / "witness"
    assert keys.signer is not None
    with witness(port, directory, "witness.test/w1", [keys.signer.verifier.vkey()], tmp_path / "witness.log"):
        cosigner = ensure_witness_key(directory, "witness.test/w1")
        yield Witness(cosigner.verifier, f"http://127.0.0.1:{port}"), directory


def _log(keys: LogKeys, witnesses: list[Witness], store: InMemoryLogStore, blobs: InMemoryLogBlobs) -> TransparencyLog:
    return TransparencyLog(store, blobs, keys, witnesses=Witnesses(witnesses, timeout=5.0))


def _grow(log: TransparencyLog, count: int, tag: str) -> bytes:
    for n in range(count):
        log.append("sealed", f"recording:{tag}{n}", {"n": n})
    note = log.checkpoint()
    assert note is not None
    return note


def test_each_checkpoint_is_cosigned_by_the_witness_with_a_consistency_proof(
    keys: LogKeys, running_witness: tuple[Witness, Path]
) -> None:
    endpoint, _ = running_witness
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    log = _log(keys, [endpoint], store, blobs)
    policy = WitnessPolicy((endpoint.verifier,), 1)
    first = _grow(log, 5, "a")
    second = _grow(log, 300, "b")  # the witness checks a proof from its 6 entries to 306
    for note in (first, second):
        open_checkpoint(note, keys.verifiers, ORIGIN)  # still the log's checkpoint
        (cosigned,) = check_cosignatures(note, policy)
        assert cosigned.name == "witness.test/w1" and cosigned.time > 1_700_000_000
    # What the log serves as its latest checkpoint is the cosigned one.
    assert log.latest_checkpoint() == second
    # A new process of the log (no memory of the witness) asks again from the stored checkpoint's size.
    third = _grow(_log(keys, [endpoint], store, blobs), 3, "c")
    assert check_cosignatures(third, policy)


def test_a_witness_added_later_tells_its_size_and_the_log_proves_from_there(
    keys: LogKeys, running_witness: tuple[Witness, Path]
) -> None:
    endpoint, directory = running_witness
    store, blobs = InMemoryLogStore(), InMemoryLogBlobs()
    _grow(_log(keys, [], store, blobs), 20, "a")  # checkpoints before the witness was configured
    note = _grow(_log(keys, [endpoint], store, blobs), 10, "b")  # asks from 21, hears 409 "0", asks from 0
    assert check_cosignatures(note, WitnessPolicy((endpoint.verifier,), 1))
    assert '"verbatim.test/verbatim/ledger": [31' in (directory / "state.json").read_text()


def test_a_witness_that_is_down_costs_only_its_cosignature(keys: LogKeys) -> None:
    absent = Witness(Cosigner("witness.test/gone", ed25519.Ed25519PrivateKey.generate()).verifier, "http://127.0.0.1:9")
    note = _grow(_log(keys, [absent], InMemoryLogStore(), InMemoryLogBlobs()), 3, "a")
    open_checkpoint(note, keys.verifiers, ORIGIN)
    with pytest.raises(NoteError) as unmet:
        check_cosignatures(note, WitnessPolicy((absent.verifier,), 1))
    assert unmet.value.code == "checkpoint.witness_quorum"


def _post(endpoint: Witness, body: bytes) -> httpx.Response:
    return httpx.post(f"{endpoint.url}/add-checkpoint", content=body, timeout=10)


def test_the_witness_refuses_what_the_protocol_says_it_must(
    keys: LogKeys, running_witness: tuple[Witness, Path]
) -> None:
    endpoint, _ = running_witness
    assert keys.signer is not None
    root_a, root_b = bytes(range(32)), bytes(range(1, 33))
    signed = sign_checkpoint(Checkpoint(ORIGIN, 4, root_a), [keys.signer])
    other_log = log_keys("verbatim.test/another")
    assert other_log.signer is not None
    stranger = sign_checkpoint(Checkpoint("verbatim.test/another", 4, root_a), [other_log.signer])
    forged = sign_checkpoint(Checkpoint(ORIGIN, 4, root_a), [log_keys().signer])  # type: ignore[list-item]

    assert _post(endpoint, add_checkpoint_body(0, [], stranger)).status_code == 404  # unknown origin
    assert _post(endpoint, add_checkpoint_body(0, [], forged)).status_code == 403  # not the log's key
    assert _post(endpoint, add_checkpoint_body(5, [], signed)).status_code == 400  # old size above the checkpoint's
    assert _post(endpoint, add_checkpoint_body(0, [], signed)).status_code == 200
    stale = _post(endpoint, add_checkpoint_body(0, [], signed))
    assert (stale.status_code, stale.headers["content-type"], stale.text) == (409, "text/x.tlog.size", "4\n")
    fork = sign_checkpoint(Checkpoint(ORIGIN, 4, root_b), [keys.signer])
    assert _post(endpoint, add_checkpoint_body(4, [], fork)).status_code == 409  # same size, another root
    grown = sign_checkpoint(Checkpoint(ORIGIN, 8, root_b), [keys.signer])
    assert _post(endpoint, add_checkpoint_body(4, [root_a], grown)).status_code == 422  # proof does not verify


def test_the_standalone_verifier_requires_the_witness_quorum_given(
    keys: LogKeys, running_witness: tuple[Witness, Path], tmp_path: Path
) -> None:
    endpoint, _ = running_witness
    log = _log(keys, [endpoint], InMemoryLogStore(), InMemoryLogBlobs())
    _grow(log, 7, "a")
    proof_file = tmp_path / "entry.tlog-proof"
    proof_file.write_bytes(log.tlog_proof(3))
    assert keys.signer is not None
    common = ["inclusion", str(proof_file), "--key", keys.signer.verifier.vkey()]
    other = Cosigner("witness.test/w2", ed25519.Ed25519PrivateKey.generate()).verifier.vkey()
    assert standalone_verifier.main([*common, "--witness", endpoint.verifier.vkey()]) == 0
    assert standalone_verifier.main([*common, "--witness", endpoint.verifier.vkey(), "--witness", other]) == 1
    assert (
        standalone_verifier.main(
            [*common, "--witness", endpoint.verifier.vkey(), "--witness", other, "--witness-quorum", "1"]
        )
        == 0
    )
    # Run as the file it is, with only the standard library and cryptography.
    script = Path(standalone_verifier.__file__)
    done = subprocess.run(
        [sys.executable, str(script), *common, "--witness", endpoint.verifier.vkey(), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"witness.test/w1"' in done.stdout


def test_an_altered_cosignature_is_a_finding_not_a_missing_one(keys: LogKeys) -> None:
    assert keys.signer is not None
    cosigner = Cosigner("witness.test/w1", ed25519.Ed25519PrivateKey.generate())
    note = sign_checkpoint(Checkpoint(ORIGIN, 4, bytes(32)), [keys.signer])
    text = parse_note(note).text
    line = cosigner.cosign(text, 1_800_000_000)
    altered = line.signature[:-1] + bytes([line.signature[-1] ^ 1])
    bad = note + type(line)(line.name, line.key_id, altered).line().encode()
    with pytest.raises(NoteError) as found:
        check_cosignatures(bad, WitnessPolicy((cosigner.verifier,), 0))
    assert found.value.code == "note.cosignature_invalid"


def test_a_witness_is_configured_by_key_and_url() -> None:
    cosigner = Cosigner("witness.test/w1", ed25519.Ed25519PrivateKey.generate())
    parsed = Witness.parse(f"{cosigner.verifier.vkey()} https://witness.example/ ")
    assert (parsed.url, parsed.verifier.key_id) == ("https://witness.example", cosigner.verifier.key_id)
    with pytest.raises(NoteError, match="https"):
        Witness.parse(f"{cosigner.verifier.vkey()} http://witness.example")
    log_vkey = log_keys().verifiers[0].vkey()
    with pytest.raises(NoteError, match="cosignature/v1"):
        Witness.parse(f"{log_vkey} https://witness.example")
