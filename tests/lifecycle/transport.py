"""An azure-core transport that records every request it sends: how the WORM requests (which Azurite answers
with 501) are asserted — the exact method, URL and headers Azure would receive."""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import HttpRequest, HttpResponse, RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient


class CapturingTransport(RequestsTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[HttpRequest] = []

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        self.requests.append(request)
        return super().send(request, **kwargs)

    def worm_requests(self) -> list[HttpRequest]:
        return [r for r in self.requests if "comp=immutabilityPolicies" in r.url or "comp=legalhold" in r.url]


def capturing_container(connection_string: str, name: str = "recordings") -> tuple[ContainerClient, CapturingTransport]:
    transport = CapturingTransport()
    service = BlobServiceClient.from_connection_string(connection_string, transport=transport)
    return service.get_container_client(name), transport
