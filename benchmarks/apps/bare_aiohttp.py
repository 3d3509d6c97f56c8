"""The floor for benchmarks/devhost_http.py: aiohttp on uvloop answering "pong", with no host around it."""

import sys

import uvloop
from aiohttp import web


async def pong(request: web.Request) -> web.Response:
    return web.Response(text="pong")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/api/ping", pong)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
