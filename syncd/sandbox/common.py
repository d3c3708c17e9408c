"""What every simulator shares: token buckets, an outage switch, a loopback server you can stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web


class OutageMode(StrEnum):
    """How a simulator misbehaves while it is "down"."""

    UP = "up"
    REFUSE = "refuse"  # the listening socket is closed: connection refused
    ERROR = "5xx"  # every API call answers 503
    TIMEOUT = "timeout"  # every API call hangs past any sane client timeout


@dataclass
class TokenBucket:
    """A per-operation token bucket (rate tokens/s, burst capacity), as Amazon's usage plans are."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = self.clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class SlidingWindow:
    """At most `limit` requests in any `window` seconds (ShipBob's 150/min)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    hits: list[float] = field(default_factory=list)

    def take(self) -> float | None:
        """Record a hit and return None, or return the seconds until the next slot frees."""
        now = self.clock()
        self.hits = [t for t in self.hits if now - t < self.window]
        if len(self.hits) >= self.limit:
            return self.window - (now - self.hits[0])
        self.hits.append(now)
        return None


CONTROL_PREFIX = "/_sim/"


def outage_middleware(get_mode: Callable[[], OutageMode]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Answer API calls according to the outage switch; the /_sim/ control plane always works."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        mode = get_mode()
        if request.path.startswith(CONTROL_PREFIX) or mode is OutageMode.UP:
            return await handler(request)
        if mode is OutageMode.TIMEOUT:
            await asyncio.sleep(3600)
        return web.json_response({"message": "Service Unavailable"}, status=503)

    return middleware


class SimServer:
    """Runs one simulator app on loopback; `go_down(REFUSE)` really closes the socket."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.mode = OutageMode.UP
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; with port 0 the OS picks a free port, kept across restarts."""
        # A short shutdown timeout: requests hung by the "timeout" outage must not hold a stop for 60 s.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        if self.port == 0:
            server = self._site._server
            assert server is not None
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    async def set_mode(self, mode: OutageMode) -> None:
        """Switch the outage mode; REFUSE stops listening, any other mode listens again."""
        previous, self.mode = self.mode, mode
        if mode is OutageMode.REFUSE and previous is not OutageMode.REFUSE and self._site is not None:
            await self._site.stop()
            self._site = None
            # Closing the socket refuses new connections; pooled keep-alive ones must drop too, a
            # moment later, so that a control request that switched the mode still gets its answer.
            server = self._runner.server if self._runner is not None else None
            handlers = list(getattr(server, "connections", []))
            asyncio.get_running_loop().call_later(0.1, lambda: [h.force_close() for h in handlers])
        elif mode is not OutageMode.REFUSE and self._site is None and self._runner is not None:
            await self._listen()

    async def stop(self) -> None:
        """Stop serving and release everything."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None


class Deliveries:
    """A simulator's notifications in flight: background tasks and the HTTP session they share."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def spawn(self, delivery: Coroutine[Any, Any, None]) -> None:
        """Run one delivery (with its retries) in the background."""
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared client session, opened on first use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    @property
    def pending(self) -> int:
        """Deliveries not finished yet."""
        return len(self._tasks)

    async def drain(self, within: float | None = None) -> None:
        """Wait until every delivery has succeeded or given up (at most `within` seconds if given)."""
        if within is not None:
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=within)
            return
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel what is pending and close the session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
