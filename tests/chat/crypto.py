"""Test-side helpers: a self-signed encryption certificate, Graph's documented encryption of resource data
(written from the docs, independently of the simulator's), and RS256 token signing with a JWKS lookup."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from verbatim.chat.encrypted_content import DecryptionCertificate


def self_signed(key: rsa.RSAPrivateKey | None = None, name: str = "verbatim-chat") -> tuple[rsa.RSAPrivateKey, str]:
    """A key and its self-signed certificate as base64 DER (what `encryptionCertificate` takes)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def decryption_certificate(key: rsa.RSAPrivateKey, cert_b64: str, certificate_id: str) -> DecryptionCertificate:
    thumbprint = hashlib.sha1(base64.b64decode(cert_b64)).hexdigest().upper()  # noqa: S324
    return DecryptionCertificate(certificate_id, thumbprint, key)


def encrypt(resource: Any, public_key: rsa.RSAPublicKey, certificate_id: str, thumbprint: str) -> dict[str, str]:
    """Graph's scheme as the docs describe it (single-use 32-byte key, AES-CBC/PKCS7, IV = key[:16],
    HMAC-SHA256 over the ciphertext, key wrapped with RSA-OAEP)."""
    key = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(resource).encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = enc.update(plain) + enc.finalize()
    sha1 = hashes.SHA1()  # noqa: S303 - Graph wraps the key with OAEP over SHA-1
    wrapped = public_key.encrypt(key, OAEP(mgf=MGF1(sha1), algorithm=sha1, label=None))
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": thumbprint,
    }


class TokenSigner:
    """An RS256 signing key with a kid, and the JWKS-style lookup the validator takes."""

    def __init__(self, kid: str = "test-kid") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, **header})

    def lookup(self, kid: str) -> rsa.RSAPublicKey | None:
        return self.key.public_key() if kid == self.kid else None
