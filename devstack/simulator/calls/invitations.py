"""Compliance-recording invitations: every recorder application of the observed user's effective policy
(and, for a transferred call or a delegate's call, of the transferor's or the principal's policy when it
records rerouted calls: New-CsTeamsComplianceRecordingPolicy, RecordReroutedCalls) is invited
ConcurrentInvitationCount times plus its paired applications; each invitation is delivered to the bot's
webhook and must be answered within the answer window; bots can also be invited as plain participants."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..clock import Clock
from ..config import SimConfig
from ..faults import Faults
from ..tenant import TenantStore
from .legs import BotLegs
from .load_balancer import LoadBalancers
from .model import BotLeg, Party, RecorderGroup, fmt
from .notifier import Notifier
from .payloads import comms, incoming_call

if TYPE_CHECKING:
    from .conversation import Conversation


class Invitations:
    def __init__(
        self,
        clock: Clock,
        config: SimConfig,
        faults: Faults,
        tenant: TenantStore,
        notifier: Notifier,
        legs: BotLegs,
    ) -> None:
        self.clock = clock
        self.config = config
        self.faults = faults
        self.tenant = tenant
        self.notifier = notifier
        self.legs = legs
        self.balancers = LoadBalancers()

    def invite(self, conv: Conversation, party: Party, transferor: Party | None) -> None:
        if party.user is None:
            return
        groups: list[RecorderGroup] = []
        policy = self.tenant.recording_policy(party.user)
        party.policy = policy
        if policy is not None:
            groups += [RecorderGroup(app, policy, party) for app in policy.applications]
        if transferor is not None and transferor.user is not None:
            rerouted = self.tenant.recording_policy(transferor.user)
            if rerouted is not None and rerouted.record_rerouted_calls:
                mine = {g.app.id for g in groups}
                for app in rerouted.applications:
                    if app.id not in mine:
                        groups.append(RecorderGroup(app, rerouted, party, rerouted_from=transferor))
        if party.principal is not None:
            delegated = self.tenant.recording_policy(party.principal)
            if delegated is not None and delegated.record_rerouted_calls:
                mine = {g.app.id for g in groups}
                groups += [RecorderGroup(app, delegated, party) for app in delegated.applications if app.id not in mine]
        party.groups = groups
        for group in groups:
            instances = [group.app.id] * group.app.concurrent_invitation_count + list(group.app.paired_applications)
            for number, instance_id in enumerate(instances, start=1):
                instance = self.tenant.instance(instance_id)
                if instance is None:
                    continue
                leg = self.legs.new(conv, instance, group, party, number)
                leg.transferor = group.rerouted_from
                group.legs.append(leg)
        for group in groups:
            for leg in group.legs:
                self.send(leg)

    def invite_plain(self, conv: Conversation, instance_id: str) -> None:
        instance = self.tenant.instance(instance_id)
        if instance is None:
            return
        leg = self.legs.new(conv, instance, None, None, 1)
        leg.compliance = False
        self.send(leg)

    def send(self, leg: BotLeg) -> None:
        leg.invited_at = self.clock.now()
        leg.invited_wall = time.monotonic()
        leg.deadline = self.clock.call_later(
            self.config.answer_timeout_seconds, lambda: self._answer_window_over(leg), label=f"answer window {leg.id}"
        )
        fault = self.faults.take("recorderInvitation", lambda s: s.application_instance_id in (None, leg.instance.id))
        if fault is not None and fault.mode == "fail":
            self.clock.spawn(self.legs.failed(leg, "failed", "the platform could not deliver the invitation (fault)"))
            return
        if fault is not None:
            leg.notifications.append(
                {"kind": "incoming", "at": fmt(self.clock.now()), "delivered": False, "error": "dropped (fault)"}
            )
            return
        self.clock.spawn(self._deliver_incoming(leg))

    async def _deliver_incoming(self, leg: BotLeg) -> None:
        payload = comms("created", leg.id, incoming_call(leg, self.tenant.model.tenant.id))
        url = leg.instance.webhook
        if leg.instance.load_balancer is not None:
            backend = await self.balancers.pick(leg, leg.instance.load_balancer)
            if backend is None:
                leg.notifications.append(
                    {"kind": "incoming", "at": fmt(self.clock.now()), "delivered": False, "error": "no healthy backend"}
                )
                await self.legs.failed(leg, "failed", "the load balancer has no healthy recorder instance")
                return
            url = backend
        ok = await self.notifier.post(leg, url, payload, "incoming")
        if not ok and leg.state == "incoming":
            await self.legs.failed(
                leg, "failed", f"the incoming-call notification was not accepted: {leg.notifications[-1].get('error')}"
            )

    async def _answer_window_over(self, leg: BotLeg) -> None:
        if leg.state == "incoming":
            await self.legs.failed(
                leg, "timedOut", f"not answered within {self.config.answer_timeout_seconds:g} s (answer window)"
            )
