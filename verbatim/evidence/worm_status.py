"""Whether the recordings container's default WORM policy is locked.

Locking is irreversible and an operator's decision (docs/deploy.md, "Locking WORM"); until it is done an
account owner could still shorten or delete the policy. The lock is management-plane state: the data plane
does not show it, so it is read from Azure Resource Manager ("Blob Containers - Get Immutability Policy",
https://learn.microsoft.com/rest/api/storagerp/blob-containers/get-immutability-policy). The Function App
checks daily and logs `evidence store WORM policy is not locked` (the alert of infra/modules/alerts.bicep);
`verbatim doctor` uses the same reader with the operator's sign-in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from verbatim.platform.settings import Settings

log = logging.getLogger(__name__)

API_VERSION = "2023-05-01"
ARM_SCOPE = "https://management.azure.com/.default"
NOT_LOCKED_MESSAGE = "evidence store WORM policy is not locked"

PolicyState = Literal["Locked", "Unlocked", "Missing"]


@dataclass(frozen=True)
class WormPolicy:
    state: PolicyState
    retention_days: int | None = None


def policy_url(arm_endpoint: str, container_resource_id: str) -> str:
    """The ARM URL of a container's default immutability policy."""
    return (
        f"{arm_endpoint.rstrip('/')}{container_resource_id.rstrip('/')}/immutabilityPolicies/default"
        f"?api-version={API_VERSION}"
    )


def read_policy(http: httpx.Client, url: str, token: str) -> WormPolicy:
    """GET the policy; a container without one reports `Missing`. Other failures raise (httpx errors)."""
    response = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
    if response.status_code == 404:
        return WormPolicy("Missing")
    response.raise_for_status()
    properties = response.json().get("properties") or {}
    state = properties.get("state")
    days = properties.get("immutabilityPeriodSinceCreationInDays")
    if state not in ("Locked", "Unlocked"):
        return WormPolicy("Missing", days if isinstance(days, int) else None)
    return WormPolicy(state, days if isinstance(days, int) else None)


def report_worm_status(policy: WormPolicy, container_resource_id: str) -> bool:
    """Log the state; True when locked. The not-locked line is what the operators' alert looks for."""
    if policy.state == "Locked":
        log.info("evidence store WORM policy is locked", extra={"container": container_resource_id})
        return True
    log.warning(
        "%s (state %s)",
        NOT_LOCKED_MESSAGE,
        policy.state,
        extra={"container": container_resource_id, "retention_days": policy.retention_days},
    )
    return False


def check_worm_locked(
    settings: Settings, http: httpx.Client | None = None, credential: TokenCredential | None = None
) -> bool | None:
    """The Function App's daily check with its managed identity; None when no container is configured."""
    if not settings.recordings_container_resource_id:
        return None
    if credential is None:
        from verbatim.platform.clients import credential_for

        credential = credential_for(settings.recordings_storage_client_id or settings.azure_client_id)
    token = credential.get_token(ARM_SCOPE)
    url = policy_url(settings.arm_endpoint, settings.recordings_container_resource_id)
    client = http or httpx.Client()
    try:
        policy = read_policy(client, url, token.token)
    finally:
        if http is None:
            client.close()
    return report_worm_status(policy, settings.recordings_container_resource_id)


def read_worm_lock(settings: Settings, credential: TokenCredential | None = None) -> WormPolicy | None:
    """The default policy's state, read quietly (no alert line: that is the daily check's); None when no
    container resource id is configured."""
    if not settings.recordings_container_resource_id:
        return None
    if credential is None:
        from verbatim.platform.clients import credential_for

        credential = credential_for(settings.recordings_storage_client_id or settings.azure_client_id)
    token = credential.get_token(ARM_SCOPE)
    with httpx.Client() as client:
        return read_policy(
            client, policy_url(settings.arm_endpoint, settings.recordings_container_resource_id), token.token
        )
