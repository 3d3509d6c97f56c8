"""The calls service: builds the parts of the simulated calling platform once, shares the scenario and leg
registries between them, and hands the simulator's server their routes."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ..callrecords import CallRecords
from ..clock import Clock
from ..config import SimConfig
from ..faults import Faults
from ..identity import Identity
from ..media import MediaPump
from ..speech import SpeechRenderer
from ..tenant import TenantStore
from .conversation import Scenario
from .graph_api import GraphCallsApi
from .invitations import Invitations
from .legs import BotLegs
from .media_links import MediaLinks
from .model import BotLeg
from .notifier import Notifier
from .placement import Placement
from .sim_api import SimCallsApi


class Calls:
    def __init__(
        self,
        clock: Clock,
        config: SimConfig,
        tenant: TenantStore,
        identity: Identity,
        faults: Faults,
        records: CallRecords,
        speech: SpeechRenderer,
        pump: MediaPump,
    ) -> None:
        self.clock = clock
        self.config = config
        self.tenant = tenant
        self.identity = identity
        self.faults = faults
        self.records = records
        self.speech = speech
        self.pump = pump
        self.scenarios: dict[str, Scenario] = {}
        self.notifier = Notifier(clock, config, tenant, identity)
        self.bot_legs = BotLegs(clock, config, self.notifier)
        self.legs: dict[str, BotLeg] = self.bot_legs.by_id
        self.invitations = Invitations(clock, config, faults, tenant, self.notifier, self.bot_legs)
        self.media = MediaLinks(clock, faults, self.bot_legs)
        self.placement = Placement(self)
        self.graph_api = GraphCallsApi(self)
        self.sim_api = SimCallsApi(self)

    def start(self, http: aiohttp.ClientSession) -> None:
        self.notifier.http = http
        self.media.http = http
        self.invitations.balancers.http = http

    def routes(self) -> list[web.RouteDef]:
        return self.graph_api.routes() + self.sim_api.routes()
