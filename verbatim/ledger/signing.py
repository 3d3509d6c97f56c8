"""Signing keys for ledger checkpoints: one `Signer` interface, a local key file and an Azure Key Vault key.

Both speak the same algorithms so a checkpoint verifies the same way offline: Ed25519 (local only; Key
Vault has no Ed25519 keys) and ES256 (ECDSA P-256 over SHA-256, signature as raw r||s). Trust is by the
SHA-256 fingerprint of the DER public key, never by the key a checkpoint carries.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from verbatim.contracts.evidence import SignatureAlgorithmName

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_P256_BYTES = 32


class Signer(Protocol):
    """Signs checkpoint messages. `key_id` names the key for people (a Key Vault key URL, a file)."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> SignatureAlgorithmName: ...

    def public_key_pem(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class SigningKeyError(ValueError):
    """A key that cannot be used to sign or verify checkpoints."""


def fingerprint(public_key_pem: str) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo: what `LEDGER_TRUSTED_KEY_FINGERPRINTS` lists."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def verify_signature(public_key_pem: str, algorithm: SignatureAlgorithmName, message: bytes, signature: bytes) -> bool:
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError:
        return False
    try:
        if algorithm == "Ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            if len(signature) != 2 * _P256_BYTES:
                return False
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


def _public_pem(key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class LocalKeySigner:
    """A private key in a PEM file (PKCS#8): Ed25519 or ECDSA P-256. For the devstack and tests."""

    def __init__(self, private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey, key_id: str) -> None:
        if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name != "secp256r1":
            raise SigningKeyError(f"ECDSA keys must be P-256, not {private_key.curve.name}")
        self._key = private_key
        self._key_id = key_id

    @classmethod
    def from_file(cls, path: Path) -> LocalKeySigner:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningKeyError(f"{path}: not an Ed25519 or ECDSA P-256 private key")
        return cls(key, key_id=f"file:{path.name}")

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> SignatureAlgorithmName:
        return "Ed25519" if isinstance(self._key, ed25519.Ed25519PrivateKey) else "ES256"

    def public_key_pem(self) -> str:
        return _public_pem(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def ensure_local_key(path: Path, algorithm: SignatureAlgorithmName = "Ed25519") -> Path:
    """Create a local signing key at `path` (mode 0600) unless one is there; the devstack calls this."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ed25519.Ed25519PrivateKey.generate() if algorithm == "Ed25519" else ec.generate_private_key(ec.SECP256R1())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Written to a private temporary file, then linked into place: a concurrent caller either creates the key
    # or finds a complete one, never a half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path


def _p256_public_pem_from_jwk(jwk: Any, key_id: str) -> str:
    # JsonWebKey sets its fields dynamically (kty, crv, x, y as bytes), hence getattr.
    kty, crv = getattr(jwk, "kty", None), getattr(jwk, "crv", None)
    x, y = getattr(jwk, "x", None), getattr(jwk, "y", None)
    if kty not in ("EC", "EC-HSM") or crv != "P-256" or not isinstance(x, bytes) or not isinstance(y, bytes):
        raise SigningKeyError(f"Key Vault key {key_id} is not an EC P-256 key")
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
    return _public_pem(numbers.public_key())


class CryptographyClientLike(Protocol):
    """The part of `azure.keyvault.keys.crypto.CryptographyClient` the Key Vault signer uses."""

    def sign(self, algorithm: Any, digest: bytes, **kwargs: Any) -> Any: ...


class KeyClientLike(Protocol):
    """The part of `azure.keyvault.keys.KeyClient` that reads a key's versions."""

    def get_key(self, name: str, version: str | None = None, **kwargs: Any) -> Any: ...

    def list_properties_of_key_versions(self, name: str, **kwargs: Any) -> Any: ...


def key_version_public_keys(client: KeyClientLike, name: str) -> list[str]:
    """The public key (PEM) of every version of a Key Vault key, oldest first; versions that are not
    P-256 (nothing the ledger ever signed with) are left out.

    Key Vault rotates a key by adding a version (https://learn.microsoft.com/azure/key-vault/keys/
    how-to-configure-key-rotation); checkpoints signed before a rotation carry an older version's public
    key, so verification trusts every version of the configured key, not only the current one.
    """
    versions = sorted(
        client.list_properties_of_key_versions(name),
        key=lambda p: (getattr(p, "created_on", None) is None, getattr(p, "created_on", None)),
    )
    found: list[str] = []
    for properties in versions:
        key = client.get_key(name, properties.version)
        try:
            found.append(_p256_public_pem_from_jwk(key.key, str(key.id)))
        except SigningKeyError:
            continue
    return found


class KeyVaultSigner:
    """An EC P-256 key in Azure Key Vault (or Managed HSM): the private key never leaves the vault.

    Key Vault signs a digest, so the message is hashed here (SHA-256) and sent as `ES256`; the result is
    raw r||s and verifies offline with the public key, read once from the vault when the signer is built.
    `trusted_public_keys` are the public keys of all of the key's versions (rotation), read with it.
    """

    def __init__(
        self,
        client: CryptographyClientLike,
        key_id: str,
        public_key_pem: str,
        trusted_public_keys: list[str] | None = None,
    ) -> None:
        key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise SigningKeyError(f"Key Vault key {key_id} must be an EC P-256 key for ES256")
        self._client = client
        self._key_id = key_id
        self._public_key_pem = public_key_pem
        self.trusted_public_keys: list[str] = list(trusted_public_keys or [public_key_pem])

    @classmethod
    def from_key_id(cls, key_id: str, credential: TokenCredential) -> KeyVaultSigner:
        """Build from a key identifier `https://<vault>.vault.azure.net/keys/<name>[/<version>]`."""
        from azure.keyvault.keys import KeyClient, KeyVaultKeyIdentifier
        from azure.keyvault.keys.crypto import CryptographyClient

        parsed = KeyVaultKeyIdentifier(key_id)
        keys = KeyClient(parsed.vault_url, credential)
        vault_key = keys.get_key(parsed.name, parsed.version)
        public_pem = _p256_public_pem_from_jwk(vault_key.key, key_id)
        # Sign with the exact version read, so a rotation in the vault never signs with an unread key.
        return cls(
            CryptographyClient(vault_key, credential),
            str(vault_key.id),
            public_pem,
            trusted_public_keys=key_version_public_keys(keys, parsed.name) or [public_pem],
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> SignatureAlgorithmName:
        return "ES256"

    def public_key_pem(self) -> str:
        return self._public_key_pem

    def sign(self, message: bytes) -> bytes:
        from azure.keyvault.keys.crypto import SignatureAlgorithm

        result = self._client.sign(SignatureAlgorithm.es256, hashlib.sha256(message).digest())
        signature: bytes = result.signature
        if len(signature) != 2 * _P256_BYTES:
            raise SigningKeyError(f"Key Vault returned a {len(signature)}-byte ES256 signature, expected 64")
        return signature
