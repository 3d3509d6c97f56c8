"""C2SP signed notes (c2sp.org/signed-note): the text + signature-lines encoding of ledger checkpoints,
verifier keys ("vkeys") and the two signature types the ledger uses (no I/O).

- Ed25519, signature type 0x01: key ID = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4], the
  signature is RFC 8032 Ed25519 over the note text. For local keys and for interoperating with the public
  witness network (tlog-tiles asks public logs for an Ed25519 signature).
- ECDSA P-256, signature type 0x02 ("as implemented by github.com/transparency-dev/witness"): key ID =
  SHA-256(DER SubjectPublicKeyInfo)[:4], the signature is ASN.1 DER ECDSA over SHA-256(note text), the
  vkey's key material is the DER SPKI. Azure Key Vault and Managed HSM keys are RSA, EC (P-256, P-256K,
  P-384, P-521) or symmetric, with no Ed25519, so a Key Vault-held key signs this type (its ES256 returns
  raw r||s, re-encoded as DER here). docs/ledger-v2.md gives the sources.
- Ed25519 cosignature/v1, signature type 0x04 (c2sp.org/tlog-cosignature): a witness's timestamped statement
  that the checkpoint is consistent with everything it saw of the log. Key ID = SHA-256(name || 0x0A || 0x04 ||
  32-byte public key)[:4]; the signature is an 8-byte big-endian POSIX time followed by Ed25519 over
  "cosignature/v1\ntime <t>\n" and the note text. `verbatim.ledger.witness` checks a quorum of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

SIGNATURE_TYPE_ED25519 = 0x01
SIGNATURE_TYPE_ECDSA = 0x02
SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 1 << 20
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_P256_BYTES = 32


class NoteError(ValueError):
    """A note that is malformed, or not signed by a trusted key. `code` is stable, for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  # without the 4-byte key ID

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{_SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    text: str  # ends with a newline
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def check_key_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError("note.bad_key_name", f"key name {name!r} is empty or holds a space or '+'")


def _strict_b64(value: str, what: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("note.malformed", f"{what} is not base64") from None
    if base64.b64encode(decoded).decode() != value:
        raise NoteError("note.malformed", f"{what} is not in canonical base64")
    return decoded


def check_note_text(text: str) -> None:
    """The rules of a note's text on its own: non-empty, ends in a newline, no control characters but newline."""
    if not text.endswith("\n") or text == "\n":
        raise NoteError("note.malformed", "the note text must be non-empty and end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("note.malformed", "the note text holds a control character")


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines, enforcing the format (not the signatures)."""
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("note.malformed", f"the note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note.malformed", "the note is not valid UTF-8") from None
    if any(ord(ch) < 0x20 and ch != "\n" for ch in whole):
        raise NoteError("note.malformed", "the note holds a control character other than newline")
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("note.malformed", "the note has no blank line before its signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    check_note_text(text)
    if not block.endswith("\n"):
        raise NoteError("note.malformed", "the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note.malformed", f"the note carries more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteError("note.malformed", f"signature line {line[:40]!r} does not start with an em dash")
        name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        check_key_name(name)
        if not space:
            raise NoteError("note.malformed", f"signature line of {name!r} has no signature")
        raw = _strict_b64(encoded, f"the signature of {name!r}")
        if len(raw) < 5:
            raise NoteError("note.malformed", f"the signature of {name!r} is too short")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


# --- keys ---


def ed25519_key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosigner_key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([SIGNATURE_TYPE_COSIGNATURE_V1]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature/v1 signs: the header line, the time line, then the whole note text."""
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode() + text.encode()


def cosignature_time(signature: bytes) -> int:
    """The POSIX time a cosignature/v1 signature (without its key ID) was made at."""
    if len(signature) != 8 + 64:
        raise NoteError("note.malformed", f"a cosignature/v1 signature is 72 bytes, not {len(signature)}")
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp >= 1 << 63:
        raise NoteError("note.malformed", "a cosignature's time exceeds 2^63 - 1")
    return timestamp


def ecdsa_key_id(spki_der: bytes) -> int:
    return int.from_bytes(hashlib.sha256(spki_der).digest()[:4], "big")


NotePublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_ECDSA_CURVES = {"secp256r1", "secp384r1", "secp521r1"}  # the curves signed-note allows for type 0x02


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _decode_key_material(signature_type: int, key_bytes: bytes) -> NotePublicKey:
    try:
        if signature_type in (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE_V1):
            return ed25519.Ed25519PublicKey.from_public_bytes(key_bytes)
        if signature_type != SIGNATURE_TYPE_ECDSA:
            raise NoteError("note.bad_key", f"signature type 0x{signature_type:02x} is not supported")
        loaded = serialization.load_der_public_key(key_bytes)
    except NoteError:
        raise
    except ValueError as error:
        raise NoteError("note.bad_key", f"the verifier key material does not decode: {error}") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise NoteError("note.bad_key", "an ECDSA verifier key holds a key of another kind")
    if _spki(loaded) != key_bytes:
        raise NoteError("note.bad_key", "the ECDSA verifier key is not in canonical DER")
    return loaded


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted key: the (name, key ID) pair a signature line must carry, and the key that checks it."""

    name: str
    key_id: int
    signature_type: int
    public_key: NotePublicKey

    @classmethod
    def for_key(cls, name: str, public_key: NotePublicKey) -> NoteVerifier:
        check_key_name(name)
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return cls(name, ed25519_key_id(name, raw), SIGNATURE_TYPE_ED25519, public_key)
        if public_key.curve.name not in _ECDSA_CURVES:
            raise NoteError("note.bad_key", f"note ECDSA keys are P-256, P-384 or P-521, not {public_key.curve.name}")
        return cls(name, ecdsa_key_id(_spki(public_key)), SIGNATURE_TYPE_ECDSA, public_key)

    @classmethod
    def for_cosigner(cls, name: str, public_key: ed25519.Ed25519PublicKey) -> NoteVerifier:
        """A witness's key: its Ed25519 cosignature/v1 signatures (type 0x04)."""
        check_key_name(name)
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(name, cosigner_key_id(name, raw), SIGNATURE_TYPE_COSIGNATURE_V1, public_key)

    @property
    def is_cosigner(self) -> bool:
        return self.signature_type == SIGNATURE_TYPE_COSIGNATURE_V1

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse `<name>+<hex key ID>+<base64(type || key material)>`; the key ID must match the key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("note.bad_key", "a verifier key has three parts: name+keyid+key")
        name, hex_id, encoded = parts
        check_key_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError("note.bad_key", f"verifier key ID {hex_id!r} is not 8 lowercase hex digits")
        try:
            material = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("note.bad_key", "the verifier key material is not base64") from None
        if len(material) < 2:
            raise NoteError("note.bad_key", "the verifier key material is empty")
        signature_type, key_bytes = material[0], material[1:]
        public_key = _decode_key_material(signature_type, key_bytes)
        if signature_type == SIGNATURE_TYPE_COSIGNATURE_V1 and isinstance(public_key, ed25519.Ed25519PublicKey):
            verifier = cls.for_cosigner(name, public_key)
        else:
            verifier = cls.for_key(name, public_key)
        if verifier.key_id != int(hex_id, 16):
            raise NoteError("note.bad_key", f"verifier key ID {hex_id} does not match its key ({verifier.key_id:08x})")
        return verifier

    def vkey(self) -> str:
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            material = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            material = _spki(self.public_key)
        encoded = base64.b64encode(bytes([self.signature_type]) + material).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        if self.is_cosigner:
            try:
                text = cosigned_message(text.decode(), cosignature_time(signature))
            except (NoteError, UnicodeDecodeError):
                return False
            signature = signature[8:]
        try:
            if isinstance(self.public_key, ed25519.Ed25519PublicKey):
                self.public_key.verify(signature, text)
            else:
                self.public_key.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


# --- signing ---


class NoteSigner(Protocol):
    @property
    def verifier(self) -> NoteVerifier: ...

    def sign(self, text: bytes) -> bytes:
        """The signature over the note text, without the key ID."""
        ...


class MessageSigner(Protocol):
    """What the ledger's checkpoint signers (`verbatim.ledger.signing`: local key file, Key Vault) offer:
    Ed25519 signatures, or ES256 as raw r||s over SHA-256 of the message."""

    @property
    def algorithm(self) -> str: ...

    def public_key_pem(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeyNoteSigner:
    """Signs notes as `verifier.name` with a signing function: Ed25519 raw, or ES256 raw r||s (made DER)."""

    verifier: NoteVerifier
    sign_message: Callable[[bytes], bytes]

    def sign(self, text: bytes) -> bytes:
        signature = self.sign_message(text)
        if self.verifier.signature_type == SIGNATURE_TYPE_ECDSA:
            if len(signature) != 2 * _P256_BYTES:
                raise NoteError("note.bad_signer", f"an ES256 signer returned {len(signature)} bytes, not 64")
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            signature = encode_dss_signature(r, s)
        return signature


def note_signer(name: str, signer: MessageSigner) -> KeyNoteSigner:
    """A note signer named `name` over a ledger checkpoint signer (Ed25519 or ES256 on P-256)."""
    key = serialization.load_pem_public_key(signer.public_key_pem().encode())
    if signer.algorithm == "Ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
        return KeyNoteSigner(NoteVerifier.for_key(name, key), signer.sign)
    if signer.algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return KeyNoteSigner(NoteVerifier.for_key(name, key), signer.sign)
    raise NoteError("note.bad_signer", f"a {signer.algorithm} signer with this key cannot sign notes")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    check_note_text(text)
    if not signers:
        raise NoteError("note.bad_signer", "a note needs at least one signature")
    signatures = tuple(NoteSignature(s.verifier.name, s.verifier.key_id, s.sign(text.encode())) for s in signers)
    return Note(text, signatures).encode()


def add_signatures(note: bytes, signatures: Iterable[NoteSignature]) -> bytes:
    """The note with more signature lines (e.g. witness cosignatures), the text untouched."""
    parsed = parse_note(note)
    return Note(parsed.text, parsed.signatures + tuple(signatures)).encode()


@dataclass(frozen=True)
class VerifiedNote:
    text: str
    verified_by: tuple[NoteVerifier, ...]
    note: Note


def open_note(data: bytes, verifiers: Iterable[NoteVerifier]) -> VerifiedNote:
    """Parse a note and check it: signatures from unknown keys are ignored, as the spec says; one from a
    known key that fails rejects the whole note; at least one known key must have signed."""
    note = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteVerifier] = []
    text = note.text.encode()
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, signature.signature):
            raise NoteError(
                "note.signature_invalid",
                f"the signature of {signature.name} (key {signature.key_id:08x}) does not match the note text — "
                "the note was altered or not signed by that key",
            )
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        present = ", ".join(f"{s.name}/{s.key_id:08x}" for s in note.signatures)
        raise NoteError("note.no_trusted_signature", f"the note is signed by no trusted key (it carries: {present})")
    return VerifiedNote(note.text, tuple(verified), note)


__all__ = [
    "COSIGNATURE_HEADER",
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "SIGNATURE_TYPE_ECDSA",
    "SIGNATURE_TYPE_ED25519",
    "KeyNoteSigner",
    "MessageSigner",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "VerifiedNote",
    "add_signatures",
    "check_key_name",
    "cosignature_time",
    "cosigned_message",
    "cosigner_key_id",
    "ecdsa_key_id",
    "ed25519_key_id",
    "note_signer",
    "open_note",
    "parse_note",
    "sign_note",
]
