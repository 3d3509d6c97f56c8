"""The portal's files are served with their content types and security headers, and nothing outside
portal/ can be reached: traversal, absolute paths, hidden files, unknown types and symlinks out are 404s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.emulators import REPO_ROOT
from functions import compliance_api
from tests.api.conftest import request
from tests.callrecords.helpers import handler
from verbatim.api.static import PORTAL_ROOT, load, resolve
from verbatim.platform.settings import reload_settings

portal = handler(compliance_api.portal)


def test_the_portal_files_are_served_with_content_types_and_a_strict_policy() -> None:
    index = portal(request("portal/", route_params={"path": ""}))
    assert index.status_code == 200 and index.mimetype == "text/html" and b'src="js/main.js"' in index.get_body()
    policy = index.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    script = portal(request("portal/js/pages/recording.js", route_params={"path": "js/pages/recording.js"}))
    assert (
        script.mimetype == "text/javascript"
        and script.charset == "utf-8"
        and b"export async function render" in script.get_body()
    )
    style = portal(request("portal/app.css", route_params={"path": "app.css"}))
    assert style.mimetype == "text/css" and style.headers["X-Content-Type-Options"] == "nosniff"


def test_the_sign_in_configuration_names_the_authority_and_the_policy_lets_only_it_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MSAL.js talks to the Entra authority (metadata, tokens) and frames it for silent renewal: the policy adds
    that origin to connect-src and frame-src and nothing else; only MSAL's redirect bridge may be framed (by us)."""
    monkeypatch.setenv("PORTAL_CLIENT_ID", "5e0c8b3a-7d41-4f2e-9a6b-1c2d3e4f5a60")
    monkeypatch.setenv("PORTAL_AUTHORITY", "https://login.microsoftonline.com/contoso.onmicrosoft.com/")
    monkeypatch.setenv("PORTAL_API_SCOPE", "api://verbatim/user_impersonation")
    monkeypatch.setenv("VERBATIM_ENVIRONMENT", "azure")
    reload_settings()
    try:
        config = portal(request("portal/config.json", route_params={"path": "config.json"}))
        index = portal(request("portal/", route_params={"path": ""}))
        bridge = portal(request("portal/redirect.html", route_params={"path": "redirect.html"}))
    finally:
        monkeypatch.undo()
        reload_settings()

    assert config.mimetype == "application/json" and config.headers["Cache-Control"] == "no-store"
    assert json.loads(config.get_body()) == {
        "signIn": {
            "clientId": "5e0c8b3a-7d41-4f2e-9a6b-1c2d3e4f5a60",
            "authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            "knownAuthorities": ["login.microsoftonline.com"],
            "scopes": ["api://verbatim/user_impersonation"],
        },
        "tokenPaste": False,  # outside the local stack, no token box
        "environment": "azure",
    }
    policy = index.headers["Content-Security-Policy"]
    assert "connect-src 'self' https://login.microsoftonline.com;" in policy
    assert "frame-src https://login.microsoftonline.com;" in policy
    assert "frame-ancestors 'self'" in bridge.headers["Content-Security-Policy"]


def test_without_a_client_id_the_portal_offers_no_sign_in_and_frames_nothing() -> None:
    config = json.loads(portal(request("portal/config.json", route_params={"path": "config.json"})).get_body())
    index = portal(request("portal/", route_params={"path": ""}))
    assert config["signIn"] is None
    assert "frame-src 'none'" in index.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("vendored", "published"),
    [
        ("msal-browser.min.js", "@azure/msal-browser/lib/msal-browser.min.js"),
        ("msal-redirect-bridge.min.js", "@azure/msal-browser/lib/redirect-bridge/msal-redirect-bridge.min.js"),
        ("msal-browser.LICENSE", "@azure/msal-browser/LICENSE"),
    ],
)
def test_the_vendored_msal_is_the_npm_package_pinned_in_package_json(vendored: str, published: str) -> None:
    """portal/vendor/ is served as is (no build step, no CDN): byte for byte the pinned @azure/msal-browser."""
    modules = REPO_ROOT / "node_modules"
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["dependencies"]["@azure/msal-browser"]
    installed = json.loads((modules / "@azure" / "msal-browser" / "package.json").read_text())["version"]
    assert installed == pinned, "run `make setup` (npm ci) to install the pinned version"
    assert (PORTAL_ROOT / "vendor" / vendored).read_bytes() == (modules / published).read_bytes()


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
        "js/main.js\x00.html",
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
