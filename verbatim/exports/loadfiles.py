"""Review-platform load files: a Concordance-style `.dat` and the same fields as CSV, one line per recording and
one per chat (`DOCTYPE` Chat: its native is the HTML transcript, its extracted text `TEXTPATH`).

Concordance `.dat` conventions (the defaults Relativity, Nuix and Reveal read without configuration): UTF-8 with a
byte order mark (Relativity detects the encoding by it), field separator U+0014 (DC4, shown as ¶), text qualifier
U+00FE (þ) around every field, U+00AE (®) in place of a newline inside a field, records ending in CR LF, a
header row; multi-value fields separated by `;`. Paths are relative to the package's root folder, with
backslashes. The CSV is RFC 4180 (comma, double quotes, CR LF) in UTF-8 with a BOM. docs/exports.md lists the
fields and what each maps to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

from verbatim.contracts.exports import PackagedChat, PackagedRecording

FIELD = "\x14"
QUOTE = "\xfe"
NEWLINE = "\xae"
MULTI = ";"
BOM = "\ufeff"

Getter = Callable[[PackagedRecording, str], str]


def _path(value: str | None) -> str:
    return value.replace("/", "\\") if value else ""


def _when(value: str | None) -> str:
    """`2026-12-07T09:30:00.000000Z` as `2026-12-07 09:30:00` (UTC: the TIMEZONE field says so)."""
    return value[:19].replace("T", " ") if value else ""


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


FIELDS: Sequence[tuple[str, Getter]] = (
    ("CONTROLNUMBER", lambda r, _: r.control_number),
    ("RECORDINGID", lambda r, _: r.recording_id),
    ("EXPORTID", lambda _, e: e),
    ("CALLID", lambda r, _: r.call_id or ""),
    ("CALLCHAINID", lambda r, _: r.call_chain_id or ""),
    ("CUSTODIAN", lambda r, _: r.observed_user or ""),
    ("CUSTODIANNAME", lambda r, _: r.observed_user_name or ""),
    ("PARTICIPANTS", lambda r, _: MULTI.join(r.participants)),
    ("DIRECTION", lambda r, _: r.direction),
    ("CALLTYPE", lambda r, _: r.call_type),
    ("DATESTART", lambda r, _: _when(r.started_at)),
    ("DATEEND", lambda r, _: _when(r.ended_at)),
    ("TIMEZONE", lambda _, __: "UTC"),
    ("DURATIONSECONDS", lambda r, _: _number(r.duration_seconds, 3)),
    ("DOCTYPE", lambda _, __: "Audio recording"),
    ("FILEEXTENSION", lambda r, _: "flac" if r.native else ""),
    ("FILENAME", lambda r, _: r.native.rsplit("/", 1)[-1] if r.native else ""),
    ("FILESIZE", lambda r, _: str(r.native_bytes) if r.native else ""),
    ("NATIVEPATH", lambda r, _: _path(r.native)),
    ("SHA256", lambda r, _: r.native_sha256 or ""),
    ("ACCESSCOPYPATH", lambda r, _: _path(r.access_copy)),
    ("FOLDERPATH", lambda r, _: _path(r.folder)),
    ("RECORDINGSTATUS", lambda r, _: r.status),
    ("VERDICT", lambda r, _: r.verdict or ""),
    ("COVERAGE", lambda r, _: _number(r.coverage, 4)),
    ("LEGALHOLDS", lambda r, _: MULTI.join(r.legal_holds)),
    ("RETENTIONUNTIL", lambda r, _: _when(r.retention_until)),
    ("LEDGERENTRY", lambda r, _: str(r.exported_entry)),
    ("CHATID", lambda _, __: ""),
    ("TEXTPATH", lambda _, __: ""),
)

ChatGetter = Callable[[PackagedChat, str], str]

# A chat's values; the fields not named here are empty for a chat.
CHAT_FIELDS: dict[str, ChatGetter] = {
    "CONTROLNUMBER": lambda c, _: c.control_number,
    "EXPORTID": lambda _, e: e,
    "CUSTODIAN": lambda c, _: MULTI.join(c.policy_users),
    "PARTICIPANTS": lambda c, _: MULTI.join(c.member_names or c.members),
    "CALLTYPE": lambda c, _: c.chat_type or "",
    "DATESTART": lambda c, _: _when(c.first_message_at),
    "DATEEND": lambda c, _: _when(c.last_message_at),
    "TIMEZONE": lambda _, __: "UTC",
    "DOCTYPE": lambda _, __: "Chat",
    "FILEEXTENSION": lambda _, __: "html",
    "FILENAME": lambda c, _: c.transcript.rsplit("/", 1)[-1],
    "FILESIZE": lambda c, _: str(c.transcript_bytes),
    "NATIVEPATH": lambda c, _: _path(c.transcript),
    "SHA256": lambda c, _: c.transcript_sha256,
    "FOLDERPATH": lambda c, _: _path(c.folder),
    "LEGALHOLDS": lambda c, _: MULTI.join(c.legal_holds),
    "LEDGERENTRY": lambda c, _: str(c.exported_entry),
    "CHATID": lambda c, _: c.chat_id,
    "TEXTPATH": lambda c, _: _path(c.transcript_text),
}


def _values(rows: Sequence[PackagedRecording], chats: Sequence[PackagedChat], export_id: str) -> list[list[str]]:
    values = [[get(row, export_id) for _, get in FIELDS] for row in rows]
    empty: ChatGetter = lambda _, __: ""  # noqa: E731
    values += [[CHAT_FIELDS.get(name, empty)(chat, export_id) for name, _ in FIELDS] for chat in chats]
    return values


def _dat_field(value: str) -> str:
    flat = value.replace("\r\n", NEWLINE).replace("\n", NEWLINE).replace("\r", NEWLINE)
    # The delimiters cannot be escaped in this format: a value that holds one loses it (ids and names never do).
    return QUOTE + flat.replace(QUOTE, "").replace(FIELD, " ") + QUOTE


def concordance_dat(rows: Sequence[PackagedRecording], export_id: str, chats: Sequence[PackagedChat] = ()) -> bytes:
    lines = [FIELD.join(_dat_field(name) for name, _ in FIELDS)]
    lines += [FIELD.join(_dat_field(value) for value in values) for values in _values(rows, chats, export_id)]
    return (BOM + "\r\n".join(lines) + "\r\n").encode("utf-8")


def csv_file(rows: Sequence[PackagedRecording], export_id: str, chats: Sequence[PackagedChat] = ()) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in FIELDS])
    writer.writerows(_values(rows, chats, export_id))
    return (BOM + out.getvalue()).encode("utf-8")
