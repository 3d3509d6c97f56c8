"""`verbatim doctor`: what can be checked of a deployment from outside it, with the operator's own sign-in.

Pointed at an azd environment (`azd env get-values > deploy.env`, then `verbatim doctor --env-file deploy.env`),
it checks: the recorder's public endpoint answers TLS with a valid certificate for its name (the bot's calling
webhook is that endpoint) and `/health` is green; the Function App's `/api/health` is green; the recordings
container's WORM policy is locked or not (Azure Resource Manager, as the Function App's daily check reads it); and,
from the Log Analytics workspace, that the callRecords subscription was renewed, the policy coverage audit and the
daily completeness report ran, and every recorder instance sends its heartbeat. Each check reports ok, warn, fail
or skipped (what it needs is not set); the exit status is 1 when any check fails. docs/deploy.md says what to do
for each.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from verbatim.evidence.worm_status import ARM_SCOPE, policy_url, read_policy

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

Status = Literal["ok", "warn", "fail", "skipped"]

# The query API's token resource is still https://api.loganalytics.io (its host moved to api.loganalytics.azure.com);
# the operator needs Reader on the workspace (https://learn.microsoft.com/azure/azure-monitor/logs/api/access-api).
LOG_ANALYTICS_SCOPE = "https://api.loganalytics.io/.default"
LOG_ANALYTICS_ENDPOINT = "https://api.loganalytics.azure.com"
ARM_ENDPOINT = "https://management.azure.com"
CERTIFICATE_WARN_DAYS = 21
HEARTBEAT_MINUTES = 10

# Function App timers whose last successful run says the deployment is alive, how old that run may be, and whether
# the timer also runs at start-up (else a new deployment has simply not reached its first run: a warning).
# The names are the Python functions (functions/*.py), which is what the Functions host names their requests.
TIMERS: dict[str, tuple[str, timedelta, bool]] = {
    "callrecords-subscription": ("ensure_callrecord_subscriptions", timedelta(minutes=75), True),  # every 30 min
    "coverage-audit": ("audit_policy_coverage", timedelta(minutes=45), True),  # every 15 minutes
    "completeness-report": ("completeness_report", timedelta(hours=26), False),  # daily at 03:00 UTC
}


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str


def read_env_file(path: Path) -> dict[str, str]:
    """`azd env get-values` output: KEY="value" lines, values quoted and backslash-escaped as dotenv writes them."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        match = re.fullmatch(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if not match or line.lstrip().startswith("#"):
            continue
        name, raw = match.groups()
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", _unescape, raw[1:-1])
        elif len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
        values[name] = raw
    return values


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "r": "\r"}.get(match.group(1), match.group(1))


class Doctor:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        http: httpx.Client,
        credential: TokenCredential | None,
        ca_file: str | None = None,
        recorder_port: int = 443,
        arm_endpoint: str = ARM_ENDPOINT,
        log_analytics_endpoint: str = LOG_ANALYTICS_ENDPOINT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.env = env
        self.http = http
        self.credential = credential
        self.ca_file = ca_file
        self.recorder_port = recorder_port
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.log_analytics_endpoint = log_analytics_endpoint.rstrip("/")
        self.now = now

    def run(self) -> list[Finding]:
        findings = [self.recorder_certificate(), self.recorder_health(), self.bot_webhook(), self.function_health()]
        findings.append(self.worm())
        findings.extend(self.timers())
        findings.append(self.recorder_heartbeats())
        return findings

    # --- helpers --------------------------------------------------------------------------

    def _missing(self, check: str, *names: str) -> Finding | None:
        absent = [name for name in names if not self.env.get(name)]
        if absent:
            return Finding(check, "skipped", f"{', '.join(absent)} not set (azd env get-values)")
        return None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _token(self, scope: str) -> str:
        assert self.credential is not None
        return self.credential.get_token(scope).token

    def _query(self, query: str, timespan: str) -> list[dict[str, Any]]:
        """A Log Analytics query; rows as dicts (logs/api/request-format and response-format on Microsoft Learn)."""
        workspace = self.env["AZURE_LOG_ANALYTICS_WORKSPACE_ID"]
        response = self.http.post(
            f"{self.log_analytics_endpoint}/v1/workspaces/{workspace}/query",
            json={"query": query, "timespan": timespan},
            headers={"Authorization": f"Bearer {self._token(LOG_ANALYTICS_SCOPE)}"},
            timeout=60.0,
        )
        response.raise_for_status()
        table = response.json()["tables"][0]
        names = [column["name"] for column in table["columns"]]
        return [dict(zip(names, row, strict=True)) for row in table["rows"]]

    # --- the recorder's public endpoint ---------------------------------------------------

    def recorder_certificate(self) -> Finding:
        check = "recorder-certificate"
        if skipped := self._missing(check, "RECORDER_FQDN"):
            return skipped
        host = self.env["RECORDER_FQDN"]
        try:
            with (
                socket.create_connection((host, self.recorder_port), timeout=10) as raw,
                self._tls().wrap_socket(raw, server_hostname=host) as tls,
            ):
                certificate = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as error:
            return Finding(check, "fail", f"{host}: the certificate is not valid for Teams: {error.verify_message}")
        except OSError as error:
            return Finding(check, "fail", f"{host}:{self.recorder_port} not reachable over TLS: {error}")
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(certificate.get("notAfter"))), UTC)
        days = (expires - self.now()).days
        detail = f"{host}: valid, expires {expires:%Y-%m-%d} ({days} days)"
        return Finding(check, "ok" if days >= CERTIFICATE_WARN_DAYS else "warn", detail)

    def recorder_health(self) -> Finding:
        check = "recorder-health"
        if skipped := self._missing(check, "RECORDER_FQDN"):
            return skipped
        url = f"https://{self.env['RECORDER_FQDN']}:{self.recorder_port}/health"
        try:
            response = self.http.get(url, timeout=15.0)
        except httpx.HTTPError as error:
            return Finding(
                check, "fail", f"{url}: {type(error).__name__} (is this machine's address in ALLOWED_IP_RANGES?)"
            )
        if response.status_code == 200:
            return Finding(check, "ok", f"{url}: ready")
        return Finding(check, "fail", f"{url}: HTTP {response.status_code} {response.text[:300]}")

    def bot_webhook(self) -> Finding:
        check = "bot-webhook"
        if skipped := self._missing(check, "BOT_CALLING_WEBHOOK", "RECORDER_FQDN"):
            return skipped
        expected = f"https://{self.env['RECORDER_FQDN']}/api/calling"
        webhook = self.env["BOT_CALLING_WEBHOOK"]
        if webhook != expected:
            return Finding(check, "fail", f"the bot calls {webhook}, the recorder answers at {expected}")
        return Finding(check, "ok", f"the bot ({self.env.get('BOT_NAME', '?')}) calls {webhook}")

    # --- the Function App ------------------------------------------------------------------

    def function_health(self) -> Finding:
        check = "function-health"
        if skipped := self._missing(check, "AZURE_FUNCTION_APP_URL"):
            return skipped
        url = f"{self.env['AZURE_FUNCTION_APP_URL'].rstrip('/')}/api/health"
        try:
            response = self.http.get(url, timeout=30.0)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            return Finding(check, "fail", f"{url}: {type(error).__name__}")
        down = {name: dep.get("detail") or dep.get("status") for name, dep in body.get("dependencies", {}).items()}
        down = {name: detail for name, detail in down.items() if detail != "up"}
        if response.status_code == 200 and body.get("status") == "healthy":
            return Finding(check, "ok", f"{url}: healthy, version {body.get('version')}")
        return Finding(check, "fail", f"{url}: HTTP {response.status_code}, down: {json.dumps(down)}")

    # --- Azure Resource Manager -----------------------------------------------------------

    def worm(self) -> Finding:
        check = "worm-lock"
        names = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "RECORDINGS_STORAGE_ACCOUNT_NAME")
        if skipped := self._missing(check, *names):
            return skipped
        if self.credential is None:
            return Finding(check, "skipped", "no Azure sign-in (--no-azure)")
        container = (
            f"/subscriptions/{self.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{self.env['AZURE_RESOURCE_GROUP']}"
            f"/providers/Microsoft.Storage/storageAccounts/{self.env['RECORDINGS_STORAGE_ACCOUNT_NAME']}"
            f"/blobServices/default/containers/{self.env.get('RECORDINGS_CONTAINER_NAME') or 'recordings'}"
        )
        try:
            policy = read_policy(self.http, policy_url(self.arm_endpoint, container), self._token(ARM_SCOPE))
        except Exception as error:  # httpx or the credential: report, never crash the other checks
            return Finding(check, "fail", f"the immutability policy could not be read: {type(error).__name__}")
        days = f", {policy.retention_days} days" if policy.retention_days is not None else ""
        if policy.state == "Locked":
            return Finding(check, "ok", f"default WORM policy locked{days}")
        if policy.state == "Unlocked":
            return Finding(
                check, "warn", f"default WORM policy unlocked{days}: lock it once the configuration is final"
            )
        return Finding(check, "fail", "the recordings container has no default WORM policy")

    # --- Log Analytics --------------------------------------------------------------------

    def timers(self) -> list[Finding]:
        checks = list(TIMERS)
        if (skipped := self._missing("log-analytics", "AZURE_LOG_ANALYTICS_WORKSPACE_ID")) or self.credential is None:
            detail = skipped.detail if skipped else "no Azure sign-in (--no-azure)"
            return [Finding(check, "skipped", detail) for check in checks]
        functions = ", ".join(f'"{name}"' for name, _, _ in TIMERS.values())
        query = (
            f"AppRequests | where Name in ({functions}) "
            "| summarize LastSuccess = maxif(TimeGenerated, Success == true), "
            "LastFailure = maxif(TimeGenerated, Success == false) by Name"
        )
        try:
            rows = {row["Name"]: row for row in self._query(query, "P2D")}
        except Exception as error:  # the workspace or the credential
            return [Finding(check, "fail", f"Log Analytics query failed: {type(error).__name__}") for check in checks]
        findings = []
        for check, (function, max_age, at_startup) in TIMERS.items():
            row = rows.get(function, {})
            success, failure = _instant(row.get("LastSuccess")), _instant(row.get("LastFailure"))
            if success is None and failure is None and not at_startup:
                findings.append(Finding(check, "warn", f"{function} has not run in 2 days (a new deployment?)"))
            elif success is None:
                findings.append(Finding(check, "fail", f"{function} has not succeeded in the last 2 days"))
            elif failure is not None and failure > success:
                findings.append(Finding(check, "fail", f"{function} failed at {failure:%Y-%m-%d %H:%M}Z"))
            elif self.now() - success > max_age:
                findings.append(Finding(check, "fail", f"{function} last succeeded at {success:%Y-%m-%d %H:%M}Z"))
            else:
                findings.append(Finding(check, "ok", f"{function} succeeded at {success:%Y-%m-%d %H:%M}Z"))
        return findings

    def recorder_heartbeats(self) -> Finding:
        check = "recorder-heartbeats"
        names = ("AZURE_LOG_ANALYTICS_WORKSPACE_ID", "RECORDER_SCALE_SET_NAME")
        if skipped := self._missing(check, *names):
            return skipped
        if self.credential is None:
            return Finding(check, "skipped", "no Azure sign-in (--no-azure)")
        scale_set = self.env["RECORDER_SCALE_SET_NAME"].lower()
        query = (
            f'Heartbeat | where _ResourceId has "/virtualmachinescalesets/{scale_set}/" '
            f"| where TimeGenerated > ago({HEARTBEAT_MINUTES}m) | summarize LastSeen = max(TimeGenerated) by Computer"
        )
        try:
            reporting = sorted(str(row["Computer"]) for row in self._query(query, "PT1H"))
            capacity = self._capacity()
        except Exception as error:
            return Finding(check, "fail", f"could not count the recorder instances: {type(error).__name__}")
        seen = f"{len(reporting)} instance(s) sent a heartbeat in {HEARTBEAT_MINUTES} minutes"
        if capacity is not None and len(reporting) < capacity:
            status: Status = "fail" if not reporting else "warn"
            return Finding(check, status, f"{seen}, the scale set has {capacity}: {', '.join(reporting) or 'none'}")
        if not reporting:
            return Finding(check, "fail", f"{seen}")
        return Finding(check, "ok", f"{seen}: {', '.join(reporting)}")

    def _capacity(self) -> int | None:
        names = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "RECORDER_SCALE_SET_NAME")
        if any(not self.env.get(name) for name in names):
            return None
        url = (
            f"{self.arm_endpoint}/subscriptions/{self.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/"
            f"{self.env['AZURE_RESOURCE_GROUP']}/providers/Microsoft.Compute/virtualMachineScaleSets/"
            f"{self.env['RECORDER_SCALE_SET_NAME']}?api-version=2024-07-01"
        )
        response = self.http.get(url, headers={"Authorization": f"Bearer {self._token(ARM_SCOPE)}"}, timeout=30.0)
        response.raise_for_status()
        return int(response.json()["sku"]["capacity"])


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- the command ---------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check a deployment from outside: recorder endpoint, health, WORM lock, timers, heartbeats",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--env-file", type=Path, help="azd env get-values output (default: the process environment)")
    parser.add_argument("--no-azure", action="store_true", help="only the HTTPS checks; no Azure sign-in")
    parser.add_argument("--json", action="store_true", help="one JSON object per check")
    parser.add_argument("--ca-file", help="trust this CA bundle too (a private CA in front of the recorder)")
    parser.add_argument("--recorder-port", type=int, default=443, help=argparse.SUPPRESS)
    parser.add_argument("--arm-endpoint", default=ARM_ENDPOINT, help=argparse.SUPPRESS)
    parser.add_argument("--log-analytics-endpoint", default=LOG_ANALYTICS_ENDPOINT, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    import os

    env = dict(os.environ if environ is None else environ)
    if args.env_file:
        env.update(read_env_file(args.env_file))
    credential = None
    if not args.no_azure:
        from verbatim.platform.clients import credential_for

        credential = credential_for(None)
    with httpx.Client(verify=ssl.create_default_context(cafile=args.ca_file)) as http:
        doctor = Doctor(
            env,
            http=http,
            credential=credential,
            ca_file=args.ca_file,
            recorder_port=args.recorder_port,
            arm_endpoint=args.arm_endpoint,
            log_analytics_endpoint=args.log_analytics_endpoint,
        )
        findings = doctor.run()
    print_findings(findings, as_json=args.json)
    return 1 if any(finding.status == "fail" for finding in findings) else 0


def print_findings(findings: Sequence[Finding], *, as_json: bool = False) -> None:
    for finding in findings:
        if as_json:
            print(json.dumps(asdict(finding)))
        else:
            print(f"{finding.status:<8} {finding.check:<26} {finding.detail}")
    sys.stdout.flush()
