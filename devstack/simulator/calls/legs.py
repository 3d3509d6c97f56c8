"""The bots' legs: each invitation's call with its id, how it fails before an answer (rejected, timed out,
undeliverable), how it ends after one (DELETE, keepAlive expiry, media failure, the call's end) with the
terminating/terminated notifications, and the keepAlive window that keeps it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..clock import Clock
from ..config import SimConfig
from ..tenant import ApplicationInstance
from .model import BotLeg, LegState, Party, RecorderGroup
from .notifier import Notifier
from .payloads import call_state

if TYPE_CHECKING:
    from .conversation import Conversation


class BotLegs:
    def __init__(self, clock: Clock, config: SimConfig, notifier: Notifier) -> None:
        self.clock = clock
        self.config = config
        self.notifier = notifier
        self.by_id: dict[str, BotLeg] = {}
        self._bot_source = 1000

    def new(
        self,
        conv: Conversation,
        instance: ApplicationInstance,
        group: RecorderGroup | None,
        party: Party | None,
        n: int,
    ) -> BotLeg:
        self._bot_source += 1
        leg = BotLeg(str(uuid.uuid4()), conv, instance, group, party, n, self._bot_source)
        conv.legs.append(leg)
        self.by_id[leg.id] = leg
        return leg

    async def failed(self, leg: BotLeg, state: LegState, reason: str) -> None:
        if leg.state != "incoming":
            return
        leg.state, leg.reason, leg.ended_at = state, reason, self.clock.now()
        if leg.deadline is not None:
            leg.deadline.cancel()
        leg.conv.event("invitationFailed", callId=leg.id, state=state, reason=reason)
        await leg.conv.evaluate()

    async def release_party(self, party: Party, result: tuple[int, int, str]) -> None:
        for group in party.groups:
            for leg in group.legs:
                await self.terminate(leg, result, evaluate=False)

    async def terminate(
        self, leg: BotLeg, result: tuple[int, int, str], *, evaluate: bool = True, reason: str | None = None
    ) -> None:
        if leg.state == "incoming":
            leg.state, leg.reason, leg.ended_at = (
                "cancelled",
                reason or "the call ended before the answer",
                self.clock.now(),
            )
            if leg.deadline is not None:
                leg.deadline.cancel()
            return
        if leg.state not in ("answered", "established"):
            return
        code, subcode, message = result
        leg.state, leg.ended_at = "terminated", self.clock.now()
        leg.reason = reason or message
        leg.result = {
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": code,
            "subcode": subcode,
            "message": message,
        }
        if leg.keepalive_timer is not None:
            leg.keepalive_timer.cancel()
        if leg.session is not None:
            await leg.session.end()
        leg.conv.event("recorderLeft", callId=leg.id, code=code, subcode=subcode, reason=leg.reason)
        if leg.callback_uri:
            state_data = call_state(leg, "terminating")
            terminated = call_state(leg, "terminated")
            terminated["resultInfo"] = leg.result
            self.notifier.send_ordered(
                leg, [("updated", state_data, "terminating"), ("deleted", terminated, "terminated")]
            )
        self.notifier.roster_changed(leg.conv)
        if evaluate:
            await leg.conv.evaluate()

    def arm_keepalive(self, leg: BotLeg) -> None:
        if leg.keepalive_timer is not None:
            leg.keepalive_timer.cancel()
        leg.keepalive_timer = self.clock.call_later(
            self.config.keep_alive_timeout_minutes * 60,
            lambda: self.terminate(leg, (408, 8537, "Keep Alive timeout, cleaned up inactive call.")),
            label=f"keepAlive {leg.id}",
        )
