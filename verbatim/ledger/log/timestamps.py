"""RFC 3161 time stamps for anchored checkpoints: a client of a time-stamping authority (TSA) that asks for a
token over a checkpoint note and checks it, built on `rfc3161-client` (the library sigstore-python uses).

A token proves the checkpoint existed at the TSA's time: someone who later holds the log's key can sign a
rewritten log's checkpoints, but cannot get them time-stamped in the past.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from verbatim.platform.errors import DependencyUnavailable

MAX_RESPONSE_BYTES = 64 * 1024


class TimestampInvalid(ValueError):
    """A token that does not verify: another message, an untrusted TSA, a malformed response."""


class Rfc3161Client:
    """A TSA at `url` whose tokens chain to one of `roots`."""

    def __init__(self, url: str, roots: list[x509.Certificate], *, timeout: float = 10.0) -> None:
        if not roots:
            raise ValueError("an RFC 3161 client needs the TSA's root certificate(s)")
        self.url = url
        self.roots = roots
        self._timeout = timeout

    @classmethod
    def from_files(cls, url: str, ca_file: Path) -> Rfc3161Client:
        return cls(url, x509.load_pem_x509_certificates(ca_file.read_bytes()))

    def timestamp(self, data: bytes) -> bytes:
        """A verified time-stamp response (DER) over SHA-256(data)."""
        request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).nonce(nonce=True)
        query = request.cert_request(cert_request=True).build()
        try:
            answer = httpx.post(
                self.url,
                content=query.as_bytes(),
                headers={"Content-Type": "application/timestamp-query"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise DependencyUnavailable(f"time-stamping authority {self.url}: {error}") from None
        if answer.status_code != 200 or len(answer.content) > MAX_RESPONSE_BYTES:
            raise DependencyUnavailable(f"time-stamping authority {self.url} answered {answer.status_code}")
        token = answer.content
        self._check(token, data, nonce=query.nonce)
        return token

    def verify(self, token: bytes, data: bytes) -> datetime:
        """The time the token vouches for `data` at; TimestampInvalid unless it verifies."""
        return self._check(token, data, nonce=None).tst_info.gen_time

    def _check(self, token: bytes, data: bytes, *, nonce: int | None) -> TimeStampResponse:
        try:
            response = decode_timestamp_response(token)
            builder = VerifierBuilder(nonce=nonce)
            for root in self.roots:
                builder = builder.add_root_certificate(root)
            builder.build().verify_message(response, data)
        except (VerificationError, ValueError) as error:
            raise TimestampInvalid(f"the time stamp does not verify: {error}") from None
        return response
