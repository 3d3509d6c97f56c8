"""A local transparency-log witness (c2sp.org/tlog-witness) on 127.0.0.1: `POST /add-checkpoint` checks the
log's signature and a consistency proof from the size it last cosigned, persists the new checkpoint and answers
an Ed25519 cosignature/v1 line.

Azure deployments point `LEDGER_WITNESSES` at independent witnesses (operated by someone other than the
recording firm: an auditor, a group entity, a public witness network); here nothing outside is reachable, so
the tests run this one. It follows the protocol's status codes: 404 unknown origin, 403 no trusted log
signature, 400 bad request or old size above the checkpoint's, 409 (`text/x.tlog.size` body) old size not the
one it cosigned last, 409 same size with another root, 422 consistency proof that does not verify.

    python -m devstack.witness --port 8319 --dir .devstack/witness --name witness.local/w1 --log-vkey <vkey>
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from devstack.processes import ManagedProcess, tcp_ready
from verbatim.ledger.checkpoint import open_checkpoint, parse_checkpoint
from verbatim.ledger.merkle import ProofError, verify_consistency
from verbatim.ledger.note import NoteError, NoteVerifier, parse_note
from verbatim.ledger.witness import Cosigner, parse_add_checkpoint_body

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_BODY_BYTES = 64 * 1024


def ensure_witness_key(directory: Path, name: str) -> Cosigner:
    """The witness's Ed25519 key, generated once into `directory/witness.key` (raw 32 bytes, mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "witness.key"
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(Cosigner(name, key).private_bytes())
    return Cosigner(name, ed25519.Ed25519PrivateKey.from_private_bytes(path.read_bytes()))


class WitnessState:
    """Per log origin, the latest cosigned (size, root); checked and replaced atomically, persisted before any
    answer (the race the protocol warns about: two requests must never roll the state back)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.logs: dict[str, tuple[int, str]] = {}
        if path.exists():
            self.logs = {k: (v[0], v[1]) for k, v in json.loads(path.read_text()).items()}

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.logs))
        os.replace(temporary, self.path)


class Refused(Exception):
    def __init__(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.content_type = content_type


def add_checkpoint(
    body: bytes, cosigner: Cosigner, logs: dict[str, list[NoteVerifier]], state: WitnessState, now: int
) -> bytes:
    """The protocol's add-checkpoint: the cosignature line(s), or Refused with the status the spec names."""
    try:
        request = parse_add_checkpoint_body(body)
        note = parse_note(request.checkpoint)
        checkpoint = parse_checkpoint(note.text)
    except NoteError as error:
        raise Refused(400, str(error)) from None
    verifiers = logs.get(checkpoint.origin)
    if verifiers is None:
        raise Refused(404, f"unknown log {checkpoint.origin!r}")
    try:
        open_checkpoint(request.checkpoint, verifiers, checkpoint.origin)
    except NoteError as error:
        raise Refused(403, str(error)) from None
    if request.old_size > checkpoint.size:
        raise Refused(400, "the old size is larger than the checkpoint's")
    with state.lock:
        size, root_b64 = state.logs.get(checkpoint.origin, (0, ""))
        if request.old_size != size:
            raise Refused(409, f"{size}\n", "text/x.tlog.size")
        root = base64.b64decode(root_b64) if root_b64 else b""
        if size == checkpoint.size and size > 0:
            if root != checkpoint.root_hash:
                raise Refused(409, "a checkpoint of this size with another root hash was cosigned")
        elif size == 0:
            if request.proof:
                raise Refused(400, "the proof must be empty when the old size is zero")
        else:
            try:
                verify_consistency(size, checkpoint.size, root, checkpoint.root_hash, list(request.proof))
            except ProofError as error:
                raise Refused(422, f"the consistency proof does not verify: {error}") from None
        state.logs[checkpoint.origin] = (checkpoint.size, base64.b64encode(checkpoint.root_hash).decode())
        state.save()
    return cosigner.cosign(note.text, now).line().encode()


def serve(port: int, cosigner: Cosigner, logs: dict[str, list[NoteVerifier]], state: WitnessState) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/add-checkpoint":
                self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(400, b"a body of 1 to 65536 bytes\n", "text/plain; charset=utf-8")
                return
            try:
                answer = add_checkpoint(self.rfile.read(length), cosigner, logs, state, int(time.time()))
            except Refused as refused:
                self._answer(refused.status, refused.body.encode(), refused.content_type)
                return
            self._answer(200, answer, "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def witness(
    port: int, directory: Path, name: str, log_vkeys: list[str], log_path: Path | None = None
) -> ManagedProcess:
    """The witness as a managed child process (its key is generated now, so callers can read its vkey)."""
    ensure_witness_key(directory, name)
    argv = [sys.executable, "-m", "devstack.witness", "--port", str(port), "--dir", str(directory), "--name", name]
    for vkey in log_vkeys:
        argv += ["--log-vkey", vkey]
    return ManagedProcess(
        name="witness", argv=argv, ready=tcp_ready(port), cwd=REPO_ROOT, log_path=log_path, ports=(port,)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="a local transparency-log witness (c2sp.org/tlog-witness)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the witness's key name, e.g. witness.local/w1")
    parser.add_argument("--log-vkey", action="append", default=[], help="a log key it accepts checkpoints of")
    args = parser.parse_args()
    logs: dict[str, list[NoteVerifier]] = {}
    for vkey in args.log_vkey:
        verifier = NoteVerifier.from_vkey(vkey)
        logs.setdefault(verifier.name, []).append(verifier)
    serve(args.port, ensure_witness_key(args.dir, args.name), logs, WitnessState(args.dir / "state.json"))


if __name__ == "__main__":
    main()
