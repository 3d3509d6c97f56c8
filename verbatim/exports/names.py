"""Where things go in an export package: the folder of each recording and the names of its files. The standalone
verifier derives the same names from a recording's sealed manifest (it keeps its own copy of these rules: it
imports nothing from Verbatim), so a file is found by what the ledger says it must be, not by a listing."""

from __future__ import annotations

import re

RECORDINGS = "recordings"
MANIFEST = "manifest.json"
# A part's access-copy manifest, when its access copies were sealed after its evidence (recording manifest v2).
ACCESS_MANIFEST = "access.json"
RECORDING_JSON = "recording.json"
VERDICTS_JSON = "verdicts.json"
CALL_RECORD_JSON = "callrecord.json"
TRAIL = "audit-trail.jsonl"
PROOFS = "proofs"
MEDIA = "media"
CAPTURE = "capture.json"
ACCESS_COPY = "access-copy.ogg"
VIDEO_ACCESS_COPY = "access-copy.mp4"

CHATS = "chats"
CHAT_MESSAGES = "messages.ndjson"
CHAT_JSON = "chat.json"
TRANSCRIPT_HTML = "transcript.html"
TRANSCRIPT_TEXT = "transcript.txt"
BUNDLES = "bundles"
HOSTED = "hosted"

PACKAGE_MANIFEST = "package-manifest.json"
PACKAGE_SIGNATURE = "package-manifest.sig"
PACKAGE_INDEX = "package-index.json"  # a multi-part package: the signed list of its parts
PACKAGE_INDEX_SIGNATURE = "package-index.sig"
README = "README.txt"
INDEX_HTML = "index.html"
EXPORT_JSON = "export/export.json"
EXPORT_TRAIL = "export/audit-trail.jsonl"
EXPORT_PROOFS = "export/proofs"
CHECKPOINT = "ledger/checkpoint"
VKEYS = "keys/log.vkey"
FINGERPRINTS = "keys/fingerprints.txt"
LOADFILE_DAT = "loadfiles/export.dat"
LOADFILE_CSV = "loadfiles/export.csv"
VERIFIER = "verify/verify_export.py"
LEDGER_VERIFIER = "verify/standalone_verifier.py"
VERIFIER_README = "verify/README.txt"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe(text: str, limit: int = 80) -> str:
    """A path component from an id: letters, digits, `.`, `_`, `-`; never empty, never a dot-name."""
    cleaned = _UNSAFE.sub("_", text).strip(".")[:limit]
    return cleaned or "_"


def control_number(position: int) -> str:
    """The document id of the load files (Bates-style, one per recording): VBX0000001 ..."""
    return f"VBX{position + 1:07d}"


def recording_folder(position: int, recording_id: str) -> str:
    return f"{RECORDINGS}/{position + 1:06d}_{safe(recording_id)}"


def part_folder(folder: str, part: int) -> str:
    """Part 0 (the first capture) is the recording's folder; continuations after a salvage go beside it."""
    return folder if part == 0 else f"{folder}/part-{part}"


def evidence_name(track: str, blob_name: str = "") -> str:
    """An evidence object's name in the package: `.flac` for audio, `.h264` for a camera or screen-share stream
    (its sealed blob's extension; the shipped verifier derives the same name from the sealed ledger entry)."""
    extension = "h264" if blob_name.endswith(".h264") else "flac"
    return f"{MEDIA}/evidence-{safe(track)}.{extension}"


def access_name() -> str:
    return f"{MEDIA}/{ACCESS_COPY}"


def video_access_name() -> str:
    return f"{MEDIA}/{VIDEO_ACCESS_COPY}"


def video_stream_access_name(track: str) -> str:
    """One video stream's own MP4 copy (the audio with that stream): `media/access-copy-<track>.mp4`."""
    return f"{MEDIA}/access-copy-{safe(track)}.mp4"


def capture_name() -> str:
    return f"{MEDIA}/{CAPTURE}"


def proof_name(index: int) -> str:
    return f"{PROOFS}/{index}.tlog-proof"


def chat_folder(index: int, key: str) -> str:
    """Chat `index` (from 0, in package order) by its key (SHA-256 of the chat id, 32 hex: Teams chat ids hold
    `:` and `@`)."""
    return f"{CHATS}/{index + 1:06d}_{safe(key)}"


def chat_bundle_folder(day: str, part: int) -> str:
    """A sealed chat-day bundle, by the day and part its `chat.sealed` ledger entry records."""
    return f"{BUNDLES}/{safe(day)}-part-{part:03d}"


def chat_hosted_name(sha256: str) -> str:
    """A hosted content (inline image) by its SHA-256, once per chat."""
    return f"{HOSTED}/{safe(sha256)}"


def part_name(number: int) -> str:
    """A part of a multi-part package: part-0001.zip ..."""
    return f"part-{number:04d}.zip"
