"""Scale-in protection follows the calls: set with the first call, released a while after the last."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from devstack.processes import free_port
from recorder_vm.scale_in import ScaleInProtection

VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/rec/virtualMachines/3"


@dataclass
class Token:
    token: str


class Credential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> Token:
        self.scopes.append(scopes)
        return Token("arm-token")


def test_protection_is_set_with_the_first_call_and_released_only_after_a_quiet_period() -> None:
    async def scenario() -> None:
        requests: list[dict[str, Any]] = []
        fail = {"next": False}

        async def put(request: web.Request) -> web.Response:
            assert request.headers["Authorization"] == "Bearer arm-token"
            assert request.query["api-version"]
            if fail["next"]:
                fail["next"] = False
                return web.json_response({"error": {"code": "Throttled"}}, status=429)
            requests.append({"path": request.path, "body": await request.json()})
            return web.json_response({})

        app = web.Application()
        app.router.add_put(VM, put)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        calls, now = {"n": 0}, {"t": 0.0}
        async with httpx.AsyncClient() as http:
            protection = ScaleInProtection(
                vm_resource_id=VM,
                credential=Credential(),
                http=http,
                active_calls=lambda: calls["n"],
                arm_endpoint=f"http://127.0.0.1:{port}",
                release_after=60,
                clock=lambda: now["t"],
            )
            await protection.reconcile()  # idle at start: clear whatever an earlier (crashed) process left set
            assert protection.protected is False and requests[-1]["body"]["properties"]["protectionPolicy"] == {
                "protectFromScaleIn": False
            }

            calls["n"] = 2
            fail["next"] = True
            await protection.reconcile()  # ARM refused: retried on the next tick
            assert protection.protected is False
            await protection.reconcile()
            assert protection.protected is True
            assert requests[-1] == {
                "path": VM,
                "body": {"properties": {"protectionPolicy": {"protectFromScaleIn": True}}},
            }

            calls["n"] = 0
            now["t"] = 30.0
            await protection.reconcile()
            assert protection.protected is True  # quiet for 30 s only
            now["t"] = 61.0
            await protection.reconcile()
            assert protection.protected is False
            assert requests[-1]["body"]["properties"]["protectionPolicy"]["protectFromScaleIn"] is False
            assert len(requests) == 3
        await runner.cleanup()

    asyncio.run(scenario())


def test_a_flag_changed_by_another_instance_is_put_back() -> None:
    """The instances share one identity, so RBAC cannot stop another from clearing our flag; we re-read and repair."""

    async def scenario() -> None:
        state = {"protectFromScaleIn": False}
        puts: list[bool] = []

        async def get(request: web.Request) -> web.Response:
            return web.json_response({"properties": {"protectionPolicy": dict(state)}})

        async def put(request: web.Request) -> web.Response:
            body = await request.json()
            state.update(body["properties"]["protectionPolicy"])
            puts.append(state["protectFromScaleIn"])
            return web.json_response({})

        app = web.Application()
        app.router.add_get(VM, get)
        app.router.add_put(VM, put)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        now = {"t": 0.0}
        async with httpx.AsyncClient() as http:
            protection = ScaleInProtection(
                vm_resource_id=VM,
                credential=Credential(),
                http=http,
                active_calls=lambda: 1,
                arm_endpoint=f"http://127.0.0.1:{port}",
                verify_every=300,
                clock=lambda: now["t"],
            )
            await protection.reconcile()
            assert puts == [True]

            state["protectFromScaleIn"] = False  # another instance (same identity) clears it
            now["t"] = 100.0
            await protection.reconcile()
            assert puts == [True]  # not re-read yet
            now["t"] = 301.0
            await protection.reconcile()
            assert puts == [True, True] and state["protectFromScaleIn"] is True
            now["t"] = 700.0
            await protection.reconcile()
            assert puts == [True, True]  # re-read, unchanged: nothing to write
        await runner.cleanup()

    asyncio.run(scenario())
