"""Checks that the relative links and `#anchors` of Markdown files resolve inside the repository.

Links are read with a CommonMark parser (markdown-it-py, tables enabled as on GitHub), so link-like text in
code spans and fenced blocks is not a link; anchors are the headings' slugs as GitHub makes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

# GitHub's line anchors on a file view: #L10 or #L10-L20.
_LINE_ANCHOR = re.compile(r"L\d+(-L\d+)?")


@dataclass(frozen=True)
class Link:
    source: Path  # the Markdown file the link is in
    line: int  # 1-based line
    target: str  # as written: href of a link, src of an image


@dataclass(frozen=True)
class DeadLink:
    link: Link
    reason: str

    def __str__(self) -> str:
        return f"{self.link.source}:{self.link.line}: {self.link.target!r}: {self.reason}"


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _inline_tokens(tokens: list[Token]) -> Iterator[tuple[int, Token]]:
    """(1-based line, child) for every child of every inline token (paragraph, heading, table cell)."""
    for token in tokens:
        if token.type == "inline" and token.children:
            line = token.map[0] + 1 if token.map else 0
            for child in token.children:
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                yield line, child


def links_in(path: Path) -> list[Link]:
    tokens = _parser().parse(path.read_text(encoding="utf-8"))
    found = []
    for line, child in _inline_tokens(tokens):
        attr = "href" if child.type == "link_open" else "src" if child.type == "image" else None
        if attr is None:
            continue
        found.append(Link(path, line, str(child.attrs[attr])))
    return found


def github_slug(text: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors_of(path: Path) -> frozenset[str]:
    """Every anchor a Markdown file offers: its headings' slugs, with -1, -2, ... for repeats."""
    tokens = _parser().parse(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set()
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[index + 1]
        text = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
        slug = github_slug(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


def check_link(link: Link, root: Path) -> str | None:
    """Why a link is dead, or None when it resolves (external links are not followed)."""
    parts = urlsplit(link.target)
    if parts.scheme or parts.netloc:
        return None  # http(s), mailto, ...: outside the repository
    if parts.path.startswith("/"):
        return "absolute path: on GitHub it leaves the repository; use a path relative to this file"
    target = (link.source.parent / unquote(parts.path)).resolve() if parts.path else link.source.resolve()
    if not target.is_relative_to(root.resolve()):
        return "points outside the repository"
    if not target.exists():
        return f"no such file: {target.relative_to(root.resolve())}"
    fragment = unquote(parts.fragment)
    if not fragment:
        return None
    if target.suffix.lower() != ".md":
        return None if _LINE_ANCHOR.fullmatch(fragment) else f"#{fragment} on a file that is not Markdown"
    if fragment not in anchors_of(target):
        return f"no heading with anchor #{fragment} in {target.relative_to(root.resolve())}"
    return None


def dead_links(documents: Iterable[Path], root: Path, follow: bool = True) -> list[DeadLink]:
    """Dead links in the documents and, with follow, in every Markdown file of the repository they link to."""
    dead = []
    queue = [d.resolve() for d in documents]
    done: set[Path] = set()
    while queue:
        document = queue.pop(0)
        if document in done:
            continue
        done.add(document)
        for link in links_in(document):
            reason = check_link(link, root)
            if reason is not None:
                dead.append(DeadLink(link, reason))
                continue
            parts = urlsplit(link.target)
            if follow and not (parts.scheme or parts.netloc) and parts.path.lower().endswith(".md"):
                queue.append((document.parent / unquote(parts.path)).resolve())
    return dead
