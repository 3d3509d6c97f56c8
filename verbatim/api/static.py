"""Serving the compliance portal's static files (portal/: HTML, CSS, JS; no build step) from the Function App.

Only regular files under the portal directory with a known extension are served, with their content type
and security headers; anything else — `..`, absolute paths, backslashes, hidden files, symlinks leading
out of the directory — is a 404, never a read outside portal/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PORTAL_ROOT = Path(__file__).resolve().parents[2] / "portal"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# The portal loads only its own files and talks only to this origin's API; media plays from blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    headers: dict[str, str]


def resolve(path: str, root: Path = PORTAL_ROOT) -> Path | None:
    """The file a request path names under `root`, or None when it names nothing servable."""
    path = path or "index.html"
    if "\\" in path or "\x00" in path or path.startswith("/"):
        return None
    parts = PurePosixPath(path).parts
    if any(part in ("..", ".") or part.startswith(".") for part in parts):
        return None
    base = root.resolve()
    candidate = (base / PurePosixPath(*parts)).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    if candidate.suffix.lower() not in CONTENT_TYPES:
        return None
    return candidate


def load(path: str, root: Path = PORTAL_ROOT, policy: str | None = None) -> StaticFile | None:
    """The file, with the security headers (and `policy` as its Content-Security-Policy when given)."""
    found = resolve(path, root)
    if found is None:
        return None
    headers = dict(SECURITY_HEADERS)
    if policy is not None:
        headers["Content-Security-Policy"] = policy
    return StaticFile(found.read_bytes(), CONTENT_TYPES[found.suffix.lower()], headers)
