"""Azurite (blob, queue, table) and the Cosmos DB emulator, as managed local processes.

Azurite keeps its data in a directory so a restart keeps it. The Cosmos emulator is in-memory (the
npm package has no persistence): `verbatim-dev up` recreates the database and containers on each start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack import pki
from devstack.processes import ManagedProcess, http_ready, tcp_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

# Microsoft's published, well-known development keys for Azurite and the Cosmos emulator: not secrets,
# they only open local emulators.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


@dataclass(frozen=True)
class AzuritePorts:
    blob: int = 10000
    queue: int = 10001
    table: int = 10002

    @property
    def connection_string(self) -> str:
        base = f"http://127.0.0.1:{{port}}/{AZURITE_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={base.format(port=self.blob)};"
            f"QueueEndpoint={base.format(port=self.queue)};"
            f"TableEndpoint={base.format(port=self.table)};"
        )


def azurite(ports: AzuritePorts, data_dir: Path, log_path: Path | None = None) -> ManagedProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(NODE_BIN / "azurite"),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--location", str(data_dir),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports.blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports.queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports.table),
    ]  # fmt: skip
    return ManagedProcess(
        name="azurite",
        argv=argv,
        ready=lambda: all(tcp_ready(port)() for port in (ports.blob, ports.queue, ports.table)),
        log_path=log_path,
        ports=(ports.blob, ports.queue, ports.table),
    )


def azurite_blob_oauth(port: int, data_dir: Path, tls: TlsFiles, log_path: Path | None = None) -> ManagedProcess:
    """A blob-only Azurite over HTTPS that accepts Microsoft Entra bearer tokens (`--oauth basic`: issuer, audience
    and expiry are checked, the signature and RBAC are not): Get User Delegation Key and user-delegation SAS work
    on it, which they do not on the shared-key Azurite."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(NODE_BIN / "azurite-blob"),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--location", str(data_dir),
        "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--oauth", "basic",
        "--cert", str(tls.cert),
        "--key", str(tls.key),
    ]  # fmt: skip
    return ManagedProcess(name="azurite-blob-oauth", argv=argv, ready=tcp_ready(port), log_path=log_path, ports=(port,))


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def ensure_tls(directory: Path) -> TlsFiles:
    """A local CA and a server certificate for 127.0.0.1/localhost, generated once and kept."""
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if all(path.exists() for path in (files.ca_cert, files.cert, files.key)):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca = pki.local_ca("Verbatim devstack local CA")
    pki.localhost_server(ca).write(files.cert, files.key)
    pki.write_ca(ca, files.ca_cert)
    return files


def cosmos_emulator(port: int, tls: TlsFiles, log_path: Path | None = None) -> ManagedProcess:
    argv = [
        "node", str(REPO_ROOT / "devstack" / "cosmos" / "server.js"),
        "--host", "127.0.0.1", "--port", str(port), "--cert", str(tls.cert), "--key", str(tls.key),
    ]  # fmt: skip
    return ManagedProcess(
        name="cosmos-emulator",
        argv=argv,
        ready=http_ready(f"https://127.0.0.1:{port}/", ca_cert=tls.ca_cert),
        cwd=REPO_ROOT,
        log_path=log_path,
        ports=(port,),
    )
