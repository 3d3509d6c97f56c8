"""The evidence ledger: append-only, hash-chained entries in Cosmos DB with signed checkpoints.

Other areas append through `LedgerWriter.append(kind, subject, details)`; the process's writer is built once,
by the composition root (`verbatim.wiring`).
"""

from __future__ import annotations

from verbatim.contracts.evidence import EntryKind, InclusionProof, LedgerCheckpoint, LedgerEntry
from verbatim.ledger.chain import Finding
from verbatim.ledger.signing import KeyVaultSigner, LocalKeySigner, Signer, ensure_local_key, fingerprint
from verbatim.ledger.store import CosmosLedgerStore, InMemoryLedgerStore, LedgerStore
from verbatim.ledger.writer import Ledger, LedgerCorrupted, LedgerWriter
from verbatim.platform.settings import Settings

__all__ = [
    "CosmosLedgerStore",
    "EntryKind",
    "Finding",
    "InMemoryLedgerStore",
    "InclusionProof",
    "KeyVaultSigner",
    "Ledger",
    "LedgerCheckpoint",
    "LedgerCorrupted",
    "LedgerEntry",
    "LedgerStore",
    "LedgerWriter",
    "LocalKeySigner",
    "Signer",
    "ensure_local_key",
    "fingerprint",
    "trusted_fingerprints",
]


def trusted_fingerprints(settings: Settings, signer: Signer | None) -> set[str]:
    """Keys whose checkpoints are trusted: the current signer, every version of its Key Vault key (Key
    Vault rotates by adding versions), and the ones listed by hand (an earlier key of another kind)."""
    trusted = {f.lower() for f in settings.ledger_trusted_key_fingerprints}
    if signer is not None:
        trusted.add(fingerprint(signer.public_key_pem()))
    if isinstance(signer, KeyVaultSigner):
        trusted.update(fingerprint(pem) for pem in signer.trusted_public_keys)
    return trusted
