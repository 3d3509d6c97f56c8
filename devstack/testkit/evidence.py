"""What a running local stack sealed, read back the way an auditor would: `verbatim verify` of a recording, its
sealed parts from the manifests the ledger pinned, the wall-clock coverage of a presence by those parts, and what
the recorder says it captured. Shared by the stall tests (issue 14) and the chaos run's invariant checker
(issue 23), so both judge a verdict against the same evidence."""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.demo import AUDITOR, DemoStack
from devstack.emulators import REPO_ROOT
from devstack.stack import app_environment, simulator_ca
from verbatim.contracts.evidence import RecordingManifest

SAMPLE_RATE = 16_000


class EvidenceError(AssertionError):
    """What storage holds is not what was sealed (a manifest whose hash the ledger did not pin)."""


@dataclass(frozen=True)
class SealedPart:
    """One sealed part of a recording, read from storage and checked against the hash the ledger pinned."""

    manifest: RecordingManifest
    start: datetime  # wall-clock time of the part's first sample
    seconds: float  # measured when sealing (decoded samples / rate)


def recordings_container(stack: DemoStack) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    return service.get_container_client("recordings")


def verify(stack: DemoStack, recording_id: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`verbatim verify <id> --json` against the stack, as an operator runs it (exit 0: verified)."""
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "verify", recording_id, "--json"],
        env={**os.environ, **app_environment(stack.config)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def verify_ledger(stack: DemoStack, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`verbatim ledger verify` against the stack: the log's tiles, latest checkpoint, anchors and migration."""
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "ledger", "verify"],
        env={**os.environ, **app_environment(stack.config)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sealed_parts(stack: DemoStack, recording_id: str) -> list[SealedPart]:
    """Every sealed part of the recording, from the manifests in storage whose hashes the ledger pinned."""
    found = stack.api(f"/recordings/{recording_id}", AUDITOR)
    recordings = recordings_container(stack)
    parts = []
    for entry in found.get("parts") or [{"manifest": found["manifest"], "manifestSha256": None}]:
        manifest = RecordingManifest.model_validate(entry["manifest"])
        name = entry.get("manifestBlob")
        if name:
            body = recordings.download_blob(name).readall()
            if hashlib.sha256(body).hexdigest() != entry["manifestSha256"]:
                raise EvidenceError(f"{name} is not what was sealed")
            manifest = RecordingManifest.model_validate_json(body)
        track = manifest.track()
        offset = manifest.first_sample  # where a continuation starts in the recording
        if manifest.started_at is None:
            raise EvidenceError(f"{recording_id}: a sealed manifest without started_at")
        start = manifest.started_at + timedelta(seconds=offset / SAMPLE_RATE)
        parts.append(SealedPart(manifest, start, track.samples / track.sample_rate))
    return parts


def covered_fraction(parts: Sequence[SealedPart], presence: dict[str, Any]) -> float:
    """The fraction of the user's presence that the sealed parts' time ranges cover."""
    begin = datetime.fromisoformat(presence["start"])
    end = datetime.fromisoformat(presence["end"])
    spans = sorted((max(p.start, begin), min(p.start + timedelta(seconds=p.seconds), end)) for p in parts)
    covered = 0.0
    reach = begin
    for start, stop in spans:
        start = max(start, reach)
        if stop > start:
            covered += (stop - start).total_seconds()
            reach = stop
    total = (end - begin).total_seconds()
    return covered / total if total > 0 else 0.0


def presence_seconds(presence: dict[str, Any]) -> float:
    return (datetime.fromisoformat(presence["end"]) - datetime.fromisoformat(presence["start"])).total_seconds()


def lifecycle_token(stack: DemoStack) -> str:
    """The token the lifecycle asks a recorder with (client credentials of the Function App's registration for
    our API, from the simulator's Entra-like token endpoint)."""
    tenant = stack.tenant
    response = httpx.post(
        f"https://127.0.0.1:{stack.config.ports.simulator_https}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.functions_app_id,
            "client_secret": tenant.functions_secret,
            "scope": f"{tenant.api_audience}/.default",
        },
        verify=ssl.create_default_context(cafile=str(simulator_ca(stack.config))),
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def recorder_captured_samples(stack: DemoStack, recording_id: str, token: str, recorder_url: str | None = None) -> int:
    """What the recorder says it captured into the recording's mixed track, over every generation (it remembers
    the captures it ended lately; the lifecycle asks the same route before it salvages)."""
    answer = httpx.get(
        f"{recorder_url or stack.config.recorder_url}/api/captures/{recording_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if answer.status_code != 200:
        raise EvidenceError(f"{recording_id}: the recorder answered {answer.status_code}: {answer.text[:300]}")
    return int(answer.json()["samples"])
