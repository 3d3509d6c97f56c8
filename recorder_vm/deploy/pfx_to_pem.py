"""Convert the PFX exported by install.ps1 into the PEM certificate chain and key the TLS listener loads.

Usage: python pfx_to_pem.py <in.pfx> <out-cert.pem> <out-key.pem>; the PFX password is read from the
VERBATIM_PFX_PASSWORD environment variable (never the command line, which other users can see).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12


def convert(pfx: bytes, password: bytes) -> tuple[bytes, bytes]:
    key, certificate, chain = pkcs12.load_key_and_certificates(pfx, password)
    if key is None or certificate is None:
        raise ValueError("the PFX holds no certificate with a private key")
    pem_chain = b"".join(cert.public_bytes(Encoding.PEM) for cert in [certificate, *chain])
    pem_key = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem_chain, pem_key


def main(argv: list[str]) -> int:
    source, cert_path, key_path = (Path(arg) for arg in argv[1:4])
    chain, key = convert(source.read_bytes(), os.environ["VERBATIM_PFX_PASSWORD"].encode())
    cert_path.write_bytes(chain)
    key_path.write_bytes(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
