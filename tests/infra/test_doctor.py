"""`verbatim doctor` against real local servers: a TLS recorder endpoint with its own CA, a Function App health
endpoint, Azure Resource Manager and the Log Analytics query API answering with Microsoft's documented shapes."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from verbatim import cli
from verbatim.doctor import Doctor, Finding, read_env_file, run_command

FIXTURES = Path(__file__).parents[1] / "fixtures" / "azure"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SUBSCRIPTION, GROUP, ACCOUNT, SCALE_SET = "sub-1", "rg-verbatim", "stverbatimrec", "vmss-rec"
WORKSPACE = "a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1"


# --- a recorder endpoint with a certificate from its own CA -------------------------------------


def _certificate(tmp: Path, name: str, days: int, host: str = "localhost") -> tuple[Path, Path, Path]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test CA")])
    start = datetime.now(UTC) - timedelta(days=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(datetime.now(UTC) + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / f"{name}-ca.pem", tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class _Server:
    """A threaded HTTP(S) server whose GET/POST answers come from `route(method, path, body)`."""

    def __init__(self, route: Any, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        recorded = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                recorded.append((method, self.path, dict(self.headers), body))
                status, payload = route(method, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _recorder(tmp: Path, days: int, ready: bool = True) -> tuple[_Server, str]:
    ca, cert, key = _certificate(tmp, f"rec{days}", days)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = _Server(lambda m, p, b: (200, {"ready": True}) if ready else (503, {"ready": False}), tls=context)
    return server, str(ca)


# --- Azure: the Function App, ARM and Log Analytics, as Microsoft documents their answers ---------


@dataclass
class Azure:
    worm: str = "immutability-policy-lock.json"
    capacity: int = 2
    heartbeats: list[str] = field(default_factory=lambda: ["rec000000", "rec000001"])
    runs: dict[str, tuple[str | None, str | None]] = field(
        default_factory=lambda: {
            "ensure_callrecord_subscriptions": ("2026-12-06T11:30:02Z", None),
            "audit_policy_coverage": ("2026-12-06T11:45:01.5Z", "2026-12-05T09:00:00Z"),
            "completeness_report": ("2026-12-06T03:00:04Z", None),
        }
    )
    function_status: tuple[int, dict[str, Any]] = (
        200,
        {"status": "healthy", "version": "0.1.0", "dependencies": {"blob": {"status": "up"}}},
    )

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/api/health":
            return self.function_status
        if path.startswith(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Storage/"):
            assert "/containers/recordings/immutabilityPolicies/default?api-version=" in path
            return 200, json.loads((FIXTURES / self.worm).read_text())
        if path.startswith(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Compute/"):
            assert f"/virtualMachineScaleSets/{SCALE_SET}?api-version=" in path
            return 200, {"sku": {"name": "Standard_D4s_v5", "tier": "Standard", "capacity": self.capacity}}
        if path == f"/v1/workspaces/{WORKSPACE}/query":
            return 200, self._query(body["query"])
        return 404, {"error": {"code": "NotFound"}}

    def _query(self, query: str) -> dict[str, Any]:
        # The response format of the Log Analytics query API (logs/api/response-format on Microsoft Learn).
        if query.startswith("AppRequests"):
            columns = [("Name", "string"), ("LastSuccess", "datetime"), ("LastFailure", "datetime")]
            rows = [[name, ok, failed] for name, (ok, failed) in self.runs.items()]
        else:
            assert f'"/virtualmachinescalesets/{SCALE_SET}/"' in query
            columns = [("Computer", "string"), ("LastSeen", "datetime")]
            rows = [[computer, "2026-12-06T11:58:00Z"] for computer in self.heartbeats]
        return {
            "tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns], "rows": rows}]
        }


@dataclass
class Token:
    token: str


class Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str) -> Token:
        self.scopes.extend(scopes)
        return Token("operator-token")


def _env(recorder_port: int, azure_port: int) -> dict[str, str]:
    return {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": GROUP,
        "AZURE_FUNCTION_APP_URL": f"http://127.0.0.1:{azure_port}",
        "RECORDINGS_STORAGE_ACCOUNT_NAME": ACCOUNT,
        "RECORDINGS_CONTAINER_NAME": "recordings",
        "RECORDER_FQDN": "localhost",
        "BOT_NAME": "bot-verbatim",
        "BOT_CALLING_WEBHOOK": "https://localhost/api/calling",
        "RECORDER_SCALE_SET_NAME": SCALE_SET,
        "AZURE_LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE,
    }


@pytest.fixture
def azure() -> Iterator[tuple[Azure, _Server]]:
    state = Azure()
    server = _Server(state.route)
    yield state, server
    server.close()


def _run(env: dict[str, str], ca: str, recorder_port: int, azure_port: int, credential: Any) -> dict[str, Finding]:
    with httpx.Client(verify=ssl.create_default_context(cafile=ca)) as client:
        doctor = Doctor(
            env,
            http=client,
            credential=credential,
            ca_file=ca,
            recorder_port=recorder_port,
            arm_endpoint=f"http://127.0.0.1:{azure_port}",
            log_analytics_endpoint=f"http://127.0.0.1:{azure_port}",
            now=lambda: NOW,
        )
        return {finding.check: finding for finding in doctor.run()}


def test_a_healthy_deployment_is_all_green(tmp_path: Path, azure: tuple[Azure, _Server]) -> None:
    _, server = azure
    recorder, ca = _recorder(tmp_path, days=200)
    credential = Credential()
    try:
        found = _run(_env(recorder.port, server.port), ca, recorder.port, server.port, credential)
    finally:
        recorder.close()

    assert {check: f.status for check, f in found.items()} == {
        "recorder-certificate": "ok",
        "recorder-health": "ok",
        "bot-webhook": "ok",
        "function-health": "ok",
        "worm-lock": "ok",
        "callrecords-subscription": "ok",
        "coverage-audit": "ok",
        "completeness-report": "ok",
        "recorder-heartbeats": "ok",
    }, found
    assert "expires" in found["recorder-certificate"].detail
    assert "2 instance(s)" in found["recorder-heartbeats"].detail
    assert set(credential.scopes) == {"https://management.azure.com/.default", "https://api.loganalytics.io/.default"}
    assert all(
        h.get("Authorization") == "Bearer operator-token" for m, p, h, b in server.requests if p != "/api/health"
    )


def test_every_problem_an_operator_must_act_on_is_reported(tmp_path: Path, azure: tuple[Azure, _Server]) -> None:
    state, server = azure
    state.worm = "immutability-policy-get.json"  # Unlocked
    state.capacity = 3
    state.runs["ensure_callrecord_subscriptions"] = ("2026-12-06T09:00:00Z", "2026-12-06T11:30:00Z")
    state.runs["audit_policy_coverage"] = ("2026-12-06T10:00:00Z", None)
    del state.runs["completeness_report"]
    state.function_status = (
        503,
        {"status": "unhealthy", "dependencies": {"cosmos": {"status": "down", "detail": "ServiceRequestError"}}},
    )
    recorder, ca = _recorder(tmp_path, days=10, ready=False)
    env = _env(recorder.port, server.port) | {"BOT_CALLING_WEBHOOK": "https://old.contoso.com/api/calling"}
    try:
        found = _run(env, ca, recorder.port, server.port, Credential())
    finally:
        recorder.close()

    assert found["recorder-certificate"].status == "warn"  # 10 days left
    assert found["recorder-health"].status == "fail"
    assert found["bot-webhook"].status == "fail" and "old.contoso.com" in found["bot-webhook"].detail
    assert found["function-health"].status == "fail" and "ServiceRequestError" in found["function-health"].detail
    assert found["worm-lock"].status == "warn" and "unlocked, 5 days" in found["worm-lock"].detail
    assert (
        found["callrecords-subscription"].status == "fail" and "failed at" in found["callrecords-subscription"].detail
    )
    assert found["coverage-audit"].status == "fail" and "last succeeded" in found["coverage-audit"].detail
    assert found["completeness-report"].status == "warn"  # never ran: a new deployment reaches 03:00 first
    assert found["recorder-heartbeats"].status == "warn" and "has 3" in found["recorder-heartbeats"].detail


def test_a_certificate_for_another_name_or_no_endpoint_fails(tmp_path: Path, azure: tuple[Azure, _Server]) -> None:
    _, server = azure
    ca, cert, key = _certificate(tmp_path, "other", 200, host="recorder.contoso.com")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = _Server(lambda m, p, b: (200, {}), tls=context)
    try:
        found = _run(_env(recorder.port, server.port), str(ca), recorder.port, server.port, None)
    finally:
        recorder.close()
    assert found["recorder-certificate"].status == "fail"
    assert "not valid for Teams" in found["recorder-certificate"].detail
    assert found["recorder-health"].status == "fail"
    # Without an Azure sign-in the Azure checks are skipped, not failed.
    assert {found[c].status for c in ("worm-lock", "coverage-audit", "recorder-heartbeats")} == {"skipped"}

    closed = _run(_env(1, server.port), str(ca), 1, server.port, None)
    assert closed["recorder-certificate"].status == "fail" and "not reachable" in closed["recorder-certificate"].detail


def test_the_command_reads_azd_env_values_and_exits_1_on_a_failure(
    tmp_path: Path, azure: tuple[Azure, _Server], capsys: pytest.CaptureFixture[str]
) -> None:
    _, server = azure
    env_file = tmp_path / "deploy.env"
    # `azd env get-values` writes dotenv lines, values double-quoted and backslash-escaped.
    env_file.write_text(
        f'AZURE_FUNCTION_APP_URL="http://127.0.0.1:{server.port}"\n'
        'BOT_CALLING_WEBHOOK="https://rec.invalid/api/calling"\n'
        'RECORDER_FQDN="rec.invalid"\nQUOTED="a \\"b\\" c"\n'
    )
    assert read_env_file(env_file)["QUOTED"] == 'a "b" c'
    args = cli.build_parser().parse_args(["doctor", "--env-file", str(env_file), "--no-azure", "--json"])

    status = run_command(args, environ={"RECORDER_FQDN": "ignored.example"} | {"PATH": ""})

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_check = {line["check"]: line for line in lines}
    assert by_check["function-health"]["status"] == "ok"
    assert by_check["bot-webhook"]["status"] == "ok"
    assert by_check["worm-lock"]["status"] == "skipped"
    assert status == 1  # rec.invalid never resolves (RFC 2606)


def test_the_timers_the_doctor_asks_about_are_the_function_apps_timers() -> None:
    """The Functions host names each invocation's request after the function: the names must be real timers."""
    import ast

    from verbatim.doctor import TIMERS

    timers = set()
    for path in (Path(__file__).parents[2] / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "timer_trigger"
                for d in node.decorator_list
            ):
                timers.add(node.name)
    assert {function for function, _, _ in TIMERS.values()} <= timers
