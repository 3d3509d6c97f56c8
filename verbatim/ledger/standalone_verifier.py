#!/usr/bin/env python3
"""Verify Verbatim's evidence ledger offline: one file, the Python standard library and `cryptography`.

The ledger is a transparency log (RFC 9162 Merkle tree; C2SP tlog-checkpoint, signed-note, tlog-proof and
tlog-tiles; docs/ledger-v2.md in the Verbatim repository describes it). This file checks, with no access to
Verbatim:

  inclusion    that an entry is in the log: a `.tlog-proof` file (index, inclusion proof, signed checkpoint;
               Verbatim puts the entry's bytes in its `extra` line, or pass --entry FILE)
  consistency  that a log only grew between two signed checkpoints (a consistency proof: base64 hashes one
               per line, or JSON {"hashes": [...]})
  checkpoint   that a checkpoint is signed by a trusted key
  log          that a copy of the log's files (checkpoint, tile/..., tile/entries/...) is complete and
               hashes to its signed checkpoint

Trust comes only from the keys given with --key (a signed-note verifier key, `name+keyid+base64`, as
`verbatim ledger key` prints it) or --key-file (one per line). Signatures by other keys are ignored. The
checkpoint's origin must be --origin, or by default the name of the key that signed it.

With --witness (a witness's cosignature/v1 verifier key, signature type 0x04; repeatable) every checkpoint must
also carry valid cosignatures (c2sp.org/tlog-cosignature) from --witness-quorum of those witnesses (default:
all of them): witnesses that saw the same tree, so the log cannot have shown anyone a different one.

Exit status: 0 verified; 1 not verified (each finding printed with a stable code); 2 could not verify (bad
arguments, unreadable file, malformed trusted key). --json prints one JSON object instead of text.

It is written independently of Verbatim's own ledger code, as the reference for anyone writing another
verifier; Verbatim's tests hold the two to the same answers.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

HASH_SIZE = 32
TILE_WIDTH = 256
EMPTY_ROOT = hashlib.sha256(b"").digest()
ED25519, ECDSA, COSIGNATURE_V1 = 0x01, 0x02, 0x04  # signed-note signature types
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_SIZE = (1 << 63) - 1

EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_UNUSABLE = 0, 1, 2


class Failed(Exception):
    """Verification found something wrong: a stable code and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unusable(Exception):
    """The verifier cannot run as asked (arguments, files, trusted keys): exit status 2."""


# --- RFC 9162 hashing ---


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2, step by step."""
    if index >= size:
        raise Failed("proof.index_out_of_range", f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise Failed("proof.malformed_leaf_hash", "the leaf hash is not 32 bytes")
    if any(len(p) != HASH_SIZE for p in proof):
        raise Failed("proof.malformed_hash", "a proof hash is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failed("proof.wrong_length", f"the inclusion proof is longer than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed("proof.wrong_length", f"the inclusion proof is shorter than a tree of size {size} needs")
    if r != root:
        raise Failed(
            "proof.root_mismatch",
            f"the inclusion proof for leaf {index} leads to a root other than the tree of size {size} has",
        )


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> None:
    """RFC 9162 section 2.1.4.2, step by step (sizes 0 < size1 <= size2)."""
    if not 0 < size1 <= size2:
        raise Failed("proof.sizes_invalid", f"no consistency proof exists from size {size1} to size {size2}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise Failed("proof.malformed_hash", "a proof hash is not 32 bytes")
    if size1 == size2:
        if proof:
            raise Failed("proof.wrong_length", "trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise Failed("proof.root_mismatch", f"two different roots for the same tree size {size1}")
        return
    if not proof:
        raise Failed("proof.wrong_length", "the consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of two: the old tree is a node of the new one
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("proof.wrong_length", "the consistency proof is longer than the sizes need")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed("proof.wrong_length", "the consistency proof is shorter than the sizes need")
    if fr != root1:
        raise Failed("proof.old_root_mismatch", f"the consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise Failed("proof.root_mismatch", f"the consistency proof does not lead to the root of size {size2}")


# --- encodings ---


def b64(text: str, code: str, what: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Failed(code, f"{what} is not base64") from None
    if base64.b64encode(value).decode() != text:
        raise Failed(code, f"{what} is not in canonical base64")
    return value


def decimal(text: str, code: str, what: str) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", text) or int(text) > MAX_SIZE:
        raise Failed(code, f"{what} {text[:24]!r} is not a decimal number without leading zeroes")
    return int(text)


def valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


# --- signed notes (c2sp.org/signed-note) ---


@dataclass(frozen=True)
class TrustedKey:
    name: str
    key_id: int
    kind: int
    public_key: Any  # Ed25519PublicKey or EllipticCurvePublicKey
    text: str

    def verify(self, message: bytes, signature: bytes) -> bool:
        if self.kind == COSIGNATURE_V1:  # 8-byte time, then Ed25519 over the header, time line and note text
            if len(signature) != 72:
                return False
            message = b"cosignature/v1\ntime %d\n" % int.from_bytes(signature[:8], "big") + message
            signature = signature[8:]
        try:
            if self.kind in (ED25519, COSIGNATURE_V1):
                self.public_key.verify(signature, message)
            else:
                self.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def describe(self) -> str:
        kind = {ED25519: "Ed25519", ECDSA: "ECDSA", COSIGNATURE_V1: "cosignature/v1"}[self.kind]
        return f"{self.name} ({kind}, key {self.key_id:08x})"


def parse_vkey(text: str, kinds: tuple[int, ...] = (ED25519, ECDSA)) -> TrustedKey:
    """A signed-note verifier key: name+hex(key ID)+base64(type || key material); the ID must match the key.
    `kinds`: the signature types accepted (log keys: Ed25519, ECDSA; witness keys: cosignature/v1)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not valid_key_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise Unusable(f"not a verifier key (name+keyid+key): {text.strip()[:60]!r}")
    name, key_id = parts[0], int(parts[1], 16)
    try:
        material = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        raise Unusable(f"verifier key {name}: its key is not base64") from None
    if len(material) < 2:
        raise Unusable(f"verifier key {name}: no key material")
    kind, raw = material[0], material[1:]
    if kind not in kinds:
        wanted = "a witness key (type 0x04)" if kinds == (COSIGNATURE_V1,) else "a log key (type 0x01 or 0x02)"
        raise Unusable(f"verifier key {name}: signature type 0x{kind:02x}, not {wanted}")
    try:
        if kind in (ED25519, COSIGNATURE_V1):
            public_key: Any = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            expected = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw).digest()[:4]
        elif kind == ECDSA:
            public_key = serialization.load_der_public_key(raw)
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in (
                "secp256r1",
                "secp384r1",
                "secp521r1",
            ):
                raise Unusable(f"verifier key {name}: not an ECDSA P-256, P-384 or P-521 key")
            expected = hashlib.sha256(raw).digest()[:4]
        else:
            raise Unusable(f"verifier key {name}: signature type 0x{kind:02x} is not supported")
    except ValueError as error:
        raise Unusable(f"verifier key {name}: {error}") from None
    if int.from_bytes(expected, "big") != key_id:
        raise Unusable(f"verifier key {name}: key ID {parts[1]} does not match its key ({expected.hex()})")
    return TrustedKey(name, key_id, kind, public_key, text.strip())


def open_note(data: bytes, keys: list[TrustedKey]) -> tuple[str, list[TrustedKey]]:
    """The note text and the trusted keys whose signatures verified; unknown signers are ignored."""
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Failed("note.malformed", "the note is not valid UTF-8") from None
    if any(ord(ch) < 0x20 and ch != "\n" for ch in whole):
        raise Failed("note.malformed", "the note holds a control character other than newline")
    cut = whole.rfind("\n\n")
    if cut < 0 or not whole.endswith("\n"):
        raise Failed("note.malformed", "the note has no signature lines after a blank line")
    text, lines = whole[: cut + 1], whole[cut + 2 : -1].split("\n")
    if text == "\n" or len(lines) > 64:
        raise Failed("note.malformed", "the note text is empty or it carries too many signatures")
    verified: list[TrustedKey] = []
    present = []
    for line in lines:
        match = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if match is None or not valid_key_name(match.group(1)):
            raise Failed("note.malformed", f"not a signature line: {line[:40]!r}")
        raw = b64(match.group(2), "note.malformed", f"the signature of {match.group(1)}")
        if len(raw) < 5:
            raise Failed("note.malformed", f"the signature of {match.group(1)} is too short")
        name, key_id = match.group(1), int.from_bytes(raw[:4], "big")
        present.append(f"{name}/{key_id:08x}")
        for key in keys:
            if key.name == name and key.key_id == key_id:
                if not key.verify(text.encode(), raw[4:]):
                    raise Failed(
                        "note.signature_invalid",
                        f"the signature of {name} (key {key_id:08x}) does not match the note text — the note was "
                        "altered or not signed by that key",
                    )
                if key not in verified:
                    verified.append(key)
    if not verified:
        raise Failed("note.no_trusted_signature", f"signed by no trusted key (it carries: {', '.join(present)})")
    return text, verified


@dataclass(frozen=True)
class WitnessPolicy:
    witnesses: list[TrustedKey]
    quorum: int


def check_cosignatures(data: bytes, policy: WitnessPolicy) -> list[tuple[TrustedKey, int]]:
    """The policy's witnesses whose cosignatures on the (already opened) note verify, with their times."""
    whole = data.decode("utf-8")
    cut = whole.rfind("\n\n")
    text, lines = whole[: cut + 1].encode(), whole[cut + 2 : -1].split("\n")
    found: dict[str, tuple[TrustedKey, int]] = {}
    for line in lines:
        name, _, encoded = line[2:].partition(" ")
        raw = base64.b64decode(encoded)
        for key in policy.witnesses:
            if key.name == name and key.key_id == int.from_bytes(raw[:4], "big"):
                if not key.verify(text, raw[4:]):
                    raise Failed(
                        "note.cosignature_invalid",
                        f"the cosignature of witness {name} does not match the checkpoint — the checkpoint or the "
                        "cosignature was altered",
                    )
                found.setdefault(key.text, (key, int.from_bytes(raw[4:12], "big")))
    if len(found) < policy.quorum:
        names = ", ".join(k.name for k in policy.witnesses)
        raise Failed(
            "checkpoint.witness_quorum",
            f"the checkpoint is cosigned by {len(found)} of the trusted witnesses ({names}); {policy.quorum} needed",
        )
    return list(found.values())


@dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    size: int
    root: bytes
    signed_by: list[TrustedKey]
    cosigned_by: list[tuple[TrustedKey, int]] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "treeSize": self.size,
            "rootHash": base64.b64encode(self.root).decode(),
            "signedBy": [k.text.split("+")[0] + "+" + k.text.split("+")[1] for k in self.signed_by],
            "cosignedBy": [{"witness": k.name, "keyId": f"{k.key_id:08x}", "time": t} for k, t in self.cosigned_by],
        }


def open_checkpoint(
    data: bytes, keys: list[TrustedKey], origin: str | None, witnesses: WitnessPolicy | None = None
) -> SignedCheckpoint:
    """A signed C2SP checkpoint: origin, tree size, root hash, optional extension lines; with `witnesses`,
    cosigned by their quorum."""
    text, signed_by = open_note(data, keys)
    lines = text[:-1].split("\n")
    if len(lines) < 3 or "" in lines:
        raise Failed("checkpoint.malformed", "a checkpoint has at least three non-empty lines")
    size = decimal(lines[1], "checkpoint.malformed", "the tree size")
    root = b64(lines[2], "checkpoint.malformed", "the root hash")
    if len(root) != HASH_SIZE or (size == 0 and root != EMPTY_ROOT):
        raise Failed("checkpoint.malformed", "the root hash is not the SHA-256 root of a tree of that size")
    expected = [origin] if origin is not None else [k.name for k in signed_by]
    if lines[0] not in expected:
        raise Failed(
            "checkpoint.origin_mismatch", f"the checkpoint is for log {lines[0]!r}, not {' or '.join(expected)!r}"
        )
    cosigned = check_cosignatures(data, witnesses) if witnesses is not None else []
    return SignedCheckpoint(lines[0], size, root, signed_by, cosigned)


# --- tlog proofs (c2sp.org/tlog-proof) ---


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]
    checkpoint: bytes
    extra: bytes | None


def parse_tlog_proof(data: bytes) -> TlogProof:
    lines, rest = [], data
    while True:
        end = rest.find(b"\n")
        if end < 0:
            raise Failed("proof.malformed", "the tlog proof ends before its checkpoint")
        line, rest = rest[:end], rest[end + 1 :]
        if not line:
            break
        try:
            lines.append(line.decode("ascii"))
        except UnicodeDecodeError:
            raise Failed("proof.malformed", "the tlog proof's header lines are not ASCII") from None
    if not lines or lines[0] != PROOF_HEADER:
        raise Failed("proof.malformed", f"a tlog proof starts with {PROOF_HEADER!r}")
    position, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = b64(lines[1][6:], "proof.malformed", "the extra data")
        position = 2
    if len(lines) <= position or not lines[position].startswith("index "):
        raise Failed("proof.malformed", "the tlog proof has no index line")
    index = decimal(lines[position][6:], "proof.malformed", "the index")
    hashes = [b64(h, "proof.malformed", "a proof hash") for h in lines[position + 1 :]]
    if any(len(h) != HASH_SIZE for h in hashes) or len(hashes) > 63:
        raise Failed("proof.malformed", "the proof's hashes are not 32-byte SHA-256 hashes, or too many")
    if not rest:
        raise Failed("proof.malformed", "the tlog proof carries no checkpoint")
    return TlogProof(index, hashes, rest, extra)


def parse_consistency_hashes(data: bytes) -> list[bytes]:
    text = data.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            listed = json.loads(text).get("hashes")
        except (ValueError, AttributeError):
            listed = None
        if not isinstance(listed, list) or not all(isinstance(h, str) for h in listed):
            raise Failed("proof.malformed", 'a JSON consistency proof is {"hashes": ["<base64>", ...]}')
        lines = listed
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [b64(line, "proof.malformed", "a proof hash") for line in lines]


# --- tiled logs (c2sp.org/tlog-tiles) ---


def tile_path(level: int | str, index: int, width: int) -> str:
    groups = f"{index:d}"
    groups = "0" * (-len(groups) % 3) + groups
    parts = [groups[i : i + 3] for i in range(0, len(groups), 3)]
    encoded = "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])
    return f"tile/{level}/{encoded}" + ("" if width == TILE_WIDTH else f".p/{width}")


def _read(root: Path, path: str, findings: list[Failed]) -> bytes | None:
    try:
        return (root / path).read_bytes()
    except OSError:
        findings.append(Failed("tile.missing", f"{path} is missing or unreadable"))
        return None


def check_log(directory: Path, size: int, root: bytes) -> list[Failed]:
    """Recompute the log from its entry bundles: every tile must hold the hashes the entries give, and the
    tree of `size` entries must have `root`. One finding per file that does not match."""
    findings: list[Failed] = []
    stack: list[tuple[int, bytes]] = []  # perfect subtrees (height, hash) along the right edge
    expected: dict[int, list[bytes]] = {}  # tile level L >= 1 -> node hashes of tree level 8L
    leaf_level: list[bytes] = []
    for first in range(0, size, TILE_WIDTH):
        width = min(TILE_WIDTH, size - first)
        bundle_path = tile_path("entries", first // TILE_WIDTH, width)
        data = _read(directory, bundle_path, findings)
        entries: list[bytes] | None = None
        if data is not None:
            entries, offset = [], 0
            while offset + 2 <= len(data) and len(entries) < width:
                length = int.from_bytes(data[offset : offset + 2], "big")
                entries.append(data[offset + 2 : offset + 2 + length])
                offset += 2 + length
            if offset != len(data) or len(entries) != width:
                findings.append(Failed("bundle.malformed", f"{bundle_path} does not hold {width} entries"))
                entries = None
        tile = tile_path(0, first // TILE_WIDTH, width)
        stored = _read(directory, tile, findings)
        if stored is not None and len(stored) != width * HASH_SIZE:
            findings.append(Failed("tile.wrong_size", f"{tile} is {len(stored)} bytes, not {width * HASH_SIZE}"))
            stored = None
        if entries is None and stored is None:
            return findings  # nothing left to compute this part of the tree from
        hashes = [leaf_hash(e) for e in entries] if entries is not None else []
        if stored is not None:
            stored_hashes = [stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE)]
            for position, (computed, kept) in enumerate(zip(hashes, stored_hashes)):  # noqa: B905 - 3.9 has no strict=
                if computed != kept:
                    findings.append(
                        Failed(
                            "tile.leaf_mismatch",
                            f"entry {first + position} does not hash to the leaf hash stored for it in {tile} "
                            "(the entry or the tile was altered)",
                        )
                    )
            if entries is None:
                hashes = stored_hashes
        leaf_level.extend(hashes)
        for value in hashes:
            stack.append((0, value))
            while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
                (height, right), (_, left) = stack.pop(), stack.pop()
                stack.append((height + 1, node_hash(left, right)))
                if (height + 1) % 8 == 0:
                    expected.setdefault((height + 1) // 8, []).append(stack[-1][1])
    for level, nodes in sorted(expected.items()):
        for first in range(0, len(nodes), TILE_WIDTH):
            width = min(TILE_WIDTH, len(nodes) - first)
            tile = tile_path(level, first // TILE_WIDTH, width)
            stored = _read(directory, tile, findings)
            if stored is not None and stored != b"".join(nodes[first : first + width]):
                findings.append(Failed("tile.node_mismatch", f"{tile} does not hold the hashes of the tiles below"))
    computed_root = EMPTY_ROOT
    if stack:
        computed_root = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            computed_root = node_hash(left, computed_root)
    if computed_root != root:
        findings.append(Failed("log.root_mismatch", f"the log's {size} entries do not hash to the checkpoint's root"))
    return findings


# --- reports and the command line ---


@dataclass
class Report:
    command: str
    findings: list[Failed] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.findings

    def as_json(self) -> str:
        return json.dumps(
            {
                "verifier": "verbatim-ledger-verifier/1",
                "command": self.command,
                "verified": self.verified,
                "findings": [{"code": f.code, "message": f.message} for f in self.findings],
                **self.facts,
            },
            indent=2,
        )

    def as_text(self) -> str:
        out = [f"ok    {line}" for line in self.lines]
        out += [f"FAIL  {f.code}: {f.message}" for f in self.findings]
        out.append("VERIFIED" if self.verified else f"NOT VERIFIED ({len(self.findings)} finding(s))")
        return "\n".join(out)


def _describe_entry(entry: bytes) -> dict[str, Any]:
    described: dict[str, Any] = {"sha256": hashlib.sha256(entry).hexdigest(), "bytes": len(entry)}
    try:
        parsed = json.loads(entry)
    except ValueError:
        return described
    if isinstance(parsed, dict):
        described.update({k: parsed[k] for k in ("kind", "subject", "at") if isinstance(parsed.get(k), str)})
    return described


def _checkpoint_line(checkpoint: SignedCheckpoint) -> str:
    signers = ", ".join(k.describe() for k in checkpoint.signed_by)
    root = base64.b64encode(checkpoint.root).decode()
    line = f"checkpoint of {checkpoint.origin}: {checkpoint.size} entries, root {root}, signed by {signers}"
    if checkpoint.cosigned_by:
        line += "; cosigned by " + ", ".join(f"{k.describe()} at time {t}" for k, t in checkpoint.cosigned_by)
    return line


def run_inclusion(args: argparse.Namespace, keys: list[TrustedKey], report: Report) -> None:
    proof = parse_tlog_proof(_file(args.proof))
    checkpoint = open_checkpoint(proof.checkpoint, keys, args.origin, _witnesses(args))
    report.facts["checkpoint"] = checkpoint.facts()
    report.lines.append(_checkpoint_line(checkpoint))
    entry = _file(args.entry) if args.entry else proof.extra
    if entry is None:
        raise Unusable("the proof carries no entry (no `extra` line): pass the entry with --entry FILE")
    if args.entry and proof.extra is not None and proof.extra != entry:
        raise Failed("entry.mismatch", "the entry given with --entry differs from the one the proof carries")
    report.facts["entry"] = {"index": proof.index, **_describe_entry(entry)}
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(entry), proof.hashes, checkpoint.root)
    report.lines.append(
        f"entry {proof.index} is in the log of {checkpoint.size} entries (proof of {len(proof.hashes)} hashes)"
    )


def run_consistency(args: argparse.Namespace, keys: list[TrustedKey], report: Report) -> None:
    old = open_checkpoint(_file(args.old), keys, args.origin, _witnesses(args))
    new = open_checkpoint(_file(args.new), keys, args.origin, _witnesses(args))
    report.facts["old"], report.facts["new"] = old.facts(), new.facts()
    report.lines += [_checkpoint_line(old), _checkpoint_line(new)]
    if old.origin != new.origin:
        raise Failed("consistency.origin_mismatch", f"the checkpoints are of two logs: {old.origin}, {new.origin}")
    proof = parse_consistency_hashes(_file(args.proof))
    verify_consistency(old.size, new.size, old.root, new.root, proof)
    report.lines.append(f"the log of {new.size} entries extends the log of {old.size} (proof of {len(proof)} hashes)")


def run_checkpoint(args: argparse.Namespace, keys: list[TrustedKey], report: Report) -> None:
    checkpoint = open_checkpoint(_file(args.checkpoint), keys, args.origin, _witnesses(args))
    report.facts["checkpoint"] = checkpoint.facts()
    report.lines.append(_checkpoint_line(checkpoint))


def run_log(args: argparse.Namespace, keys: list[TrustedKey], report: Report) -> None:
    directory = Path(args.directory)
    checkpoint = open_checkpoint(
        _file(args.checkpoint or str(directory / "checkpoint")), keys, args.origin, _witnesses(args)
    )
    report.facts["checkpoint"] = checkpoint.facts()
    report.lines.append(_checkpoint_line(checkpoint))
    report.findings += check_log(directory, checkpoint.size, checkpoint.root)
    if not report.findings:
        report.lines.append(f"all {checkpoint.size} entries and their tiles hash to the checkpoint's root")


def _file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise Unusable(f"cannot read {path}: {error.strerror}") from None


def _keys(args: argparse.Namespace) -> list[TrustedKey]:
    texts = list(args.key or [])
    for path in args.key_file or []:
        texts += [line for line in _file(path).decode("utf-8", "replace").splitlines() if line.strip()]
    if not texts:
        raise Unusable("no trusted key: pass --key VKEY or --key-file FILE")
    return [parse_vkey(text) for text in texts]


def _witnesses(args: argparse.Namespace) -> WitnessPolicy | None:
    if not args.witness:
        if args.witness_quorum is not None:
            raise Unusable("--witness-quorum without --witness")
        return None
    witnesses = [parse_vkey(text, (COSIGNATURE_V1,)) for text in args.witness]
    quorum = len(witnesses) if args.witness_quorum is None else args.witness_quorum
    if not 1 <= quorum <= len(witnesses):
        raise Unusable(f"--witness-quorum {quorum} of {len(witnesses)} witnesses")
    return WitnessPolicy(witnesses, quorum)


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="standalone_verifier.py",
        description="Verify Verbatim's evidence ledger offline (RFC 9162 / C2SP transparency log).",
        epilog="Exit status: 0 verified, 1 not verified (findings printed), 2 could not verify.",
    )
    commands = main_parser.add_subparsers(dest="command", required=True)

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=helptext, description=helptext)
        sub.add_argument("--key", action="append", metavar="VKEY", help="a trusted log key (repeatable)")
        sub.add_argument("--key-file", action="append", metavar="FILE", help="trusted log keys, one per line")
        sub.add_argument("--origin", help="the log's origin line (default: the name of the key that signed)")
        sub.add_argument("--witness", action="append", metavar="VKEY", help="a trusted witness key (repeatable)")
        sub.add_argument("--witness-quorum", type=int, metavar="N", help="cosignatures needed (default: all)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        return sub

    inclusion = command("inclusion", "check that an entry is in the log (a .tlog-proof file)")
    inclusion.add_argument("proof", help="the .tlog-proof file")
    inclusion.add_argument("--entry", metavar="FILE", help="the entry's bytes (default: the proof's extra data)")
    consistency = command("consistency", "check that the log only grew between two checkpoints")
    consistency.add_argument("old", help="the older signed checkpoint")
    consistency.add_argument("new", help="the newer signed checkpoint")
    consistency.add_argument("proof", help="the consistency proof (base64 hashes one per line, or JSON)")
    checkpoint = command("checkpoint", "check a signed checkpoint")
    checkpoint.add_argument("checkpoint", help="the signed checkpoint")
    log = command("log", "check a copy of the log's files against its checkpoint")
    log.add_argument("directory", help="holds checkpoint, tile/<L>/... and tile/entries/...")
    log.add_argument("--checkpoint", help="a signed checkpoint to check against (default: DIRECTORY/checkpoint)")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = Report(args.command)
    runners = {"inclusion": run_inclusion, "consistency": run_consistency, "checkpoint": run_checkpoint}
    try:
        keys = _keys(args)
        runners.get(args.command, run_log)(args, keys, report)
    except Unusable as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Failed as finding:
        report.findings.append(finding)
    print(report.as_json() if args.json else report.as_text())
    return EXIT_VERIFIED if report.verified else EXIT_NOT_VERIFIED


if __name__ == "__main__":
    sys.exit(main())
