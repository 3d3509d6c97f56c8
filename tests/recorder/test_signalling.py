"""The signalling webhook as Teams sees it: platform JWT checks and what happens to bad bodies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.testkit.teams_platform import BOT_APP_ID, FakePlatform, SigningKey
from tests.recorder.conftest import RecorderFactory, RecorderProcess, log_of


@pytest.fixture(scope="module")
def recorder(start_module_recorder: RecorderFactory) -> Iterator[RecorderProcess]:
    yield start_module_recorder(RECORDER_MAX_NOTIFICATION_BYTES="8192")


def _post(recorder: RecorderProcess, token: str | None, body: bytes, path: str = "/api/calling") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{recorder.url}{path}", content=body, headers=headers, timeout=10)


def _roster_body() -> bytes:
    return json.dumps(FakePlatform.roster_notification("no-such-call", [{"id": "p1"}])).encode()


@pytest.mark.parametrize(
    "case",
    ["missing", "not_bearer", "garbage", "expired", "wrong_audience", "wrong_issuer", "bad_signature", "no_tenant"],
)
def test_requests_without_a_valid_platform_token_get_401_and_leave_no_trace_of_the_token(
    platform: FakePlatform, recorder: RecorderProcess, case: str
) -> None:
    now = int(time.time())
    tokens: dict[str, str | None] = {
        "missing": None,
        "not_bearer": None,
        "garbage": "not.a.jwt",
        "expired": platform.token(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "wrong_audience": platform.token(aud="00000000-0000-4000-8000-0000000000ff"),
        "wrong_issuer": platform.token(iss="https://evil.example"),
        "bad_signature": platform.token(key=SigningKey(platform.key.kid, SigningKey.generate().private)),
        "no_tenant": platform.token(tid=None),
    }
    token = tokens[case]
    if case == "not_bearer":
        response = httpx.post(
            f"{recorder.url}/api/calling", content=_roster_body(), headers={"Authorization": "Basic dXNlcjpwdw=="}
        )
    else:
        response = _post(recorder, token, _roster_body())
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    if token:
        assert token not in log_of(recorder)
        assert token.split(".")[2] not in log_of(recorder)


def test_a_token_signed_by_an_unknown_key_is_rejected_even_with_a_known_looking_header(
    platform: FakePlatform, recorder: RecorderProcess
) -> None:
    stranger = SigningKey.generate()
    assert _post(recorder, platform.token(key=stranger), _roster_body()).status_code == 401


def test_the_notification_route_checks_tokens_too_and_a_valid_token_is_accepted(
    platform: FakePlatform, recorder: RecorderProcess
) -> None:
    path = f"/api/calling/notification/{recorder.instance_id}"
    assert _post(recorder, None, _roster_body(), path).status_code == 401
    assert _post(recorder, platform.token(), _roster_body(), path).status_code == 202
    assert _post(recorder, platform.token(iss="https://graph.microsoft.com"), _roster_body(), path).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        b'{"value": "not a list"}',
        b'{"value": [{"changeType": "updated", "resourceUrl": "/communications/calls/x", "resourceData": 5}]}',
        b'{"value": [{"changeType": "updated", "resourceUrl": "/communications/calls/x/participants", '
        b'"resourceData": [{"noId": true}]}]}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_notifications_get_400_and_the_recorder_keeps_serving(
    platform: FakePlatform, recorder: RecorderProcess, body: bytes
) -> None:
    response = _post(recorder, platform.token(), body)
    assert response.status_code == 400, response.text
    assert response.json()["title"] == "Invalid input"
    assert recorder.health().status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": [{"changeType": "exploded", "resourceUrl": "/communications/calls/x"}]}',
        b'{"value": [{"changeType": "updated", "resourceUrl": "/communications/calls/x", '
        b'"resourceData": {"state": "dancing"}}]}',
        b'{"value": [{"changeType": "Updated", "resourceUrl": "/communications/calls/x", '
        b'"resourceData": {"@odata.type": "#microsoft.graph.call", "state": "Established"}}]}',
    ],
    ids=["unknown-change-type", "unknown-state", "capitalised"],
)
def test_notifications_with_unknown_or_odd_cased_values_are_acknowledged(
    platform: FakePlatform, recorder: RecorderProcess, body: bytes
) -> None:
    # Liberal in what the platform sends (only authentication is strict): a value we do not know is logged
    # and acknowledged, never a 400 for the whole request.
    response = _post(recorder, platform.token(), body)
    assert response.status_code == 202, response.text
    assert recorder.health().status_code == 200


def test_oversized_notifications_get_413_whether_announced_or_streamed(
    platform: FakePlatform, recorder: RecorderProcess
) -> None:
    big = json.dumps({"value": [], "padding": "x" * 20_000}).encode()
    assert _post(recorder, platform.token(), big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = httpx.post(
        f"{recorder.url}/api/calling",
        content=chunks(),
        headers={"Authorization": f"Bearer {platform.token()}", "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert recorder.health().status_code == 200


def test_the_bot_app_id_is_the_audience(platform: FakePlatform, recorder: RecorderProcess) -> None:
    assert _post(recorder, platform.token(aud=BOT_APP_ID), _roster_body()).status_code == 202
