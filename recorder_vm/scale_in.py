"""Scale-in protection of this scale-set instance while it holds calls.

Calls are pinned to the instance that answered them and may last hours; autoscale must not remove an
instance that still records. The recorder sets `protectFromScaleIn` on its own VM (ARM, with the managed
identity; the infra grants a custom role for exactly this) as soon as it holds a call, and clears it once
it has held none for `release_after` seconds, so a quiet minute between calls does not flap the flag.
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{arm_endpoint.rstrip('/')}{vm_resource_id}?api-version={API_VERSION}"
        self._credential = credential
        self._http = http
        self._active_calls = active_calls
        self._release_after = release_after
        self._clock = clock
        self._last_busy: float | None = None
        self.protected: bool | None = None  # what ARM was last told (None: nothing yet)
        self.updates = 0

    def wanted(self) -> bool:
        now = self._clock()
        if self._active_calls() > 0:
            self._last_busy = now
            return True
        return self._last_busy is not None and now - self._last_busy < self._release_after

    async def reconcile(self) -> None:
        """Tell ARM when what we want differs from what it was last told."""
        wanted = self.wanted()
        if wanted == self.protected:
            return
        try:
            token = await asyncio.to_thread(self._credential.get_token, ARM_SCOPE)
            response = await self._http.put(
                self._url,
                json={"properties": {"protectionPolicy": {"protectFromScaleIn": wanted}}},
                headers={"Authorization": f"Bearer {getattr(token, 'token', '')}"},
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
