"""The plain-text README a recipient reads first: what the package is, what is inside, how to verify it."""

from __future__ import annotations

from collections.abc import Sequence

from verbatim.contracts.exports import PackageManifest


def readme_text(manifest: PackageManifest, keys: Sequence[tuple[str, str]]) -> bytes:
    requester = manifest.requested_by.name or manifest.requested_by.subject
    key_lines = "\n".join(f"    {fingerprint}\n      {vkey}" for vkey, fingerprint in keys)
    text = f"""VERBATIM EXPORT {manifest.export_id}
{manifest.title or ""}

Created {manifest.created_at} by {requester}.
Reason given: {manifest.reason}
Recordings: {len(manifest.recordings)}
Chats: {len(manifest.chats)}

This package holds Microsoft Teams call recordings captured by a compliance recording system (Verbatim), each
exactly as it was sealed when the call ended, with everything needed to check that nothing has been changed,
added or left out since - without contacting the firm that produced it.
{_part_note(manifest)}
WHAT IS INSIDE

  index.html                 open it in a browser: every recording with its participants, times, verdict and a
                             player (it uses no network and runs no scripts)
  recordings/NNNNNN_<id>/    one folder per recording:
      manifest.json          the sealed manifest: media names, sizes, SHA-256 of every object and block, the
                             call, participants, retention and legal holds
      media/evidence-*.flac  the lossless evidence (FLAC), byte for byte as sealed
      media/evidence-*.h264  a camera's or a screen share's video (H.264) as the platform sent it, as sealed
      media/access-copy.ogg  the access copy (Opus) made from it, for listening
      media/access-copy.mp4  with video: the access copy's audio with the screen share and cameras, for watching
      media/access-copy-*.mp4  with video: the audio with one stream (a camera or the screen share), for watching
      media/capture.json     the recorder's own record of what it captured
      recording.json         the recording's metadata, verdict and coverage (was the call fully recorded?)
      verdicts.json          the completeness verdicts of the call, one per recorded (policy) user
      callrecord.json        Microsoft Graph's call record of the call
      audit-trail.jsonl      every ledger entry about the recording up to this export, one per line, as stored:
                             sealed, accessed (by whom, why), held, retention extended, exported ...
      proofs/<n>.tlog-proof  for each of those entries, a proof that it is in the ledger (see below)
      part-N/                a later part of the same recording, when the recorder was restarted mid-call
  chats/NNNNNN_<key>/        one folder per chat (when the export includes chats; <key>: SHA-256 of the chat id):
      transcript.html        every message with all its captured versions (edits, deletions), for reading
      transcript.txt         the same as plain text
      chat.json              the same as structured JSON, each version pointing at its sealed line
      bundles/<day>-part-NNN/ a sealed chat-day: manifest.json (every line's SHA-256, members, retention, holds)
                             and messages.ndjson (one line per message version, with the exact JSON Microsoft
                             Graph delivered), byte for byte as sealed
      hosted/<sha256>        inline images of the messages, by their SHA-256
      audit-trail.jsonl      every ledger entry about the chat up to this export (chat.sealed, read, held,
                             exported ...), and proofs/<n>.tlog-proof for each
  loadfiles/export.dat       Concordance load file (UTF-8, delimiters U+0014 and U+00FE) for review platforms
  loadfiles/export.csv       the same fields as CSV
  export/                    this export's request (who, why, what) and its own ledger entry with its proof
  ledger/checkpoint          the signed state of the ledger every proof in this package leads to
  keys/                      the ledger's public key(s) and their SHA-256 fingerprints
  package-manifest.json      every other file with its size and SHA-256
  package-manifest.sig       the signature over package-manifest.json (a C2SP signed note by the ledger key)
  verify/                    the verifier (Python 3 and the `cryptography` package, nothing else)

HOW TO VERIFY

  python3 -m pip install cryptography
  python3 verify/verify_export.py .                 (in the unpacked folder)
  python3 verify/verify_export.py export.zip        (or the ZIP itself)

It checks: every file against package-manifest.json and its signature; every ledger entry's inclusion proof and
the checkpoint's signature; each recording's manifest and media against the hashes its `sealed` ledger entry
holds; each chat bundle's manifest and messages against its `chat.sealed` ledger entry (an altered message is
named by its line and message id) and each inline image against the bundle manifest; and that each recording's
and chat's audit trail is complete - the `exported` entry written when this package was made lists every earlier
entry about it, so one left out is named. The transcripts and chat.json are renderings of the sealed lines.
It prints each problem, exits 0 when everything verifies and 1 when anything does not; --quiet prints only
problems, --json one JSON object.

TRUST: the verifier uses the key(s) in keys/ unless you give it one with --key or --fingerprint. Keys shipped
inside a package prove nothing by themselves: compare these fingerprints with the ones the firm publishes or
gives you separately (for example `verbatim ledger key` run by the firm):

{key_lines}

Formats: RFC 9162 Merkle tree; C2SP tlog-checkpoint, signed-note and tlog-proof (https://c2sp.org); ZIP64.
"""
    return text.replace("\n", "\r\n").encode("utf-8")


def verifier_readme() -> bytes:
    return (
        b"verify_export.py checks this package offline; standalone_verifier.py (which it uses) checks ledger proofs\r\n"
        b"and checkpoints on their own. Both need Python 3.9 or newer and the `cryptography` package only.\r\n"
        b"Run: python3 verify/verify_export.py PACKAGE [--key VKEY | --fingerprint SHA256] [--quiet] [--json]\r\n"
    )


def _part_note(manifest: PackageManifest) -> str:
    """For a part of a multi-part package: what the part is and how the whole is checked."""
    part = manifest.part
    if part is None:
        return ""
    return f"""
THIS IS PART {part.number} OF {part.of}

The export was too large for one file: it is {part.of} numbered parts (part-0001.zip ...) beside
{part.index} and its signature package-index.sig, which list every part with its size and the SHA-256 of its
package-manifest.json, and the recordings and chats in it. Each recording or chat is in exactly one part. This
part verifies on its own (below); to verify the whole export, put every part, {part.index} and
package-index.sig in one folder and give that folder to the verifier instead of this part.
"""
