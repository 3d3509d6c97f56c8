"""The chats service: the store, its change publisher, the Graph and export APIs and the ``/sim`` routes,
built once and handed to the simulator's server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..clock import Clock
from ..config import SimConfig
from ..identity import Identity
from ..tenant import TenantStore
from .export_api import ExportApi, ExportThrottle
from .graph_api import ChatGraphApi
from .notifier import ChatNotifier
from .scenarios import ScenarioRunner
from .sim_api import MeetingResolver, SimChatsApi
from .store import ChatStore

if TYPE_CHECKING:
    from ..subscriptions import Subscriptions


class Chats:
    def __init__(
        self,
        clock: Clock,
        config: SimConfig,
        tenant: TenantStore,
        identity: Identity,
        subscriptions: Subscriptions,
        graph_base: str,
        meetings: MeetingResolver | None = None,
    ) -> None:
        self.store = ChatStore(clock, tenant, graph_base)
        self.store.listeners.append(ChatNotifier(subscriptions))
        self.runner = ScenarioRunner(clock, self.store)
        self.throttle = ExportThrottle(lambda: config.export_requests_per_second)
        self.export = ExportApi(self.store, identity, tenant, self.throttle)
        self.graph = ChatGraphApi(self.store, identity, tenant)
        self.sim = SimChatsApi(self.store, self.runner, identity, tenant, meetings)

    def routes(self) -> list[web.RouteDef]:
        return [*self.sim.routes(), *self.export.routes(), *self.graph.routes()]

    def reset(self) -> None:
        self.store.chats.clear()
        self.runner.items.clear()
        self.throttle.reset()
