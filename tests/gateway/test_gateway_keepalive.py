"""One task's keepalive pings (gateway.keepalive) over real WebSocket connections: a client that
answers stays, one that does not is closed with 1011 at its next turn."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway.keepalive import KeepAlive


async def test_a_connection_that_does_not_answer_its_ping_is_closed_at_its_next_turn() -> None:
    async def hold(ws: ServerConnection) -> None:
        try:
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async with serve(hold, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        keepalive = KeepAlive(lambda: server.connections, period=2)
        async with connect(f"ws://127.0.0.1:{port}") as lively, connect(f"ws://127.0.0.1:{port}") as mute:
            mute.transport.pause_reading()  # reads nothing, so answers no ping
            for turn in range(2):  # every connection's turn comes once a period
                keepalive.check(turn)
            await asyncio.gather(*keepalive._pinging)  # both pings written
            assert len(keepalive._pongs) == 2
            [lively_side] = [c for c in server.connections if c.remote_address == lively.local_address]
            await asyncio.wait_for(asyncio.shield(keepalive._pongs[lively_side]), 5)  # type: ignore[arg-type]
            for turn in range(2):
                keepalive.check(turn)
            mute.transport.resume_reading()
            await asyncio.wait_for(mute.wait_closed(), 10)
            assert mute.close_code == 1011 and mute.close_reason == "keepalive ping timeout"
            assert lively.state.name == "OPEN"
            await lively.ping()  # still served
