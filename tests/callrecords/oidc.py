"""A real OpenID provider on 127.0.0.1 for token-validation tests: discovery document + JWKS over HTTP,
and RS256 tokens signed with its key (PyJWT). The simulator's /sim/tokens is used where it is running."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "api://verbatim-test"


@dataclass
class OpenIdProvider:
    base_url: str
    key: rsa.RSAPrivateKey
    kid: str

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{TENANT}/v2.0"

    @property
    def config_url(self) -> str:
        return f"{self.base_url}/{TENANT}/v2.0/.well-known/openid-configuration"

    def mint(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "tid": TENANT,
            "oid": "officer-oid",
            "sub": "pairwise-sub",
            "name": "Olivia Officer",
            "azp": "0d1e2f3a-0000-4000-8000-00000000c11e",  # the client the access token was issued to
            "scp": "access_as_user",
            "roles": ["Compliance.Officer"],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@contextmanager
def openid_provider() -> Iterator[OpenIdProvider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    documents: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    provider = OpenIdProvider(base_url=base, key=key, kid=kid)
    documents[f"/{TENANT}/v2.0/.well-known/openid-configuration"] = {
        "issuer": provider.issuer,
        "jwks_uri": f"{base}/{TENANT}/discovery/v2.0/keys",
        "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
    }
    documents[f"/{TENANT}/discovery/v2.0/keys"] = {"keys": [jwk]}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
