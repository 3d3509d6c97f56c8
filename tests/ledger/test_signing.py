"""Checkpoint signers: local key files (Ed25519, P-256) and the Key Vault adapter against a fake vault."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.keys import JsonWebKey, KeyVaultKey
from azure.keyvault.keys.crypto import SignatureAlgorithm, SignResult
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from verbatim.ledger.signing import (
    KeyVaultSigner,
    LocalKeySigner,
    SigningKeyError,
    _p256_public_pem_from_jwk,
    ensure_local_key,
    fingerprint,
    verify_signature,
)

KEY_ID = "https://verbatim-kv.vault.azure.net/keys/ledger-signing/0123456789abcdef"


class FakeVaultCrypto:
    """Behaves as Key Vault's CryptographyClient.sign: given a SHA-256 digest, returns raw r||s for ES256."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.digests: list[bytes] = []

    def sign(self, algorithm: Any, digest: bytes, **kwargs: Any) -> SignResult:
        assert algorithm == SignatureAlgorithm.es256
        assert len(digest) == 32
        self.digests.append(digest)
        r, s = decode_dss_signature(self.private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
        return SignResult(key_id=KEY_ID, algorithm=algorithm, signature=r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


@pytest.mark.parametrize("algorithm", ["Ed25519", "ES256"])
def test_a_local_key_signs_and_verifies(tmp_path: Path, algorithm: Any) -> None:
    signer = LocalKeySigner.from_file(ensure_local_key(tmp_path / "k.pem", algorithm))
    signature = signer.sign(b"message")

    assert signer.algorithm == algorithm
    assert verify_signature(signer.public_key_pem(), algorithm, b"message", signature)
    assert not verify_signature(signer.public_key_pem(), algorithm, b"messagE", signature)


def test_the_generated_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = ensure_local_key(tmp_path / "state" / "ledger.pem")
    before = path.read_bytes()

    ensure_local_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == before


def test_a_p384_key_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "p384.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(SigningKeyError):
        LocalKeySigner.from_file(path)


def test_key_vault_signer_sends_the_sha256_digest_and_its_signature_verifies_offline() -> None:
    vault = FakeVaultCrypto()
    signer = KeyVaultSigner(vault, KEY_ID, vault.public_key_pem())

    signature = signer.sign(b"checkpoint bytes")

    assert vault.digests == [hashlib.sha256(b"checkpoint bytes").digest()]
    assert signer.algorithm == "ES256"
    assert signer.key_id == KEY_ID
    assert verify_signature(signer.public_key_pem(), "ES256", b"checkpoint bytes", signature)


def test_key_vault_public_key_is_read_from_the_jwk_the_vault_returns() -> None:
    vault = FakeVaultCrypto()
    numbers = vault.private_key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": numbers.x.to_bytes(32, "big"), "y": numbers.y.to_bytes(32, "big")}
    key = KeyVaultKey(key_id=KEY_ID, jwk=jwk)

    pem = _p256_public_pem_from_jwk(key.key, KEY_ID)

    assert fingerprint(pem) == fingerprint(vault.public_key_pem())


def test_a_key_vault_rsa_key_is_refused() -> None:
    jwk = JsonWebKey(kid=KEY_ID, kty="RSA", n=b"\x01" * 256, e=b"\x01\x00\x01")
    with pytest.raises(SigningKeyError):
        _p256_public_pem_from_jwk(jwk, KEY_ID)


class RotatedKeyClient:
    """KeyClient's version listing for a key Key Vault has rotated once: two P-256 versions."""

    def __init__(self) -> None:
        self.keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]

    def _jwk(self, index: int) -> dict[str, Any]:
        numbers = self.keys[index].public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": numbers.x.to_bytes(32, "big"), "y": numbers.y.to_bytes(32, "big")}

    def list_properties_of_key_versions(self, name: str, **kwargs: Any) -> list[Any]:
        # KeyProperties as the SDK lists them: a version id and its creation time, listed newest first here.
        from datetime import UTC, datetime
        from types import SimpleNamespace

        return [SimpleNamespace(version=f"v{i}", created_on=datetime(2026, 1 + i, 1, tzinfo=UTC)) for i in (1, 0)]

    def get_key(self, name: str, version: str | None = None, **kwargs: Any) -> KeyVaultKey:
        index = int((version or "v1")[1:])
        return KeyVaultKey(key_id=f"{KEY_ID.rsplit('/', 1)[0]}/v{index}", jwk=self._jwk(index))

    def pem(self, index: int) -> str:
        return (
            self.keys[index]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


def test_every_version_of_a_rotated_key_vault_key_stays_trusted() -> None:
    from verbatim.ledger import trusted_fingerprints
    from verbatim.ledger.signing import key_version_public_keys
    from verbatim.platform.settings import Settings

    client = RotatedKeyClient()
    versions = key_version_public_keys(client, "ledger-signing")
    assert [fingerprint(p) for p in versions] == [fingerprint(client.pem(0)), fingerprint(client.pem(1))]

    # The app signs with the newest version after a restart; checkpoints of the older one still verify.
    signer = KeyVaultSigner(FakeVaultCrypto(), KEY_ID, client.pem(1), trusted_public_keys=versions)
    trusted = trusted_fingerprints(Settings.model_validate({}), signer)
    assert {fingerprint(client.pem(0)), fingerprint(client.pem(1))} <= trusted


def test_without_the_version_list_only_the_current_key_is_trusted() -> None:
    from verbatim.ledger import trusted_fingerprints
    from verbatim.platform.settings import Settings

    client = RotatedKeyClient()
    signer = KeyVaultSigner(FakeVaultCrypto(), KEY_ID, client.pem(1))
    assert fingerprint(client.pem(0)) not in trusted_fingerprints(Settings.model_validate({}), signer)
