"""`verbatim verify <recording-id>` and `verbatim ledger verify|checkpoint`: evidence checks from the shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from verbatim.contracts.evidence import InclusionProof
from verbatim.evidence.verify import RecordingVerification, recording_proof, verify_recording
from verbatim.ledger.chain import verify_checkpoint, verify_inclusion
from verbatim.wiring import current


def register(subparsers: Any) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="verify a sealed recording: media and manifest hashes, ledger entry and its signed checkpoint",
    )
    verify.add_argument("recording_id")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)

    ledger = subparsers.add_parser("ledger", help="the evidence ledger: verify the chain, sign a checkpoint")
    commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    commands.add_parser("verify", help="verify every entry and checkpoint of the chain").set_defaults(
        handler=_ledger_verify
    )
    commands.add_parser("checkpoint", help="sign a checkpoint at the current head now").set_defaults(
        handler=_ledger_checkpoint
    )
    prove = commands.add_parser("prove", help="print the inclusion proof of a recording's sealed entry (JSON)")
    prove.add_argument("recording_id")
    prove.set_defaults(handler=_ledger_prove)
    offline = commands.add_parser(
        "verify-proof", help="verify an inclusion proof file offline, trusting the given key fingerprints"
    )
    offline.add_argument("proof", type=Path)
    offline.add_argument(
        "--trust", action="append", default=[], metavar="FINGERPRINT", help="SHA-256 of a trusted signing key"
    )
    offline.set_defaults(handler=_ledger_verify_proof)


def _verify(args: argparse.Namespace) -> int:
    services = current()
    result = verify_recording(
        args.recording_id, services.recording_blobs, services.ledger, services.trusted_fingerprints
    )
    print(json.dumps(_as_json(result), indent=2) if args.json else render(result))
    return 0 if result.ok else 1


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
        "findings": [{"code": f.code, "message": f.message, "seq": f.seq} for f in result.findings],
        "notes": result.notes,
        "sealed_entry": result.sealed_entry.model_dump(mode="json") if result.sealed_entry else None,
        "checkpoint": result.checkpoint.model_dump(mode="json") if result.checkpoint else None,
    }


def _ledger_verify(args: argparse.Namespace) -> int:
    services = current()
    ledger, trusted = services.ledger, services.trusted_fingerprints
    findings = ledger.verify()
    checkpoints = ledger.store.checkpoints(ledger.chain)
    for checkpoint in checkpoints:
        findings.extend(verify_checkpoint(checkpoint, trusted))
    head = ledger.head_entry()
    print(f"ledger {ledger.chain}: {head.seq if head else 0} entries, {len(checkpoints)} checkpoints")
    for finding in findings:
        print(f"  FAIL  [{finding.code}] {finding.message}")
    print("  ok" if not findings else f"  {len(findings)} problem(s)")
    return 0 if not findings else 1


def _ledger_checkpoint(args: argparse.Namespace) -> int:
    ledger = current().ledger
    checkpoint = ledger.checkpoint()
    if checkpoint is None:
        print(f"ledger {ledger.chain} is empty: nothing to sign")
        return 0
    print(f"ledger {ledger.chain}: checkpoint at entry {checkpoint.seq} signed by {checkpoint.key_id}")
    return 0


def _ledger_prove(args: argparse.Namespace) -> int:
    ledger = current().ledger
    proof = recording_proof(ledger, args.recording_id)
    if proof is None:
        print(f"recording {args.recording_id}: no sealed entry covered by a signed checkpoint yet")
        return 1
    print(proof.model_dump_json(indent=2))
    return 0


def _ledger_verify_proof(args: argparse.Namespace) -> int:
    """Needs no settings, storage or database: the proof file and the trusted fingerprints are enough."""
    proof = InclusionProof.model_validate_json(args.proof.read_bytes())
    findings = verify_inclusion(proof, {f.lower() for f in args.trust})
    entry = proof.entry
    verdict = "VERIFIED" if not findings else "NOT VERIFIED"
    print(f"entry {entry.seq} ({entry.kind} {entry.subject}) in checkpoint {proof.checkpoint.seq}: {verdict}")
    for finding in findings:
        print(f"  FAIL  [{finding.code}] {finding.message}")
    return 0 if not findings else 1
