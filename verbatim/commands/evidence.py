"""`verbatim verify <recording-id | chat-id>` and `verbatim ledger …`: evidence checks and the ledger (v2 log)
from the shell — audit the log, sign a checkpoint, print the log's key, prove an entry, prove consistency, and
verify a proof offline. A Teams chat id (`19:…`) verifies every sealed bundle of that chat (docs/chat.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from verbatim.chat.verify import verify_chat
from verbatim.contracts.evidence import InclusionProof
from verbatim.evidence.ledger_entries import sealed_entry
from verbatim.evidence.verify import RecordingVerification, verify_recording
from verbatim.ledger import standalone_verifier
from verbatim.ledger.chain import verify_inclusion
from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.anchors import check_anchors
from verbatim.ledger.log.migration import check_migration
from verbatim.ledger.log.witnesses import Witness
from verbatim.ledger.note import NoteError
from verbatim.ledger.tiles import check_tiles
from verbatim.ledger.witness import WitnessPolicy, check_cosignatures
from verbatim.platform.errors import VerbatimError
from verbatim.wiring import current


def register(subparsers: Any) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="verify a sealed recording: media and manifest hashes, its ledger entry's inclusion proof in a "
        "signed checkpoint, and the log against its anchors; or every sealed bundle of a chat given its id (19:…)",
    )
    verify.add_argument("recording_id", metavar="recording_id|chat_id")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)

    ledger = subparsers.add_parser("ledger", help="the evidence ledger (a transparency log): audit, sign, prove")
    commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    commands.add_parser(
        "verify",
        help="audit the log: its tiles against its entries, the latest checkpoint, the anchors, the v1 migration",
    ).set_defaults(handler=_ledger_verify)
    commands.add_parser("checkpoint", help="sign a checkpoint of everything appended, now").set_defaults(
        handler=_ledger_checkpoint
    )
    commands.add_parser("key", help="print the log's verifier key(s) (C2SP vkeys) to give auditors").set_defaults(
        handler=_ledger_key
    )
    prove = commands.add_parser(
        "prove", help="print the C2SP tlog-proof of a recording's sealed entry, or of an entry index"
    )
    prove.add_argument("target", help="a recording id, or an entry index")
    prove.add_argument("--tree-size", type=int, help="prove against the checkpoint of this size (default: latest)")
    prove.add_argument("--json", action="store_true", help="print the proof as JSON instead")
    prove.set_defaults(handler=_ledger_prove)
    consistency = commands.add_parser("consistency", help="print the consistency proof between two tree sizes")
    consistency.add_argument("--from", dest="old", type=int, required=True, help="the older tree size")
    consistency.add_argument("--to", dest="new", type=int, help="the newer, signed tree size (default: latest)")
    consistency.set_defaults(handler=_ledger_consistency)
    offline = commands.add_parser(
        "verify-proof",
        help="verify a proof file offline: a C2SP tlog-proof with --key, or a v1 proof (JSON) with --trust",
    )
    offline.add_argument("proof", type=Path)
    offline.add_argument("--key", action="append", default=[], metavar="VKEY", help="a trusted log key (C2SP vkey)")
    offline.add_argument(
        "--witness", action="append", default=[], metavar="VKEY", help="a trusted witness key (cosignature/v1)"
    )
    offline.add_argument("--witness-quorum", metavar="N", help="witness cosignatures needed (default: all)")
    offline.add_argument(
        "--trust", action="append", default=[], metavar="FINGERPRINT", help="SHA-256 of a trusted v1 signing key"
    )
    offline.set_defaults(handler=_ledger_verify_proof)


def _verify(args: argparse.Namespace) -> int:
    services = current()
    if args.recording_id.startswith("19:"):
        return _verify_chat(args)
    result = verify_recording(args.recording_id, services.recording_blobs, services.ledger, services.ledger_anchors)
    print(json.dumps(_as_json(result), indent=2) if args.json else render(result))
    return 0 if result.ok else 1


def _verify_chat(args: argparse.Namespace) -> int:
    services = current()
    chat = verify_chat(args.recording_id, services.chat.blobs, services.ledger, services.ledger_anchors)
    if args.json:
        print(
            json.dumps(
                {
                    "chat_id": chat.chat_id,
                    "verified": chat.ok,
                    "bundles": chat.bundles,
                    "versions": chat.versions,
                    "findings": [{"code": f.code, "message": f.message, "seq": f.seq} for f in chat.findings],
                    "notes": chat.notes,
                },
                indent=2,
            )
        )
    else:
        lines = [f"chat {chat.chat_id}: {'VERIFIED' if chat.ok else 'NOT VERIFIED'} ({chat.bundles} bundles)"]
        lines += [f"  ok    {note}" for note in chat.notes]
        lines += [f"  FAIL  [{finding.code}] {finding.message}" for finding in chat.findings]
        print("\n".join(lines))
    return 0 if chat.ok else 1


def render(result: RecordingVerification) -> str:
    verdict = "VERIFIED" if result.ok else "NOT VERIFIED"
    lines = [f"recording {result.recording_id}: {verdict}"]
    lines += [f"  ok    {note}" for note in result.notes]
    lines += [f"  FAIL  [{finding.code}] {finding.message}" for finding in result.findings]
    return "\n".join(lines)


def _as_json(result: RecordingVerification) -> dict[str, Any]:
    return {
        "recording_id": result.recording_id,
        "verified": result.ok,
        "findings": [{"code": f.code, "message": f.message, "index": f.seq} for f in result.findings],
        "notes": result.notes,
        "sealed_entry": result.sealed_entry.model_dump(mode="json", by_alias=True) if result.sealed_entry else None,
        "proof": result.proof.model_dump(mode="json", by_alias=True) if result.proof else None,
        "parts": [entry.model_dump(mode="json", by_alias=True) for entry in result.parts],
    }


def _ledger_verify(args: argparse.Namespace) -> int:
    services = current()
    log = services.ledger
    findings: list[tuple[str, str]] = []
    notes: list[str] = []
    note = log.latest_checkpoint()
    if note is None:
        print(f"ledger {log.origin}: {log.size()} entries, no checkpoint signed yet (`verbatim ledger checkpoint`)")
        return 0
    try:
        size = open_checkpoint(note, log.keys.verifiers, log.origin).checkpoint.size
    except NoteError as error:
        findings.append((error.code, f"the latest checkpoint: {error}"))
        size = 0
    if size:
        tiles = list(check_tiles(size, lambda ref: log.tile(ref.path), lambda ref: log.tile(ref.path)))
        findings += [(f.code, f"{f.path}: {f.message}") for f in tiles]
        if not tiles:
            notes.append(f"the tiles and entries of the tree of size {size} in blob agree with each other")
        witnesses = [Witness.parse(text).verifier for text in services.settings.ledger_witnesses]
        if witnesses:
            try:
                cosigned = check_cosignatures(note, WitnessPolicy(tuple(witnesses), 0))
                names = ", ".join(c.name for c in cosigned) or "none"
                notes.append(
                    f"the latest checkpoint is cosigned by {len(cosigned)} of {len(witnesses)} witnesses: {names}"
                )
            except NoteError as error:
                findings.append((error.code, f"the latest checkpoint: {error}"))
        anchored, anchor_notes = check_anchors(note, log, services.ledger_anchors, log.keys.verifiers, log.origin)
        findings += [(f.code, f.message) for f in anchored]
        notes += anchor_notes
    migrated, migration_notes = check_migration(
        log, services.chain_ledger.store.chains(), services.trusted_fingerprints
    )
    findings += [(f.code, f.message) for f in migrated]
    notes += migration_notes
    print(f"ledger {log.origin}: {log.size()} entries, latest checkpoint of size {size}")
    for text in notes:
        print(f"  ok    {text}")
    for code, message in findings:
        print(f"  FAIL  [{code}] {message}")
    return 0 if not findings else 1


def _ledger_checkpoint(args: argparse.Namespace) -> int:
    log = current().ledger
    note = log.checkpoint()
    if note is None:
        print(f"ledger {log.origin} is empty: nothing to sign")
        return 0
    print(f"ledger {log.origin}: checkpoint of size {log.verify_checkpoint(note)} signed")
    sys.stdout.write(note.decode())
    return 0


def _ledger_key(args: argparse.Namespace) -> int:
    for verifier in current().ledger.keys.verifiers:
        print(verifier.vkey())
    return 0


def _ledger_prove(args: argparse.Namespace) -> int:
    log = current().ledger
    try:
        if args.target.isascii() and args.target.isdigit():
            index = int(args.target)
        else:
            entry = sealed_entry(log, args.target)
            if entry is None:
                print(f"recording {args.target}: no sealed entry in the ledger", file=sys.stderr)
                return 1
            index = entry.index
        if args.json:
            print(log.prove(index, args.tree_size).model_dump_json(by_alias=True, indent=2))
        else:
            sys.stdout.write(log.tlog_proof(index, args.tree_size).decode())
    except VerbatimError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 1
    return 0


def _ledger_consistency(args: argparse.Namespace) -> int:
    try:
        proof = current().ledger.consistency(args.old, args.new)
    except VerbatimError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 1
    print(proof.model_dump_json(by_alias=True, indent=2))
    return 0


def _ledger_verify_proof(args: argparse.Namespace) -> int:
    """Needs no settings, storage or database: the proof file and the trusted keys are enough."""
    data = args.proof.read_bytes()
    if not data.lstrip().startswith(b"{"):
        keys = [arg for key in args.key for arg in ("--key", key)]
        keys += [arg for key in args.witness for arg in ("--witness", key)]
        keys += ["--witness-quorum", args.witness_quorum] if args.witness_quorum else []
        return standalone_verifier.main(["inclusion", str(args.proof), *keys])
    proof = InclusionProof.model_validate_json(data)  # a v1 proof, from before the upgrade
    findings = verify_inclusion(proof, {f.lower() for f in args.trust})
    entry = proof.entry
    verdict = "VERIFIED" if not findings else "NOT VERIFIED"
    print(f"entry {entry.seq} ({entry.kind} {entry.subject}) in checkpoint {proof.checkpoint.seq}: {verdict}")
    for finding in findings:
        print(f"  FAIL  [{finding.code}] {finding.message}")
    return 0 if not findings else 1
