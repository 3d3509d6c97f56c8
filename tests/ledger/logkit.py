"""Building blocks for the ledger v2 tests: a log key, and a log on the in-memory fakes."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from verbatim.ledger.log.blobs import InMemoryLogBlobs, LogBlobs
from verbatim.ledger.log.maintenance import LogKeys
from verbatim.ledger.log.sequencer import Step
from verbatim.ledger.log.service import Initializer, TransparencyLog
from verbatim.ledger.log.store import InMemoryLogStore, LogStore
from verbatim.ledger.note import note_signer
from verbatim.ledger.signing import LocalKeySigner

ORIGIN = "verbatim.test/verbatim/ledger"


def log_keys(origin: str = ORIGIN, key: ed25519.Ed25519PrivateKey | None = None) -> LogKeys:
    signer = note_signer(origin, LocalKeySigner(key or ed25519.Ed25519PrivateKey.generate(), key_id="test"))
    return LogKeys(origin, signer, (signer.verifier,))


def memory_log(
    store: LogStore | None = None,
    blobs: LogBlobs | None = None,
    keys: LogKeys | None = None,
    *,
    step: Step | None = None,
    initializer: Initializer | None = None,
) -> TransparencyLog:
    return TransparencyLog(
        store or InMemoryLogStore(),
        blobs or InMemoryLogBlobs(),
        keys or log_keys(),
        initializer=initializer,
        **({"step": step} if step is not None else {}),
    )
