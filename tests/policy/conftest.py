"""Shared desired-state texts and builders for the policy tests."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from verbatim.platform.settings import reload_settings
from verbatim.policy.model import DesiredState
from verbatim.policy.validation import load_desired_state

RECORDER = "verbatim-recorder@contoso.onmicrosoft.com"
RECORDER_2 = "verbatim-recorder-2@contoso.onmicrosoft.com"
TRADERS = "6f1c2a3b-0000-4000-8000-0000000000a1"
SALES = "6f1c2a3b-0000-4000-8000-0000000000a2"
ADVISERS = "6f1c2a3b-0000-4000-8000-0000000000a3"

VALID = textwrap.dedent(
    f"""\
    version: 1
    applicationInstances:
      - userPrincipalName: {RECORDER}
        displayName: Verbatim Recorder
        applicationId: 6f1c2a3b-0000-4000-8000-000000000001
      - userPrincipalName: {RECORDER_2}
        displayName: Verbatim Recorder (paired)
        applicationId: 6f1c2a3b-0000-4000-8000-000000000002
    recordingPolicies:
      - name: Traders-Strict
        enabled: true
        description: MiFID II voice recording, fail-closed
        retentionClass: mifid-5y
        recordReroutedCalls: true
        recorders:
          - instance: {RECORDER}
            pairedWith: {RECORDER_2}
      - name: Advisers-Relaxed
        enabled: true
        recorders:
          - instance: {RECORDER}
            concurrentInvitationCount: 2
            requiredBeforeCallEstablishment: false
            requiredBeforeMeetingJoin: false
            requiredDuringCall: false
            requiredDuringMeeting: false
      - name: Not-Recorded
        enabled: false
    assignments:
      users:
        - user: dana@contoso.com
          policy: Advisers-Relaxed
      groups:
        - group: {TRADERS}
          name: Traders
          policy: Traders-Strict
          rank: 1
        - group: {SALES}
          name: Sales
          policy: Advisers-Relaxed
          rank: 2
    callingPolicies:
      - name: No-Convenience-Recording
        allowCloudRecordingForCalls: false
        groups:
          - group: {TRADERS}
            name: Traders
            rank: 1
    jurisdictions:
      exclusionPolicy: Not-Recorded
      rules:
        - countries: [DE, AT]
          rule: consent-required
          action: warn
        - countries: [NO]
          rule: forbidden
          action: exclude
          note: works council agreement pending
    mustRecord:
      groups:
        - group: {TRADERS}
          name: Traders
    """
)


def desired(text: str = VALID) -> DesiredState:
    return load_desired_state(text, "test.yaml").desired


@pytest.fixture
def valid_text() -> str:
    return VALID


# --- the Teams/Graph simulator as a real process -----------------------------------------------------------

DEMO_TENANT_ID = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
FUNCTION_APP_ID = "9a3d5c71-2e4f-4b60-8d1a-7f6e5d4c3b21"
FUNCTION_APP_SECRET = "sim-functions-local-only"  # the demo tenant's local-only simulator credential


@dataclass(frozen=True)
class Simulator:
    http_url: str
    https_url: str
    ca_file: Path
    demo: dict[str, Any]

    def reset(self) -> None:
        """Back to the demo tenant, as `verbatim-dev up` starts it."""
        httpx.put(f"{self.http_url}/sim/tenant", json=self.demo, timeout=10).raise_for_status()

    def tenant(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.http_url}/sim/tenant", timeout=10).json()
        return data

    def put(self, collection: str, key: str, item: dict[str, Any]) -> None:
        httpx.put(f"{self.http_url}/sim/{collection}/{key}", json=item, timeout=10).raise_for_status()

    def effective(self, user: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.http_url}/sim/users/{user}/effectivePolicies", timeout=10).json()
        return data


@pytest.fixture(scope="session")
def simulator_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    from devstack.processes import ManagedProcess, free_port, http_ready
    from devstack.simulator import DEMO_TENANT, health_url, launch_argv

    root = tmp_path_factory.mktemp("simulator")
    port, https_port = free_port(), free_port()
    process = ManagedProcess(
        name="simulator",
        argv=launch_argv("127.0.0.1", port, DEMO_TENANT, "realtime", https_port=https_port, state_dir=root / "state"),
        ready=http_ready(health_url("127.0.0.1", port)),
        log_path=root / "simulator.log",
        ports=(port, https_port),
    )
    with process:
        yield Simulator(
            http_url=f"http://127.0.0.1:{port}",
            https_url=f"https://127.0.0.1:{https_port}",
            ca_file=root / "state" / "tls" / "ca.pem",
            demo=yaml.safe_load(DEMO_TENANT.read_text()),
        )


@pytest.fixture
def simulator(simulator_service: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """The simulator with the demo tenant, and Graph settings for the Function App's app registration."""
    simulator_service.reset()
    monkeypatch.setenv("GRAPH_BASE_URL", simulator_service.http_url)
    monkeypatch.setenv("GRAPH_AUTHORITY_HOST", simulator_service.https_url)
    monkeypatch.setenv("GRAPH_CA_CERT", str(simulator_service.ca_file))
    monkeypatch.setenv("GRAPH_TENANT_ID", DEMO_TENANT_ID)
    monkeypatch.setenv("GRAPH_CLIENT_ID", FUNCTION_APP_ID)
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", FUNCTION_APP_SECRET)
    monkeypatch.setenv("POLICY_SIMULATOR_URL", simulator_service.http_url)
    reload_settings()
    yield simulator_service
    reload_settings()
