"""The portal's files are served with their content types and security headers, and nothing outside
portal/ can be reached: traversal, absolute paths, hidden files, unknown types and symlinks out are 404s."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions import compliance_api
from tests.api.conftest import request
from tests.callrecords.helpers import handler
from verbatim.api.static import PORTAL_ROOT, load, resolve

portal = handler(compliance_api.portal)


def test_the_portal_files_are_served_with_content_types_and_a_strict_policy() -> None:
    index = portal(request("portal/", route_params={"path": ""}))
    assert index.status_code == 200 and index.mimetype == "text/html" and b"<audio" in index.get_body()
    assert "default-src 'self'" in index.headers["Content-Security-Policy"]
    script = portal(request("portal/app.js", route_params={"path": "app.js"}))
    assert script.mimetype == "text/javascript" and script.charset == "utf-8"
    style = portal(request("portal/app.css", route_params={"path": "app.css"}))
    assert style.mimetype == "text/css" and style.headers["X-Content-Type-Options"] == "nosniff"


def test_the_bare_portal_path_redirects_to_the_directory() -> None:
    response = portal(request("portal", route_params={}))
    assert response.status_code == 308 and response.headers["Location"] == "/api/portal/"


@pytest.mark.parametrize(
    "path",
    [
        "../function_app.py",
        "..%2Ffunction_app.py",
        "/etc/passwd",
        "a/../../host.json",
        "..\\host.json",
        ".hidden.js",
        "nothing.html",
        "app.js\x00.html",
    ],
)
def test_nothing_outside_the_portal_is_served(path: str) -> None:
    assert resolve(path) is None
    assert portal(request(f"portal/{path}", route_params={"path": path})).status_code == 404


def test_a_symlink_leading_out_of_the_portal_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "portal"
    root.mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    (root / "ok.js").write_text("ok")
    assert load("link.js", root) is None
    found = load("ok.js", root)
    assert found is not None and found.body == b"ok"
    assert (PORTAL_ROOT / "index.html").is_file()
