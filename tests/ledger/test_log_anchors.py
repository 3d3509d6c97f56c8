"""Anchors: every checkpoint written again to the anchor store with an RFC 3161 time stamp from a real TSA
(OpenSSL's, run locally), and a log rewritten and re-signed with the log's own key is caught against them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from devstack.processes import free_port
from devstack.tsa import ensure_tsa_files, tsa
from tests.ledger.logkit import log_keys, memory_log
from verbatim.ledger.log.anchors import AnchorStore, check_anchors
from verbatim.ledger.log.blobs import InMemoryLogBlobs
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.log.store import InMemoryLogStore
from verbatim.ledger.log.timestamps import Rfc3161Client, TimestampInvalid


@pytest.fixture(scope="module")
def tsa_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rfc3161Client]:
    directory = tmp_path_factory.mktemp("tsa")
    port = free_port()
    with tsa(port, directory, directory / "tsa.log"):
        yield Rfc3161Client.from_files(f"http://127.0.0.1:{port}/", ensure_tsa_files(directory).ca_cert)


def test_a_time_stamp_verifies_for_its_message_only(tsa_client: Rfc3161Client, tmp_path: Path) -> None:
    token = tsa_client.timestamp(b"checkpoint note\n")
    when = tsa_client.verify(token, b"checkpoint note\n")
    assert when.year >= 2026
    with pytest.raises(TimestampInvalid, match="Mismatch between messages"):
        tsa_client.verify(token, b"another note\n")
    stranger = Rfc3161Client("http://127.0.0.1:1/", x509.load_pem_x509_certificates(
        ensure_tsa_files(tmp_path / "other").ca_cert.read_bytes()
    ))  # fmt: skip
    with pytest.raises(TimestampInvalid):
        stranger.verify(token, b"checkpoint note\n")


def _filled(log: TransparencyLog, count: int, tag: str) -> bytes:
    for n in range(count):
        log.append("sealed", f"recording:{tag}{n}", {"n": n})
    note = log.checkpoint()
    assert note is not None
    return note


def test_checkpoints_are_anchored_with_time_stamps_and_the_log_extends_them(tsa_client: Rfc3161Client) -> None:
    keys = log_keys()
    anchors = AnchorStore(InMemoryLogBlobs(), tsa_client)
    log = TransparencyLog(InMemoryLogStore(), InMemoryLogBlobs(), keys, anchor=anchors)
    _filled(log, 10, "a")
    latest = _filled(log, 300, "b")
    assert anchors.sizes() == [11, 311]
    assert all(anchors.read(size)[1] for size in anchors.sizes())
    findings, notes = check_anchors(latest, log, anchors, keys.verifiers, keys.origin, require_timestamps=True)
    assert findings == []
    assert "extends all 2 anchored checkpoints" in notes[0]


def test_a_log_rewritten_and_re_signed_with_the_key_fails_against_the_anchors(tsa_client: Rfc3161Client) -> None:
    keys = log_keys()
    anchors = AnchorStore(InMemoryLogBlobs(), tsa_client)
    honest = TransparencyLog(InMemoryLogStore(), InMemoryLogBlobs(), keys, anchor=anchors)
    _filled(honest, 20, "r")
    # Whoever holds the key (and write access to Cosmos and the log's blobs) rebuilds the log without entry 7
    # and signs it; the anchor store takes new checkpoints but keeps the old ones.
    forged = TransparencyLog(InMemoryLogStore(), InMemoryLogBlobs(), keys, anchor=anchors)
    for n in range(25):
        if n != 7:
            forged.append("sealed", f"recording:r{n}", {"n": n})
    latest = forged.checkpoint()
    assert latest is not None and forged.verify_checkpoint(latest) == 25
    findings, _ = check_anchors(latest, forged, anchors, keys.verifiers, keys.origin)
    assert [(f.code, f.size) for f in findings] == [("anchor.inconsistent", 21)]
    assert "does not extend the tree anchored at size 21" in findings[0].message
    # A log truncated below an anchored size is caught too.
    shorter = memory_log(keys=keys)
    short_note = _filled(shorter, 3, "s")
    findings, _ = check_anchors(short_note, shorter, anchors, keys.verifiers, keys.origin)
    assert {f.code for f in findings} == {"anchor.beyond_log"}
