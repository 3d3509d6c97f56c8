"""What the platform POSTs to a bot: notifications to its webhook or callbackUri, signed with a platform
token, sent in order per leg, each delivery noted on the leg; and roster updates (full or delta) to every
established leg when the call's participants change."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp

from ..clock import Clock
from ..config import SimConfig
from ..identity import Identity
from ..tenant import TenantStore
from .model import BotLeg, fmt
from .payloads import comms, roster

if TYPE_CHECKING:
    from .conversation import Conversation


class Notifier:
    def __init__(self, clock: Clock, config: SimConfig, tenant: TenantStore, identity: Identity) -> None:
        self.clock = clock
        self.config = config
        self.tenant = tenant
        self.identity = identity
        self.http: aiohttp.ClientSession | None = None

    async def post(self, leg: BotLeg, url: str, payload: dict[str, Any], kind: str) -> bool:
        assert self.http is not None
        tenant = self.tenant.model.tenant.id
        headers = {
            "Authorization": f"Bearer {self.identity.platform_token(leg.app_id, tenant)}",
            "Content-Type": "application/json",
            "User-Agent": "Microsoft-Skype/3.0,(Calling/1.0)",
            "Client-Request-Id": str(uuid.uuid4()),
            "Scenario-Id": str(uuid.uuid4()),
            "X-Microsoft-Skype-Chain-ID": leg.conv.call_chain_id,
            "X-Microsoft-Skype-Message-ID": str(uuid.uuid4()),
            "MS-Teams-Region": "EUWE",
        }
        entry: dict[str, Any] = {"kind": kind, "at": fmt(self.clock.now()), "url": url}
        started = time.monotonic()
        try:
            async with self.http.post(
                url,
                data=json.dumps(payload),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.bot_notification_timeout_seconds),
            ) as response:
                await response.read()
                entry["status"] = response.status
                entry["delivered"] = 200 <= response.status < 300
                if not entry["delivered"]:
                    entry["error"] = f"HTTP {response.status}"
        except TimeoutError:
            entry.update(delivered=False, error="timeout")
        except aiohttp.ClientError as error:
            entry.update(delivered=False, error=error.__class__.__name__)
        entry["ms"] = round((time.monotonic() - started) * 1000, 1)
        leg.notifications.append(entry)
        return bool(entry["delivered"])

    def send_ordered(self, leg: BotLeg, items: list[tuple[str, Any, str]], resource_suffix: str = "") -> None:
        """Send notifications to the leg's callbackUri in order (a per-leg lock keeps the order)."""
        url = leg.callback_uri
        if not url:
            return

        async def run() -> None:
            async with leg.lock:
                for change, data, kind in items:
                    path = f"{leg.id}{resource_suffix if kind == 'roster' else ''}"
                    await self.post(leg, url, comms(change, path, data), kind)
                    if kind == "established":
                        leg.established_sent.set()

        self.clock.spawn(run())

    def roster_changed(self, conv: Conversation) -> None:
        if conv.state == "setup":
            return
        current = {p["id"]: p for p in roster(conv, self.tenant.model.tenant.id)}
        for leg in conv.legs:
            if leg.state != "established" or not leg.callback_uri:
                continue
            serialised = {pid: json.dumps(p, sort_keys=True) for pid, p in current.items()}
            if leg.delta_roster:
                changed = [current[pid] for pid, s in serialised.items() if leg.roster_sent.get(pid) != s]
                removed = [pid for pid in leg.roster_sent if pid not in current]
                if not changed and not removed:
                    continue
                items = []
                for participant in changed:
                    leg.roster_seq += 1
                    items.append({**participant, "rosterSequenceNumber": leg.roster_seq})
                for pid in removed:
                    leg.roster_seq += 1
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.participant",
                            "id": pid,
                            "removedState": {"reason": "Removed from the call"},
                            "rosterSequenceNumber": leg.roster_seq,
                        }
                    )
            else:
                if serialised == leg.roster_sent:
                    continue
                items = list(current.values())
            leg.roster_sent = serialised
            self.send_ordered(leg, [("updated", items, "roster")], "/participants")
