"""An in-process OAuth authority (OpenID discovery + client-credentials token endpoint) for MSAL, as an
httpx transport: lets Graph-client tests run without the simulator. Integration tests use the simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

AUTHORITY = "https://login.test"


@dataclass
class FakeAuthority:
    expires_in: int = 3600
    issued: list[str] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        tenant = path.strip("/").split("/")[0]
        if path.endswith("/.well-known/openid-configuration"):
            base = f"{AUTHORITY}/{tenant}"
            return httpx.Response(
                200,
                json={
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                },
            )
        if path.endswith("/oauth2/v2.0/token"):
            form = dict(httpx.QueryParams(request.content.decode()))
            if form.get("client_secret") != "s3cret":
                return httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
            token = f"tok-{tenant}-{len(self.issued) + 1}"
            self.issued.append(token)
            body = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
            return httpx.Response(200, content=json.dumps(body), headers={"content-type": "application/json"})
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
