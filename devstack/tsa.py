"""A local RFC 3161 time-stamping authority: OpenSSL's `ts -reply` (Debian's openssl) behind HTTP on
127.0.0.1, with a CA and a TSA certificate (extendedKeyUsage timeStamping, critical) generated once.

Azure-hosted deployments point `LEDGER_TSA_URL` at a public TSA; here nothing outside is reachable, so the
devstack and the tests run this one, a real TSA implementation rather than a stand-in.

    python -m devstack.tsa --port 8318 --dir .devstack/tsa
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import tempfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack.processes import ManagedProcess, tcp_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY = "1.3.6.1.4.1.99999.1.1"  # a private-arc policy OID for the local TSA's tokens
MAX_QUERY_BYTES = 16 * 1024


@dataclass(frozen=True)
class TsaFiles:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "tsa-ca.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "tsa.pem"

    @property
    def key(self) -> Path:
        return self.directory / "tsa-key.pem"

    @property
    def config(self) -> Path:
        return self.directory / "tsa.cnf"


def ensure_tsa_files(directory: Path) -> TsaFiles:
    """The TSA's CA, certificate, key and OpenSSL configuration, generated once and kept."""
    files = TsaFiles(directory)
    if all(p.exists() for p in (files.ca_cert, files.cert, files.key, files.config)):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Verbatim devstack TSA root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Verbatim devstack TSA")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key.chmod(0o600)
    (directory / "serial").write_text("01\n")
    # No `certs` line: OpenSSL would add the CA beside the signer's certificate in a SET OF that it does not
    # sort as DER requires, which strict DER parsers (rfc3161-client's) reject. The root is the verifier's.
    files.config.write_text(
        "[ tsa ]\n"
        "default_tsa = verbatim_tsa\n"
        "[ verbatim_tsa ]\n"
        f"dir = {directory}\n"
        "serial = $dir/serial\n"
        "crypto_device = builtin\n"
        "signer_cert = $dir/tsa.pem\n"
        "signer_key = $dir/tsa-key.pem\n"
        "signer_digest = sha256\n"
        f"default_policy = {POLICY}\n"
        "digests = sha256, sha384, sha512\n"
        "accuracy = secs:1\n"
        "ordering = yes\n"
        "tsa_name = yes\n"
        "ess_cert_id_chain = no\n"
        "ess_cert_id_alg = sha256\n"
    )
    return files


def reply(files: TsaFiles, query: bytes) -> bytes:
    """OpenSSL's time-stamp response (DER TimeStampResp) to a DER TimeStampReq."""
    with tempfile.TemporaryDirectory() as work:
        query_file, reply_file = Path(work) / "query.tsq", Path(work) / "reply.tsr"
        query_file.write_bytes(query)
        subprocess.run(
            ["openssl", "ts", "-reply", "-config", str(files.config), "-queryfile", str(query_file),
             "-out", str(reply_file)],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        return reply_file.read_bytes()


def serve(port: int, files: TsaFiles) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Content-Type") != "application/timestamp-query" or not 0 < length <= MAX_QUERY_BYTES:
                self.send_error(400, "expected an application/timestamp-query body")
                return
            try:
                body = reply(files, self.rfile.read(length))
            except subprocess.CalledProcessError as error:
                self.send_error(400, error.stderr.decode(errors="replace")[:200])
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def tsa(port: int, directory: Path, log_path: Path | None = None) -> ManagedProcess:
    ensure_tsa_files(directory)
    import sys

    return ManagedProcess(
        name="tsa",
        argv=[sys.executable, "-m", "devstack.tsa", "--port", str(port), "--dir", str(directory)],
        ready=tcp_ready(port),
        cwd=REPO_ROOT,
        log_path=log_path,
        ports=(port,),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="a local RFC 3161 time-stamping authority (OpenSSL)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    serve(args.port, ensure_tsa_files(args.dir))


if __name__ == "__main__":
    main()
