"""The recorder's public address comes from IMDS's load balancer metadata, read as Microsoft documents it
(tests/fixtures/azure/imds-loadbalancer.json), through a real loopback HTTP server standing in for IMDS."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from recorder_vm.deploy import instance_endpoints as endpoints

DOCUMENTED = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "azure" / "imds-loadbalancer.json").read_text()
)


class Imds:
    """Answers the private-IP path, and the load balancer path with `not_yet` 404s before the body."""

    def __init__(self, private_ip: str = "10.1.0.4", not_yet: int = 0) -> None:
        self.private_ip, self.not_yet = private_ip, not_yet
        self.body: dict[str, Any] = DOCUMENTED
        self.requests: list[tuple[str, str | None]] = []
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                imds.requests.append((self.path, self.headers.get("Metadata")))
                if self.headers.get("Metadata") != "true":
                    status, payload = 400, b"missing Metadata header"
                elif self.path.startswith("/metadata/instance/network"):
                    status, payload = 200, imds.private_ip.encode()
                elif self.path == "/metadata/loadbalancer?api-version=2020-10-01":
                    if imds.not_yet:
                        imds.not_yet -= 1
                        status, payload = 404, b'{"error":"No load balancer metadata is found."}'
                    else:
                        status, payload = 200, json.dumps(imds.body).encode()
                else:
                    status, payload = 404, b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/metadata"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Imds]:
    # A proxy in the environment must not be used: IMDS refuses proxied requests.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    server = Imds(not_yet=2)
    yield server
    server.close()


def test_the_public_ip_is_the_instance_level_ip_of_the_documented_response(imds: Imds) -> None:
    found = endpoints.discover(base=imds.base, wait=0)
    assert found["privateIp"] == "10.1.0.4"
    assert found["publicIp"] == "51.0.0.1"  # publicIpAddresses: the instance's own, not the frontend 50.0.0.1
    assert found["inboundRules"] == [
        {"protocol": "tcp", "frontendIpAddress": "50.0.0.1", "frontendPort": 80, "backendPort": 443}
    ]
    assert all(header == "true" for _, header in imds.requests)
    assert [path for path, _ in imds.requests].count("/metadata/loadbalancer?api-version=2020-10-01") == 3


def test_metadata_that_never_names_this_instance_is_an_error(imds: Imds) -> None:
    imds.private_ip = "10.1.0.9"
    with pytest.raises(endpoints.EndpointsUnavailable, match=r"10\.1\.0\.9"):
        endpoints.discover(base=imds.base, attempts=4, wait=0)


def test_the_module_prints_json_for_install_ps1(imds: Imds, capsys: pytest.CaptureFixture[str]) -> None:
    assert endpoints.main(["--imds", imds.base, "--wait", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["publicIp"] == "51.0.0.1"


def test_without_metadata_the_module_fails_with_a_reason(imds: Imds, capsys: pytest.CaptureFixture[str]) -> None:
    imds.not_yet = 10
    assert endpoints.main(["--imds", imds.base, "--wait", "0", "--attempts", "3"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
