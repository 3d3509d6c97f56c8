"""A local RFC 3161 time-stamping authority: OpenSSL's `ts -reply` (Debian's openssl) behind HTTP on
127.0.0.1, with a CA and a TSA certificate (extendedKeyUsage timeStamping, critical) generated once.

Azure-hosted deployments point `LEDGER_TSA_URL` at a public TSA; here nothing outside is reachable, so the
devstack and the tests run this one, a real TSA implementation rather than a stand-in.

    python -m devstack.tsa --port 8318 --dir .devstack/tsa
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devstack import pki
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
    ca = pki.local_ca("Verbatim devstack TSA root")
    pki.time_stamping(ca, "Verbatim devstack TSA").write(files.cert, files.key)
    pki.write_ca(ca, files.ca_cert)
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
