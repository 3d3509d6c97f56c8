"""The evidence ledger: append-only, hash-chained entries in Cosmos DB with signed checkpoints.

Other areas append through `LedgerWriter.append(kind, subject, details)`; build the writer once per
process with `ledger_from_settings`.
"""

from __future__ import annotations

from pathlib import Path

from verbatim.contracts.evidence import EntryKind, InclusionProof, LedgerCheckpoint, LedgerEntry
from verbatim.ledger.chain import Finding
from verbatim.ledger.signing import KeyVaultSigner, LocalKeySigner, Signer, ensure_local_key, fingerprint
from verbatim.ledger.store import CosmosLedgerStore, InMemoryLedgerStore, LedgerStore
from verbatim.ledger.writer import Ledger, LedgerCorrupted, LedgerWriter
from verbatim.settings import Settings

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
    "ledger_from_settings",
    "signer_from_settings",
    "trusted_fingerprints",
]


def signer_from_settings(settings: Settings) -> Signer | None:
    """The checkpoint signer: the Key Vault key when configured, else the local key file (created on first
    use only when VERBATIM_ENVIRONMENT is local), else None (entries are chained but not signed)."""
    if settings.ledger_signing_key_vault_key_id:
        from verbatim.clients import credential_for

        return KeyVaultSigner.from_key_id(
            settings.ledger_signing_key_vault_key_id, credential_for(settings.azure_client_id)
        )
    if settings.ledger_signing_key_file:
        path = Path(settings.ledger_signing_key_file)
        if not path.exists() and settings.environment == "local":
            ensure_local_key(path)
        return LocalKeySigner.from_file(path)
    return None


def trusted_fingerprints(settings: Settings, signer: Signer | None) -> set[str]:
    """Keys whose checkpoints are trusted: the current signer, every version of its Key Vault key (Key
    Vault rotates by adding versions), and the ones listed by hand (an earlier key of another kind)."""
    trusted = {f.lower() for f in settings.ledger_trusted_key_fingerprints}
    if signer is not None:
        trusted.add(fingerprint(signer.public_key_pem()))
    if isinstance(signer, KeyVaultSigner):
        trusted.update(fingerprint(pem) for pem in signer.trusted_public_keys)
    return trusted


def ledger_from_settings(settings: Settings, store: LedgerStore | None = None) -> Ledger:
    if store is None:
        from verbatim import clients

        store = CosmosLedgerStore(clients.cosmos_database(settings).get_container_client("ledger"))
    return Ledger(
        store,
        settings.ledger_chain,
        signer_from_settings(settings),
        checkpoint_interval=settings.ledger_checkpoint_interval,
    )
