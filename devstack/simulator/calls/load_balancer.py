"""The load balancer in front of a recorder's instances (simulated; it is the bot's network, not Teams').

Only the incoming-call notification is load-balanced: it goes to a backend whose health probe answers 200 when
the notification is sent (a draining or dead instance is out of rotation), round robin, and the invitations of
one recorder group (ConcurrentInvitationCount 2, for one observed user) go to different instances while there are
enough healthy ones. Every later notification of the call goes to the answer's callbackUri, which names the
instance that answered; nothing re-routes it when that instance is gone (calls are pinned to the instance that
holds their media, Microsoft: "Real-time media calls stay where they are created"; see docs/recorder.md)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from ..tenant import LoadBalancer
from .model import BotLeg

PROBE_TIMEOUT_SECONDS = 1.0


class LoadBalancers:
    def __init__(self) -> None:
        self.http: aiohttp.ClientSession | None = None
        self._next: dict[str, int] = {}  # round robin position per application instance

    async def _healthy(self, backend: str, probe_path: str) -> bool:
        assert self.http is not None
        parts = urlsplit(backend)
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
        try:
            async with self.http.get(f"{parts.scheme}://{parts.netloc}{probe_path}", timeout=timeout) as response:
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def pick(self, leg: BotLeg, balancer: LoadBalancer) -> str | None:
        """The backend this invitation goes to, or None when no instance is healthy."""
        probes = await asyncio.gather(*(self._healthy(b, balancer.probe_path) for b in balancer.backends))
        healthy = [b for b, ok in zip(balancer.backends, probes, strict=True) if ok]
        if not healthy:
            return None
        # No await from here on: siblings sent at the same time see each other's choice.
        siblings = leg.group.legs if leg.group is not None else []
        taken = {s.backend for s in siblings if s is not leg and s.backend is not None}
        candidates = [b for b in healthy if b not in taken] or healthy
        start = self._next.get(leg.instance.id, 0)
        ordered = sorted(candidates, key=lambda b: (balancer.backends.index(b) - start) % len(balancer.backends))
        chosen = ordered[0]
        self._next[leg.instance.id] = (balancer.backends.index(chosen) + 1) % len(balancer.backends)
        leg.backend = chosen
        return chosen
