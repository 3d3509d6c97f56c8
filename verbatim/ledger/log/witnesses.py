"""Asking witnesses to cosign each new checkpoint (the client side of c2sp.org/tlog-witness).

For each configured witness the log POSTs `<prefix>/add-checkpoint` with the size of the checkpoint it believes
the witness cosigned last and a consistency proof from that size. A witness that remembers another size answers
409 with that size (`text/x.tlog.size`); the log proves from there instead (once). Cosignatures that verify
against the witness's key are added to the checkpoint before it is stored; a witness that is down or refuses
costs only its own cosignature (the checkpoint is signed, stored and anchored regardless, and the next one asks
again): availability of the log never depends on a third party. Verifiers decide how many cosignatures they
require (`verbatim.ledger.witness.WitnessPolicy`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from verbatim.ledger.note import NoteError, NoteSignature, NoteVerifier, add_signatures, parse_note
from verbatim.ledger.witness import DECIMAL, add_checkpoint_body, parse_signature_lines

log = logging.getLogger(__name__)

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Witness:
    """A witness: its cosignature/v1 key and its submission prefix (add-checkpoint is under it)."""

    verifier: NoteVerifier
    url: str

    @classmethod
    def parse(cls, text: str) -> Witness:
        """`<vkey> <submission prefix URL>` (LEDGER_WITNESSES holds a list of these)."""
        vkey, _, url = text.strip().partition(" ")
        verifier = NoteVerifier.from_vkey(vkey)
        if not verifier.is_cosigner:
            raise NoteError("note.bad_key", f"witness {verifier.name}: not a cosignature/v1 key (type 0x04)")
        url = url.strip()
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise NoteError("note.bad_key", f"witness {verifier.name}: its URL must be https (or loopback http)")
        return cls(verifier, url.rstrip("/"))


Prove = Callable[[int], list[bytes]]
"""A consistency proof from an older tree size to the checkpoint's."""


class Witnesses:
    """The log's witnesses, asked in turn for each checkpoint the maintenance signs."""

    def __init__(self, witnesses: Sequence[Witness], *, timeout: float = 10.0) -> None:
        self.witnesses = tuple(witnesses)
        self._timeout = timeout
        self._last: dict[str, int] = {}  # per witness URL: the size it last cosigned, as far as this process knows
        self._lock = threading.Lock()

    def cosign(self, note: bytes, size: int, previous_size: int, prove: Prove) -> bytes:
        """`note` with the cosignatures of every witness that gave one (others are logged and skipped)."""
        cosignatures: list[NoteSignature] = []
        text = parse_note(note).text.encode()
        for witness in self.witnesses:
            try:
                lines = self._ask(witness, note, size, previous_size, prove)
            except (httpx.HTTPError, NoteError, WitnessRefused) as error:
                log.warning("ledger checkpoint %s: witness %s gave no cosignature: %s", size, witness.url, error)
                continue
            own = [
                s
                for s in lines
                if (s.name, s.key_id) == (witness.verifier.name, witness.verifier.key_id)
                and witness.verifier.verify(text, s.signature)
            ]
            if not own:
                log.warning("ledger checkpoint %s: witness %s answered no valid cosignature", size, witness.url)
                continue
            cosignatures.append(own[0])
        return add_signatures(note, cosignatures) if cosignatures else note

    def _ask(self, witness: Witness, note: bytes, size: int, previous_size: int, prove: Prove) -> list[NoteSignature]:
        with self._lock:
            old = self._last.get(witness.url, previous_size)
        for _ in range(2):
            if old > size:
                raise WitnessRefused(f"it has cosigned a tree of {old} entries, larger than this checkpoint's {size}")
            body = add_checkpoint_body(old, prove(old) if 0 < old < size else [], note)
            answer = httpx.post(
                f"{witness.url}/add-checkpoint", content=body, timeout=self._timeout, follow_redirects=False
            )
            if answer.status_code == 200 and len(answer.content) <= MAX_RESPONSE_BYTES:
                with self._lock:
                    self._last[witness.url] = size
                return parse_signature_lines(answer.content)
            if answer.status_code == 409 and answer.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
                known = answer.text.strip()
                if not DECIMAL.fullmatch(known) or int(known) == old:
                    raise WitnessRefused(f"409 for size {old}: {known[:40]!r} (a fork at the same size?)")
                old = int(known)
                continue
            raise WitnessRefused(f"{answer.status_code} {answer.text[:200]!r}")
        raise WitnessRefused(f"it keeps answering 409 (last: size {old})")


class WitnessRefused(Exception):
    """A witness answered something other than cosignatures."""
