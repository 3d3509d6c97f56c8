"""Resource data encrypted for a subscriber, as Microsoft Graph documents it ("Decrypting resource data",
learn.microsoft.com/graph/change-notifications-with-resource-data): a single-use 32-byte symmetric key
encrypts the resource JSON with AES-CBC (PKCS7 padding, the IV being the key's first 16 bytes); the key is
encrypted with the subscriber's RSA public key using OAEP (SHA-1, as .NET's ``Decrypt(..., fOAEP: true)``
and Java's ``RSA/ECB/OAEPWithSHA1AndMGF1Padding`` in the documented samples); ``dataSignature`` is the
HMAC-SHA256 of the encrypted bytes under the symmetric key. Everything is base64.

The subscriber's certificate arrives as base64 X.509 (``encryptionCertificate``); Graph only uses its public
key, which must be RSA of 2,048 to 4,096 bits. Its thumbprint is the SHA-1 of the DER bytes, upper-case hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding


class CertificateError(ValueError):
    """The encryptionCertificate is not a usable base64 X.509 RSA certificate."""


@dataclass(frozen=True)
class EncryptionCertificate:
    certificate_id: str
    thumbprint: str
    public_key: rsa.RSAPublicKey

    @classmethod
    def parse(cls, encoded: str, certificate_id: str) -> EncryptionCertificate:
        text = encoded.strip()
        try:
            if text.startswith("-----BEGIN"):
                cert = x509.load_pem_x509_certificate(text.encode())
            else:
                cert = x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error) as error:
            raise CertificateError("encryptionCertificate is not a base64-encoded X.509 certificate") from error
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise CertificateError("the encryption certificate's key must be of type RSA")
        if not 2048 <= key.key_size <= 4096:
            raise CertificateError("the encryption certificate's key size must be between 2,048 and 4,096 bits")
        thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest().upper()  # noqa: S324 - Graph's thumbprint
        return cls(certificate_id, thumbprint, key)


def encrypt_resource(resource: dict[str, Any], certificate: EncryptionCertificate) -> dict[str, str]:
    """The ``encryptedContent`` of one notification carrying ``resource``."""
    key = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(resource, separators=(",", ":")).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = encryptor.update(plain) + encryptor.finalize()
    signature = hmac.new(key, data, hashlib.sha256).digest()
    data_key = certificate.public_key.encrypt(
        key,
        OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
    )
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(data_key).decode(),
        "encryptionCertificateId": certificate.certificate_id,
        "encryptionCertificateThumbprint": certificate.thumbprint,
    }
