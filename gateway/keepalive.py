"""Keepalive pings for every connection of a gateway, from one task.

websockets can ping each connection from a task of its own (``ping_interval``): about 1.5 KiB per
connection for a coroutine that sleeps. Here one loop does it instead, in slices: every second, the
connections whose turn it is get a ping; one whose pong to its previous ping has not come back by
its next turn is closed with 1011, as websockets' own keepalive does. A ping waits only to be
written, in a task that ends with it, so a client that reads nothing holds up no other's ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import zlib
from collections.abc import Awaitable, Callable, Iterable

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

log = structlog.get_logger("gateway.keepalive")

PING_SECONDS = 20  # between two pings of one connection, and the time its pong has (websockets' defaults)
TICK_SECONDS = 1.0


class KeepAlive:
    def __init__(self, connections: Callable[[], Iterable[ServerConnection]], period: int = PING_SECONDS) -> None:
        self._connections = connections
        self._period = period
        self._pongs: dict[ServerConnection, Awaitable[float]] = {}  # the pong each connection owes
        self._pinging: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Ping every connection once a period, a slice each tick (runs until cancelled)."""
        try:
            for tick in itertools.count():
                await asyncio.sleep(TICK_SECONDS)
                self.check(tick % self._period)
        finally:
            for task in self._pinging:
                task.cancel()

    def check(self, turn: int) -> None:
        """Ping the open connections whose turn it is, closing those that did not answer the last ping."""
        for connection in list(self._connections()):
            if _slot(connection, self._period) != turn or connection.state is not State.OPEN:
                continue
            owed = self._pongs.pop(connection, None)
            if owed is not None and not _answered(owed):
                log.info("keepalive_timeout", remote=str(connection.remote_address))
                self._start(connection.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"))
                continue
            self._start(self._ping(connection))
        for connection in [c for c in self._pongs if c.state is State.CLOSED]:
            del self._pongs[connection]

    async def _ping(self, connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            self._pongs[connection] = await connection.ping()

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._pinging.add(task)
        task.add_done_callback(self._pinging.discard)


def _slot(connection: ServerConnection, period: int) -> int:
    """Which tick of the period is the connection's: its id spread evenly over them."""
    return zlib.crc32(connection.id.bytes) % period


def _answered(pong: Awaitable[float]) -> bool:
    return isinstance(pong, asyncio.Future) and pong.done()
