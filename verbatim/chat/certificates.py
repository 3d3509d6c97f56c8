"""The encryption certificate chat capture gives Graph: loaded from PEM (the private key and its certificate,
as Key Vault exports a certificate's secret), named by its thumbprint so a new certificate is a new
`encryptionCertificateId` (Graph's rotation: "Use the encryptionCertificateId property in each change
notification to identify the correct key to use")."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from verbatim.chat.encrypted_content import DecryptionCertificate

ID_PREFIX = "verbatim-chat"


class CertificateUnusable(ValueError):
    """The PEM holds no RSA private key with a matching certificate of 2,048-4,096 bits."""


@dataclass(frozen=True)
class EncryptionKeyPair:
    certificate_b64: str  # base64 DER: what `encryptionCertificate` takes
    decryption: DecryptionCertificate

    @property
    def certificate_id(self) -> str:
        return self.decryption.certificate_id


def load_pem(pem: bytes) -> EncryptionKeyPair:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise CertificateUnusable("expected a PEM private key and its certificate") from error
    if not isinstance(key, rsa.RSAPrivateKey) or not 2048 <= key.key_size <= 4096:
        raise CertificateUnusable("the key must be RSA of 2,048 to 4,096 bits (Graph's requirement)")
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != key.public_key().public_numbers():
        raise CertificateUnusable("the certificate is not the private key's")
    der = certificate.public_bytes(Encoding.DER)
    thumbprint = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - Graph names certificates by SHA-1 thumbprint
    return EncryptionKeyPair(
        base64.b64encode(der).decode(), DecryptionCertificate(f"{ID_PREFIX}/{thumbprint}", thumbprint, key)
    )
