"""What the host hands functions and takes back: HTTP responses, queue bodies, polling back-off."""

from __future__ import annotations

import base64

import azure.functions as func
import pytest

from devstack.funchost.http_trigger import to_response
from devstack.funchost.queues import Backoff, decode_body, encode_body


def test_http_response_keeps_status_headers_and_body_and_derives_content_type() -> None:
    response = to_response(func.HttpResponse("hé", status_code=418, headers={"x-a": "1"}, charset="utf-8"))
    assert response.status == 418
    assert response.headers["x-a"] == "1"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == "hé".encode()

    assert to_response(func.HttpResponse(b"{}", mimetype="application/json")).headers["Content-Type"] == (
        "application/json"
    )
    explicit = to_response(func.HttpResponse("x", headers={"content-type": "text/csv"}))
    assert explicit.headers["Content-Type"] == "text/csv"


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        (None, 204, None, None),
        ("text", 200, "text/plain", b"text"),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        ({"a": [1]}, 200, "application/json", b'{"a": [1]}'),
    ],
)
def test_other_return_values_convert_as_the_worker_does(
    value: object, status: int, content_type: str | None, body: bytes | None
) -> None:
    response = to_response(value)
    assert response.status == status
    if content_type:
        assert response.content_type == content_type
    assert response.body == body


def test_queue_bodies_round_trip_in_both_encodings() -> None:
    assert decode_body(encode_body("héllo", "base64"), "base64") == "héllo".encode()
    assert encode_body(b"\xff\x00", "base64") == base64.b64encode(b"\xff\x00").decode()
    assert encode_body({"id": 1}, "none") == '{"id": 1}'
    assert decode_body("plain", "none") == b"plain"
    with pytest.raises(ValueError):
        decode_body("not base64!", "base64")


def test_backoff_doubles_to_the_maximum_and_resets_when_messages_arrive() -> None:
    backoff = Backoff(maximum=2.0)
    delays = [backoff.after(found_messages=False) for _ in range(8)]
    assert delays[0] <= 0.24
    assert all(delay <= 2.0 for delay in delays)
    assert delays[-1] >= 1.6
    assert backoff.after(found_messages=True) == pytest.approx(0.1)
    assert backoff.after(found_messages=False) <= 0.24
