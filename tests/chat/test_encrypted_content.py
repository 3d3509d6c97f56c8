"""Decrypting Graph's encrypted resource data: Microsoft's published test vector, round trips of any JSON
object, and rejection of every tampered part before anything of the data is used."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chat.crypto import decryption_certificate, encrypt, self_signed
from verbatim.chat.encrypted_content import (
    DecryptionCertificate,
    EncryptedContent,
    ResourceDataRejected,
    decrypt_resource_data,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "chats"
KEY, CERT = self_signed()
CERTIFICATE = decryption_certificate(KEY, CERT, "verbatim-chat-2030")
CERTS = {CERTIFICATE.certificate_id: CERTIFICATE}


def _content(resource: Any) -> EncryptedContent:
    raw = encrypt(resource, KEY.public_key(), CERTIFICATE.certificate_id, CERTIFICATE.thumbprint)
    return EncryptedContent.model_validate(raw)


def test_microsofts_published_vector_decrypts_to_the_chat_message_it_holds() -> None:
    # Source: microsoftgraph/msgraph-sdk-java-core DecryptableContentTests.TestTokenValidWithEncryptedData
    vector = json.loads((FIXTURES / "resource-data-decryption-example.json").read_text())
    key, cert, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(vector["pkcs12"]), vector["pkcs12Password"].encode()
    )
    assert key is not None and cert is not None
    content = EncryptedContent.model_validate(vector["encryptedContent"])
    certificate = DecryptionCertificate(
        content.encryption_certificate_id,
        vector["encryptedContent"]["encryptionCertificateThumbprint"],
        key,  # type: ignore[arg-type]
    )
    resource = decrypt_resource_data(content, {certificate.certificate_id: certificate})
    assert resource["etag"] == vector["expectedEtag"]
    assert resource["id"] == "1625126194597" and resource["body"] == {"contentType": "text", "content": "Hello World"}


def test_the_documented_example_notification_is_refused_not_crashed_on() -> None:
    # The docs' example carries placeholders ("{encrypted data that produces a full resource}"): a receiver
    # must refuse such content with a reason, never raise anything else.
    example = json.loads((FIXTURES / "encrypted-notification-example.json").read_text())
    content = EncryptedContent.model_validate(example["value"][0]["encryptedContent"])
    documented = DecryptionCertificate(
        content.encryption_certificate_id, "07293748CC064953A3052FB978C735FB89E61C3D", KEY
    )
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(content, {documented.certificate_id: documented})
    assert rejected.value.reason == "malformed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=20), json_values, max_size=8))
def test_any_json_object_survives_the_documented_round_trip(resource: dict[str, Any]) -> None:
    assert decrypt_resource_data(_content(resource), CERTS) == resource


def _flip(b64: str, position: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[position % len(raw)] ^= 1 << (position % 8)
    return base64.b64encode(bytes(raw)).decode()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_a_flipped_bit_in_data_fails_the_signature_before_decryption(position: int) -> None:
    good = _content({"id": "1", "body": {"content": "Buy 500 at par"}})
    bad = good.model_copy(update={"data": _flip(good.data, position)})
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(bad, CERTS)
    # never "undecryptable data": the ciphertext was not handed to AES or the padding check
    assert rejected.value.reason == "signature mismatch"


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_a_flipped_bit_in_the_signature_is_refused(position: int) -> None:
    good = _content({"id": "1"})
    bad = good.model_copy(update={"data_signature": _flip(good.data_signature, position)})
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(bad, CERTS)
    assert rejected.value.reason == "signature mismatch"


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_a_flipped_bit_in_the_wrapped_key_is_refused(position: int) -> None:
    good = _content({"id": "1"})
    bad = good.model_copy(update={"data_key": _flip(good.data_key, position)})
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(bad, CERTS)
    assert rejected.value.reason in ("undecryptable key", "signature mismatch")


def test_content_for_another_certificate_is_refused() -> None:
    other_key, other_cert = self_signed()
    other = decryption_certificate(other_key, other_cert, "someone-else")
    foreign = EncryptedContent.model_validate(
        encrypt({"id": "1"}, other_key.public_key(), other.certificate_id, other.thumbprint)
    )
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(foreign, CERTS)
    assert rejected.value.reason == "unknown certificate"
    # our certificate id, but a key wrapped for a different certificate
    spoofed = foreign.model_copy(
        update={"encryption_certificate_id": CERTIFICATE.certificate_id, "encryption_certificate_thumbprint": None}
    )
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(spoofed, CERTS)
    assert rejected.value.reason == "undecryptable key"


def test_a_thumbprint_that_is_not_our_certificates_is_refused() -> None:
    good = _content({"id": "1"})
    bad = good.model_copy(update={"encryption_certificate_thumbprint": "00" * 20})
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(bad, CERTS)
    assert rejected.value.reason == "thumbprint mismatch"
    lower = good.model_copy(update={"encryption_certificate_thumbprint": CERTIFICATE.thumbprint.lower()})
    assert decrypt_resource_data(lower, CERTS) == {"id": "1"}


def test_signed_content_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(ResourceDataRejected) as rejected:
        decrypt_resource_data(_content(["a", "list"]), CERTS)
    assert rejected.value.reason == "not a JSON object"
