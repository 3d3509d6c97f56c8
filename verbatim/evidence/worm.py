"""WORM on the recordings account: version-level immutability policies and legal holds, as real Blob requests.

In Azure the recordings container has version-level immutability (infra/), and these requests make each
sealed blob version undeletable and unchangeable until its retention date (`Set Blob Immutability Policy`:
`PUT ?comp=immutabilityPolicies`, headers `x-ms-immutability-policy-until-date` and
`x-ms-immutability-policy-mode: Unlocked`) and while a legal hold is set (`Set Blob Legal Hold`:
`PUT ?comp=legalhold`, header `x-ms-legal-hold`). Azure then refuses deletes and overwrites of that version
itself, for every caller. Azurite implements neither — it answers 501 Not Implemented — so locally the
requests are sent (and tests assert them) but nothing is enforced by the store: the application's own
guard (`verbatim.evidence.guard`) is then the only line, and a 501 is tolerated ONLY when the settings say
the account is the emulator. "Unlocked" lets the retention be extended (and, by an account owner with the
`immutableStorage/runAsSuperUser` permission, shortened or removed); locking is a separate, irreversible
operator decision, never taken by the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobImmutabilityPolicyMode, ContainerClient, ImmutabilityPolicy

log = logging.getLogger(__name__)

Enforcement = Literal["azure", "emulator-not-enforced"]


class WormNotApplied(RuntimeError):
    """The store refused or failed an immutability or legal-hold request."""


@dataclass(frozen=True)
class WormOutcome:
    blob_name: str
    action: Literal["immutability", "legal-hold", "unchanged"]
    enforcement: Enforcement


class Worm:
    """Sets immutability policies and legal holds on blobs of one container."""

    def __init__(self, container: ContainerClient, *, emulator: bool) -> None:
        self._container = container
        self._emulator = emulator

    def protect_until(self, blob_name: str, until: datetime, version_id: str | None = None) -> WormOutcome:
        """Make the blob (version) immutable until `until`; extend-only: an existing later date is kept."""
        blob = self._container.get_blob_client(blob_name)
        current = blob.get_blob_properties(version_id=version_id).immutability_policy
        if current.expiry_time is not None and current.expiry_time >= until:
            return WormOutcome(blob_name, "unchanged", "azure")
        policy = ImmutabilityPolicy(expiry_time=until, policy_mode=BlobImmutabilityPolicyMode.Unlocked)
        return self._send(
            blob_name, "immutability", lambda: blob.set_immutability_policy(policy, version_id=version_id)
        )

    def set_legal_hold(self, blob_name: str, hold: bool, version_id: str | None = None) -> WormOutcome:
        blob = self._container.get_blob_client(blob_name)
        return self._send(blob_name, "legal-hold", lambda: blob.set_legal_hold(hold, version_id=version_id))

    def _send(
        self, blob_name: str, action: Literal["immutability", "legal-hold"], request: Callable[[], object]
    ) -> WormOutcome:
        try:
            request()
        except HttpResponseError as error:
            if error.status_code == 501 and self._emulator:
                # Azurite: not implemented. Azure would enforce this; here only the app's guard does.
                log.info("%s not enforced by the storage emulator for %s", action, blob_name)
                return WormOutcome(blob_name, action, "emulator-not-enforced")
            raise WormNotApplied(f"{action} on {blob_name} failed: {error.status_code} {error.reason}") from error
        return WormOutcome(blob_name, action, "azure")


class WormProtection(Protocol):
    """What the seal asks of the store: keep a blob (version) until a date, and under legal hold."""

    def protect_until(self, blob_name: str, until: datetime, version_id: str | None = None) -> WormOutcome: ...

    def set_legal_hold(self, blob_name: str, hold: bool, version_id: str | None = None) -> WormOutcome: ...


class InMemoryWorm:
    """`WormProtection` for service-level tests: remembers what was asked (extend-only, like `Worm`) and says
    it was not enforced by a store, as on the emulator."""

    def __init__(self) -> None:
        self.until: dict[tuple[str, str | None], datetime] = {}
        self.held: dict[tuple[str, str | None], bool] = {}

    def protect_until(self, blob_name: str, until: datetime, version_id: str | None = None) -> WormOutcome:
        key = (blob_name, version_id)
        current = self.until.get(key)
        if current is not None and current >= until:
            return WormOutcome(blob_name, "unchanged", "emulator-not-enforced")
        self.until[key] = until
        return WormOutcome(blob_name, "immutability", "emulator-not-enforced")

    def set_legal_hold(self, blob_name: str, hold: bool, version_id: str | None = None) -> WormOutcome:
        self.held[(blob_name, version_id)] = hold
        return WormOutcome(blob_name, "legal-hold", "emulator-not-enforced")
