"""Scale-in protection of this scale-set instance while it holds calls.

Calls are pinned to the instance that answered them and may last hours; autoscale must not remove an
instance that still records. The recorder sets `protectFromScaleIn` on its own VM (ARM, with the managed
identity; the infra grants a custom role for exactly this) as soon as it holds a call, and clears it once
it has held none for `release_after` seconds, so a quiet minute between calls does not flap the flag.

Every instance shares the scale set's identity (a scale set's managed identity, user- or system-assigned, is one
principal for all its instances), and Azure RBAC conditions do not apply to Compute actions, so the role cannot be
narrowed to "my own VM": a bug or a compromised instance could change another's flag. Each instance therefore
re-reads its own flag every `verify_every` seconds and puts back what it wants when ARM says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import httpx

log = logging.getLogger(__name__)

API_VERSION = "2024-07-01"
ARM_SCOPE = "https://management.azure.com/.default"


class TokenSource(Protocol):
    def get_token(self, *scopes: str) -> object:
        """An object with a `token` attribute (azure-identity's `AccessToken`)."""
        ...


class ScaleInProtection:
    def __init__(
        self,
        *,
        vm_resource_id: str,
        credential: TokenSource,
        http: httpx.AsyncClient,
        active_calls: Callable[[], int],
        arm_endpoint: str = "https://management.azure.com",
        release_after: float = 60.0,
        verify_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{arm_endpoint.rstrip('/')}{vm_resource_id}?api-version={API_VERSION}"
        self._credential = credential
        self._http = http
        self._active_calls = active_calls
        self._release_after = release_after
        self._clock = clock
        self._last_busy: float | None = None
        self._verify_every = verify_every
        self._verified_at = clock()
        self.protected: bool | None = None  # what ARM was last told (None: nothing yet)
        self.updates = 0

    def wanted(self) -> bool:
        now = self._clock()
        if self._active_calls() > 0:
            self._last_busy = now
            return True
        return self._last_busy is not None and now - self._last_busy < self._release_after

    async def _token(self) -> str:
        token = await asyncio.to_thread(self._credential.get_token, ARM_SCOPE)
        return str(getattr(token, "token", ""))

    async def verify(self) -> None:
        """Re-read this VM's flag; when someone else changed it, forget what ARM was told so reconcile puts it back."""
        self._verified_at = self._clock()
        try:
            response = await self._http.get(
                self._url, headers={"Authorization": f"Bearer {await self._token()}"}, timeout=30.0
            )
            response.raise_for_status()
            policy = response.json().get("properties", {}).get("protectionPolicy") or {}
        except Exception as error:  # ARM or the identity endpoint: checked again next time
            log.warning("scale-in protection not verified", extra={"error": type(error).__name__})
            return
        actual = bool(policy.get("protectFromScaleIn", False))
        if self.protected is not None and actual != self.protected:
            log.warning(
                "scale-in protection was changed outside this instance",
                extra={"protect_from_scale_in": actual, "expected": self.protected},
            )
            self.protected = actual

    async def reconcile(self) -> None:
        """Tell ARM when what we want differs from what it was last told (or from what it now says)."""
        if self.protected is not None and self._clock() - self._verified_at >= self._verify_every:
            await self.verify()
        wanted = self.wanted()
        if wanted == self.protected:
            return
        try:
            response = await self._http.put(
                self._url,
                json={"properties": {"protectionPolicy": {"protectFromScaleIn": wanted}}},
                headers={"Authorization": f"Bearer {await self._token()}"},
                timeout=30.0,
            )
            response.raise_for_status()
        except Exception as error:  # ARM or the identity endpoint: try again on the next tick
            log.warning("scale-in protection not updated", extra={"wanted": wanted, "error": type(error).__name__})
            return
        self.protected = wanted
        self.updates += 1
        log.info("scale-in protection updated", extra={"protect_from_scale_in": wanted})

    async def run(self, interval: float = 5.0) -> None:
        while True:
            await self.reconcile()
            await asyncio.sleep(interval)
