"""Decrypting the resource data of a Microsoft Graph change notification, exactly as Microsoft documents it
("Decrypting resource data", learn.microsoft.com/graph/change-notifications-with-resource-data): pick the
private key by ``encryptionCertificateId`` (and check ``encryptionCertificateThumbprint``), decrypt the 32-byte
symmetric key in ``dataKey`` with RSA-OAEP (SHA-1), verify the HMAC-SHA256 in ``dataSignature`` over the
encrypted ``data`` with that key *before using anything of it*, then AES-256-CBC decrypt (PKCS7 padding, the
IV being the key's first 16 bytes) into the resource's JSON.

Pure: no I/O, no clock. Every failure is a :class:`ResourceDataRejected` naming which check failed and
nothing else (never which byte, never the plaintext).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import BaseModel, ConfigDict, Field

SYMMETRIC_KEY_BYTES = 32
MAX_DATA_BYTES = 8 * 1024 * 1024

Reason = Literal[
    "unknown certificate",
    "thumbprint mismatch",
    "malformed",
    "undecryptable key",
    "signature mismatch",
    "undecryptable data",
    "not a JSON object",
]


class ResourceDataRejected(Exception):
    """The encrypted content failed a check; ``reason`` says which."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


class EncryptedContent(BaseModel):
    """``encryptedContent`` of one notification (changeNotificationEncryptedContent)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    data: str = Field(min_length=1, max_length=MAX_DATA_BYTES * 4 // 3 + 4)
    data_signature: str = Field(alias="dataSignature", min_length=1, max_length=128)
    data_key: str = Field(alias="dataKey", min_length=1, max_length=2048)
    encryption_certificate_id: str = Field(alias="encryptionCertificateId", min_length=1, max_length=128)
    encryption_certificate_thumbprint: str | None = Field(
        default=None, alias="encryptionCertificateThumbprint", max_length=128
    )


@dataclass(frozen=True)
class DecryptionCertificate:
    """A certificate we gave Graph (by the id we gave it) and the private key that opens what Graph encrypts."""

    certificate_id: str
    thumbprint: str  # SHA-1 of the DER certificate, hex
    private_key: rsa.RSAPrivateKey


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ResourceDataRejected("malformed") from error


def decrypt_resource_data(
    content: EncryptedContent, certificates: Mapping[str, DecryptionCertificate]
) -> dict[str, Any]:
    """The resource JSON inside ``content``, or :class:`ResourceDataRejected`."""
    return decrypt_resource(content, certificates)[1]


def decrypt_resource(
    content: EncryptedContent, certificates: Mapping[str, DecryptionCertificate]
) -> tuple[str, dict[str, Any]]:
    """The exact JSON text inside ``content`` and its parsed object, or :class:`ResourceDataRejected`."""
    certificate = certificates.get(content.encryption_certificate_id)
    if certificate is None:
        raise ResourceDataRejected("unknown certificate")
    thumbprint = content.encryption_certificate_thumbprint
    if thumbprint is not None and not hmac.compare_digest(
        thumbprint.strip().upper().encode(), certificate.thumbprint.upper().encode()
    ):
        raise ResourceDataRejected("thumbprint mismatch")
    data = _b64(content.data)
    signature = _b64(content.data_signature)
    wrapped_key = _b64(content.data_key)
    if not data or len(data) % 16 or len(data) > MAX_DATA_BYTES:
        raise ResourceDataRejected("malformed")
    try:
        key = certificate.private_key.decrypt(
            wrapped_key,
            OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
        )
    except ValueError as error:
        raise ResourceDataRejected("undecryptable key") from error
    if len(key) != SYMMETRIC_KEY_BYTES:
        raise ResourceDataRejected("undecryptable key")
    # The signature is checked before the ciphertext is touched: tampered data never reaches AES or the
    # padding check (no padding oracle), and nothing of it is used.
    if not hmac.compare_digest(hmac.new(key, data, hashlib.sha256).digest(), signature):
        raise ResourceDataRejected("signature mismatch")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        text = plain.decode("utf-8")
        resource = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ResourceDataRejected("undecryptable data") from error
    if not isinstance(resource, dict):
        raise ResourceDataRejected("not a JSON object")
    return text, resource
