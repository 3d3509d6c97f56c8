"""A throwaway local CA and server certificate for the simulator's HTTPS listener.

MSAL only accepts an ``https://`` authority, so the token endpoint must also be reachable over TLS.
Clients trust the CA file (``ca.pem`` in the state directory, also served at ``/sim/tls/ca.pem``).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from devstack import pki


def ensure_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Create (once) ``ca.pem``, ``server.pem`` and ``server-key.pem`` for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    ca = pki.local_ca("Verbatim simulator local CA")
    pki.localhost_server(ca).write(cert_path, key_path)
    pki.write_ca(ca, ca_path)
    return ca_path, cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context
