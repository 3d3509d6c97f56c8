"""The daily WORM-lock check reads the container's immutability policy from ARM, as Microsoft documents the
response (tests/fixtures/azure), and logs the line the operators' alert looks for when it is not locked."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from verbatim.evidence.worm_status import NOT_LOCKED_MESSAGE, check_worm_locked, policy_url, read_policy
from verbatim.platform.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure"
CONTAINER = (
    "/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.Storage/storageAccounts/strecabc"
    "/blobServices/default/containers/recordings"
)


class Arm:
    """A loopback server answering GET <container>/immutabilityPolicies/default with a chosen body."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.requests: list[tuple[str, str]] = []
        arm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arm.requests.append((self.path, self.headers.get("Authorization", "")))
                if arm.body is None:
                    payload = b'{"error":{"code":"ImmutabilityPolicyNotFound"}}'
                    self.send_response(404)
                else:
                    payload = json.dumps(arm.body).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Arm:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def arm() -> Iterator[Arm]:
    with Arm() as server:
        yield server


class Token:
    token = "arm-token"


class Credential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Token:
        self.scopes.append(scopes)
        return Token()


def _fixture(name: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / name).read_text())
    assert isinstance(body, dict)
    return body


def test_the_policy_url_is_the_documented_get_immutability_policy_path() -> None:
    assert policy_url("https://management.azure.com/", CONTAINER) == (
        f"https://management.azure.com{CONTAINER}/immutabilityPolicies/default?api-version=2023-05-01"
    )


@pytest.mark.parametrize(
    ("fixture", "state", "days"),
    [("immutability-policy-get.json", "Unlocked", 5), ("immutability-policy-lock.json", "Locked", 3)],
)
def test_the_documented_responses_are_read(arm: Arm, fixture: str, state: str, days: int) -> None:
    arm.body = _fixture(fixture)
    with httpx.Client() as http:
        policy = read_policy(http, policy_url(arm.url, CONTAINER), "t")
    assert (policy.state, policy.retention_days) == (state, days)
    assert arm.requests == [(f"{CONTAINER}/immutabilityPolicies/default?api-version=2023-05-01", "Bearer t")]


def test_a_container_without_a_policy_reads_as_missing(arm: Arm) -> None:
    with httpx.Client() as http:
        assert read_policy(http, policy_url(arm.url, CONTAINER), "t").state == "Missing"


def _worm_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The check's own lines: caplog also holds httpx's request lines when an earlier test (the logging set-up of
    an entry point) left the root logger at INFO."""
    return [r for r in caplog.records if r.name == "verbatim.evidence.worm_status"]


def _settings(arm: Arm) -> Settings:
    return Settings.model_validate({"RECORDINGS_CONTAINER_RESOURCE_ID": CONTAINER, "ARM_ENDPOINT": arm.url})


def test_an_unlocked_policy_logs_the_line_the_alert_looks_for(arm: Arm, caplog: pytest.LogCaptureFixture) -> None:
    arm.body = _fixture("immutability-policy-get.json")
    credential = Credential()
    with caplog.at_level(logging.INFO, logger="verbatim.evidence.worm_status"):
        assert check_worm_locked(_settings(arm), credential=credential) is False  # type: ignore[arg-type]
    assert credential.scopes == [("https://management.azure.com/.default",)]
    (record,) = _worm_records(caplog)
    assert record.levelno == logging.WARNING and record.getMessage().startswith(NOT_LOCKED_MESSAGE)


def test_a_locked_policy_logs_no_alert(arm: Arm, caplog: pytest.LogCaptureFixture) -> None:
    arm.body = _fixture("immutability-policy-lock.json")
    with caplog.at_level(logging.INFO, logger="verbatim.evidence.worm_status"):
        assert check_worm_locked(_settings(arm), credential=Credential()) is True  # type: ignore[arg-type]
    assert [r.getMessage() for r in _worm_records(caplog)] == ["evidence store WORM policy is locked"]


def test_without_a_configured_container_nothing_is_checked(arm: Arm) -> None:
    assert check_worm_locked(Settings.model_validate({}), credential=Credential()) is None  # type: ignore[arg-type]
    assert arm.requests == []
