"""`index.html`: the human-readable index of a package, opened from the unpacked folder with no network and no
scripts — a Content-Security-Policy that allows nothing but its own inline style (by hash) and media from the
package, and an `<audio>` player per recording for its access copy."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape

from verbatim.contracts.exports import PackagedChat, PackagedRecording, PackageManifest

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1200px}
h1{font-size:1.4rem;margin:0 0 .25rem}
.meta{color:#555;margin:0 0 1.5rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid #ddd}
th{background:#f3f4f6;font-weight:600}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.missing{color:#b00020;font-weight:600}.partial{color:#9a6700;font-weight:600}.recorded{color:#1a7f37}
audio{width:260px}
code{font-size:12px}
footer{margin-top:2rem;color:#555;font-size:12px}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; media-src 'self' file:; base-uri 'none'; form-action 'none'"
)


def _text(value: object) -> str:
    return escape("" if value is None else str(value))


def _when(value: str | None) -> str:
    return f"{value[:10]} {value[11:19]} UTC" if value else ""


def _row(row: PackagedRecording) -> str:
    verdict = row.verdict or "n/a"
    coverage = f" ({row.coverage:.0%})" if row.coverage is not None else ""
    player = (
        f'<audio controls preload="metadata" src="{_text(row.access_copy)}" '
        f'aria-label="access copy of {_text(row.control_number)}"></audio>'
        if row.access_copy
        else "<em>no access copy</em>"
    )
    native = f'<a href="{_text(row.native)}">lossless FLAC</a>' if row.native else ""
    holds = f"<br>held: {_text(', '.join(row.legal_holds))}" if row.legal_holds else ""
    return (
        f'<tr id="{_text(row.control_number)}">'
        f"<td><strong>{_text(row.control_number)}</strong><br><code>{_text(row.recording_id)}</code></td>"
        f'<td class="num">{_text(_when(row.started_at))}<br>{row.duration_seconds:.1f} s</td>'
        f"<td>{_text(row.observed_user_name or row.observed_user)}<br><small>{_text(row.observed_user)}</small></td>"
        f"<td>{'<br>'.join(_text(p) for p in row.participants)}</td>"
        f"<td>{_text(row.direction)}<br>{_text(row.call_type)}</td>"
        f'<td class="{_text(verdict)}">{_text(verdict)}{_text(coverage)}<br><small>{_text(row.status)}</small>'
        f"{holds}</td>"
        f'<td>{player}<br>{native} · <a href="{_text(row.folder)}/">files</a></td>'
        "</tr>"
    )


def _chat_row(chat: PackagedChat) -> str:
    names = chat.member_names or chat.members
    holds = f"<br>held: {_text(', '.join(chat.legal_holds))}" if chat.legal_holds else ""
    return (
        f'<tr id="{_text(chat.control_number)}">'
        f"<td><strong>{_text(chat.control_number)}</strong><br><code>{_text(chat.chat_id)}</code></td>"
        f'<td class="num">{_text(_when(chat.first_message_at))}<br>to {_text(_when(chat.last_message_at))}</td>'
        f"<td>{_text(chat.topic or chat.chat_type)}</td>"
        f"<td>{'<br>'.join(_text(n) for n in names)}</td>"
        f"<td>{chat.messages} message(s), {chat.versions} version(s){holds}</td>"
        f'<td><a href="{_text(chat.transcript)}">transcript</a> · <a href="{_text(chat.transcript_text)}">text</a>'
        f' · <a href="{_text(chat.folder)}/">files</a></td>'
        "</tr>"
    )


def _chats_table(chats: Sequence[PackagedChat]) -> str:
    if not chats:
        return ""
    body = "\n".join(_chat_row(chat) for chat in chats)
    return f"""<h2>Chats</h2>
<table>
<thead><tr><th>Document</th><th>Messages from, to</th><th>Topic</th><th>Members</th><th>Content</th>
<th>Read</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
"""


def index_html(
    manifest: PackageManifest, rows: Sequence[PackagedRecording], chats: Sequence[PackagedChat] = ()
) -> bytes:
    title = manifest.title or f"Export {manifest.export_id}"
    requester = manifest.requested_by.name or manifest.requested_by.subject
    body = "\n".join(_row(row) for row in rows)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>{_text(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{_text(title)}</h1>
<p class="meta">Export <code>{_text(manifest.export_id)}</code>, created {_text(_when(manifest.created_at))} by
{_text(requester)}. Reason: {_text(manifest.reason)}.<br>{len(rows)} recording(s), {len(chats)} chat(s).
Ledger: {_text(manifest.log_origin)}, checkpoint of {manifest.checkpoint_size} entries.
How to verify this package: README.txt.</p>
<table>
<thead><tr><th>Document</th><th>Start, length</th><th>Observed user</th><th>Participants</th><th>Direction</th>
<th>Verdict</th><th>Listen</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
{_chats_table(chats)}
<footer>Generated by Verbatim. This page loads nothing from the network and runs no scripts.</footer>
</body>
</html>
""".encode()
