"""Calls per instance reach Azure Monitor as the documented custom-metric post, for the autoscale rules."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from devstack.processes import free_port
from recorder_vm.metrics import METRIC, MONITORING_SCOPE, NAMESPACE, CallMetricsPublisher

SCALE_SET = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/rec"


@dataclass
class Token:
    token: str


class Credential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> Token:
        self.scopes.append(scopes)
        return Token("monitor-token")


def test_a_minute_of_samples_is_posted_as_min_max_sum_count_against_the_scale_set() -> None:
    async def scenario() -> None:
        posts: list[dict[str, Any]] = []
        refuse = {"next": True}

        async def post(request: web.Request) -> web.Response:
            assert request.headers["Authorization"] == "Bearer monitor-token"
            if refuse["next"]:
                refuse["next"] = False
                return web.json_response({"error": {"code": "Throttled"}}, status=429)
            posts.append(await request.json())
            return web.json_response({})

        app = web.Application()
        app.router.add_post(f"{SCALE_SET}/metrics", post)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        calls = iter([2, 5, 3, 0])
        credential = Credential()
        async with httpx.AsyncClient() as http:
            publisher = CallMetricsPublisher(
                endpoint=f"http://127.0.0.1:{port}",
                resource_id=SCALE_SET,
                instance="rec000003",
                credential=credential,
                http=http,
                active_calls=lambda: next(calls),
                clock=lambda: 1_796_000_000.0,
            )
            assert await publisher.publish() is False  # nothing sampled yet: nothing sent
            publisher.sample()
            publisher.sample()
            publisher.sample()
            assert await publisher.publish() is False  # refused: the samples are kept
            publisher.sample()
            assert await publisher.publish() is True
            assert await publisher.publish() is False  # sent: nothing left
        await runner.cleanup()

        # Shape of "Ingest custom metrics for an Azure resource using the REST API" (metrics-store-custom-rest-api).
        assert posts == [
            {
                "time": "2026-11-30T00:53:20Z",
                "data": {
                    "baseData": {
                        "metric": METRIC,
                        "namespace": NAMESPACE,
                        "dimNames": ["Instance"],
                        "series": [{"dimValues": ["rec000003"], "min": 0, "max": 5, "sum": 10, "count": 4}],
                    }
                },
            }
        ]
        # The token's audience is https://monitoring.azure.com/ with its trailing slash.
        assert credential.scopes[-1] == (MONITORING_SCOPE,)
        assert MONITORING_SCOPE.removesuffix(".default") == "https://monitoring.azure.com//"

    asyncio.run(scenario())
