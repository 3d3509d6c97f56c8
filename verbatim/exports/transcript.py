"""A chat as a reviewer reads it, made from its sealed `messages.ndjson` lines: every message in the order it was
posted, each with all its captured versions (posted, edited, deleted) — as structured JSON (`chat.json`), as a
self-contained HTML page (`transcript.html`: no scripts, nothing from the network, inline images from the
package) and as plain text (`transcript.txt`, the extracted text review platforms index). These are renderings:
the evidence is the sealed lines, which the verifier checks against the ledger."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from pydantic import JsonValue

from verbatim.chat.messages import MessageRejected, parse_version
from verbatim.exports.html import CSP, STYLE, STYLE_HASH


@dataclass
class VersionLine:
    """One sealed line: a version of a message, where it is in the package."""

    bundle: str
    line: int
    record: dict[str, Any]  # the canonical line (ids, state, times, source, raw)
    hosted: list[str] = field(default_factory=list)  # package paths of the inline images


@dataclass
class Message:
    message_id: str
    created: str
    sender_id: str | None
    sender_name: str | None
    versions: list[tuple[VersionLine, str, str]]  # (line, content type, plain text)

    @property
    def state(self) -> str:
        return str(self.versions[-1][0].record.get("state", "posted"))


def messages_of(lines: Sequence[VersionLine]) -> list[Message]:
    """Versions grouped by message, messages by creation, versions by modification."""
    by_id: dict[str, Message] = {}
    for line in lines:
        record = line.record
        try:
            version = parse_version(str(record.get("raw", "")))
            content_type, text, name = version.content_type, version.text, version.sender_name
        except MessageRejected:
            content_type, text, name = "text", "(the captured JSON could not be read)", None
        message = by_id.setdefault(
            str(record["messageId"]),
            Message(str(record["messageId"]), str(record.get("created", "")), record.get("senderId"), name, []),
        )
        message.sender_name = message.sender_name or name
        message.versions.append((line, content_type, text))
    for message in by_id.values():
        message.versions.sort(key=lambda v: (str(v[0].record.get("lastModified", "")), str(v[0].record["etag"])))
    return sorted(by_id.values(), key=lambda m: (m.created, m.message_id))


def chat_json(summary: dict[str, JsonValue], messages: Sequence[Message]) -> bytes:
    document: dict[str, JsonValue] = {
        "chat": summary,
        "messages": [
            {
                "messageId": m.message_id,
                "senderId": m.sender_id,
                "senderName": m.sender_name,
                "created": m.created,
                "state": m.state,
                "versions": [
                    {
                        "etag": line.record["etag"],
                        "state": line.record["state"],
                        "lastModified": line.record["lastModified"],
                        "capturedAt": line.record.get("capturedAt"),
                        "source": line.record.get("source"),
                        "contentType": content_type,
                        "text": text,
                        "hostedContents": list(line.hosted),
                        "sealedIn": {"bundle": line.bundle, "line": line.line},
                    }
                    for line, content_type, text in m.versions
                ],
            }
            for m in messages
        ],
    }
    return (json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def _when(value: object) -> str:
    text = str(value or "")
    return f"{text[:10]} {text[11:19]} UTC" if len(text) >= 19 else text


def transcript_text(title: str, summary: dict[str, JsonValue], messages: Sequence[Message]) -> bytes:
    out = [title, f"Chat id: {summary.get('chatId')}", f"Members: {', '.join(_names(summary))}", ""]
    for m in messages:
        who = m.sender_name or m.sender_id or "unknown sender"
        for n, (line, _, text) in enumerate(m.versions):
            state = line.record["state"]
            when = _when(line.record["lastModified"])
            if n == 0 and state == "posted":
                out.append(f"[{_when(m.created)}] {who}: {text}")
            elif state == "deleted":
                out.append(f"    (deleted {when})")
            else:
                out.append(
                    f"    ({state} {when}) {text}" if n else f"[{_when(m.created)}] {who} ({state} {when}): {text}"
                )
            out += [f"    [image {path}]" for path in line.hosted]
    return ("\n".join(out) + "\n").encode()


def _names(summary: dict[str, JsonValue]) -> list[str]:
    names = summary.get("memberNames")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    members = summary.get("members")
    return [str(m) for m in members] if isinstance(members, list) else []


TRANSCRIPT_STYLE = (
    STYLE
    + """
.msg{border-bottom:1px solid #ddd;padding:.5rem 0}.who{font-weight:600}.when{color:#555;font-size:12px}
.version{margin:.2rem 0 .2rem 1.25rem}.version.edited{color:#9a6700}.version.deleted{color:#b00020}
img{max-width:420px;display:block;margin:.25rem 0}
""".rstrip()
)


def transcript_html(title: str, summary: dict[str, JsonValue], messages: Sequence[Message]) -> bytes:
    style_hash = base64.b64encode(hashlib.sha256(TRANSCRIPT_STYLE.encode()).digest()).decode()
    csp = CSP.replace(f"'sha256-{STYLE_HASH}'", f"'sha256-{style_hash}'") + "; img-src 'self' file:"
    body = []
    for m in messages:
        who = escape(m.sender_name or m.sender_id or "unknown sender")
        rows = []
        for n, (line, _, text) in enumerate(m.versions):
            state = str(line.record["state"])
            label = "posted" if n == 0 and state == "posted" else state
            shown = "<em>content removed by the deletion</em>" if state == "deleted" and not text else escape(text)
            images = "".join(f'<img src="{escape(path)}" alt="inline image">' for path in line.hosted)
            rows.append(
                f'<div class="version {escape(state)}"><span class="when">{escape(label)} '
                f"{escape(_when(line.record['lastModified']))} · {escape(str(line.record.get('source')))} · "
                f"{escape(line.bundle)} line {line.line + 1}</span><br>{shown}{images}</div>"
            )
        body.append(
            f'<div class="msg" id="m{escape(m.message_id)}"><span class="who">{who}</span> '
            f'<span class="when">{escape(_when(m.created))} · message {escape(m.message_id)}</span>'
            + "".join(rows)
            + "</div>"
        )
    topic = summary.get("topic") or summary.get("chatType") or "chat"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<style>{TRANSCRIPT_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">{escape(str(topic))} · chat <code>{escape(str(summary.get("chatId")))}</code><br>
Members: {escape(", ".join(_names(summary)))}<br>
{len(messages)} message(s), every captured version shown (edits and deletions are versions, nothing is
overwritten). This page is a rendering: the evidence is each bundle's <code>messages.ndjson</code>, sealed in the
ledger (README.txt says how to verify).</p>
{"".join(body)}
<footer>Generated by Verbatim. This page loads nothing from the network and runs no scripts.</footer>
</body>
</html>
""".encode()
