"""Warm TLS connections to Microsoft Graph for the recorder's call-control requests.

An invitation storm (a meeting where many policy users join at once, every call after a failover) sends up to
`size` call-control requests to Graph at once, and each answer must reach Graph within 5 s. Opening a TLS
connection costs the recorder more CPU than the answer itself (the storm profile in benchmarks/README.md: ~35 % of
the busy samples were handshakes of connections a storm opened). So the pool is opened ahead of need and kept
open, off the answer's path:

- `warm()` tops the pool up to `size` connections. It takes every idle connection and opens new ones for the rest,
  all at once; it gives the idle ones back at once (one turn of the event loop) and each new one as soon as it is
  open, so a request that arrives during a pass waits at most for a slot a new connection is being opened on. The
  recorder calls it at start-up and every few seconds (`Recorder._keep_graph_ready`), never while invitations wait
  for their answers, so a connection that Graph or the network closed is replaced before a storm needs it.
- Every connection lives at most `lifetime` (15 min) and is then replaced by the next pass, so a changed DNS answer
  for Graph is followed (the lifetime Microsoft's HttpClient guidelines give as their example of
  `PooledConnectionLifetime`, learn.microsoft.com/dotnet/fundamentals/networking/http/httpclient-guidelines).
- Every socket sends TCP keep-alive probes after `KEEPALIVE_IDLE_SECONDS` of silence. An Azure load balancer or
  public IP drops an idle flow silently by default when its idle timeout passes (4 min by default, 15 min on our
  recorder's instance-level public IP; learn.microsoft.com/azure/load-balancer/load-balancer-tcp-reset: "Load
  Balancer's default behavior is to silently drop flows when the idle timeout of a flow is reached", TCP
  keep-alives keep them). The probes keep a warm connection's flow alive, and the kernel closes one whose peer is
  gone instead of letting an answer be written into it.
- A connection the server closes while idle is seen closed by aiohttp and never used again; the next pass replaces
  it. A request already written into a connection that closes is an error like any other: verbatim.graph's retry
  policy decides (unchanged).

Requests take the oldest idle connection first (aiohttp's pool), and requests beyond `size` wait for a free one.
HTTP/2 to Graph (one connection for every request) would remove most handshakes too, but our Graph simulator
serves HTTP/1.1 only (aiohttp) and aiohttp's client speaks HTTP/1.1 only; see docs/recorder.md.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
import weakref
from typing import Any

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

KEEPALIVE_IDLE_SECONDS = 60  # first TCP keep-alive probe after this much silence (Azure's shortest idle timeout: 4 min)
KEEPALIVE_INTERVAL_SECONDS = 15
KEEPALIVE_PROBES = 4  # unanswered probes before the kernel closes the connection
LIFETIME_SECONDS = 15 * 60.0


class GraphConnections:
    """An aiohttp session to Graph whose pool is kept at `size` open connections by `warm()`."""

    def __init__(
        self,
        base_url: str,
        *,
        size: int,
        ssl_context: ssl.SSLContext | bool,
        keepalive_seconds: float,
        connect_seconds: float = 2.0,
        lifetime_seconds: float = LIFETIME_SECONDS,
    ) -> None:
        self.size = size
        self.lifetime_seconds = lifetime_seconds
        self.opened = 0  # connections opened (tried) to Graph since start-up: /admin/stats, the storm benchmark
        self._base = URL(base_url).with_path("/")
        self._connect_timeout = aiohttp.ClientTimeout(connect=connect_seconds * 2, sock_connect=connect_seconds)
        self._born: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._lock: asyncio.Lock | None = None
        self._ssl = ssl_context
        self._keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session every Graph request goes through (made on first use: aiohttp needs a running loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.size, keepalive_timeout=self._keepalive_seconds, ssl=self._ssl, socket_factory=self._socket
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _socket(self, addr_info: Any) -> socket.socket:
        family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family=family, type=type_, proto=proto)
        keepalive(sock)
        self.opened += 1
        return sock

    async def warm(self) -> int:
        """Top the pool up to `size` open connections (replacing those past their lifetime); returns how many
        connections this tried to open. Failures are logged, never raised: a cold pool costs time, not
        correctness."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            before = self.opened
            for _ in range(2):  # a second pass refills what the first closed for age
                if not await self._pass():
                    break
            return self.opened - before

    async def _pass(self) -> int:
        """One pass: hold `size` connections, idle ones first; returns how many were closed for age."""
        connector = self.session().connector
        assert connector is not None
        # Only its connection key is used: the key of every request to Graph (aiohttp's pool is per key).
        request = aiohttp.ClientRequest("GET", self._base, loop=asyncio.get_running_loop(), ssl=True)
        idle_taken = asyncio.Event()
        closed = 0
        failures: list[str] = []

        async def take() -> None:
            nonlocal closed
            try:
                connection = await connector.connect(request, [], self._connect_timeout)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                failures.append(type(error).__name__)
                return
            try:
                await idle_taken.wait()  # hold an idle connection until every idle one is taken
            finally:
                born = self._born.setdefault(connection.protocol, time.monotonic())
                if time.monotonic() - born > self.lifetime_seconds:
                    connection.close()
                    closed += 1
                else:
                    connection.release()

        tasks = [asyncio.ensure_future(take()) for _ in range(self.size)]
        # Each task takes an idle connection without yielding, or reserves a slot and starts opening one: after
        # one turn of the loop every idle connection is held, so none is counted twice.
        await asyncio.sleep(0)
        idle_taken.set()
        await asyncio.gather(*tasks)
        if failures:
            log.warning(
                "could not open every warm Graph connection",
                extra={"failed": len(failures), "errors": sorted(set(failures))},
            )
        return closed

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def keepalive(sock: socket.socket) -> None:
    """TCP keep-alive probes on `sock` (the options a platform lacks are left at its defaults)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_SECONDS),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_SECONDS),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
