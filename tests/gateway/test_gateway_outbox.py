"""gateway.session's outbox: a client that cannot keep up is closed, never waited for."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from gwclient import WAIT, receive, sign_in
from websockets.exceptions import ConnectionClosed

from boochat.settings import Settings
from contracts.envelope import Delivery
from contracts.routing import room_key
from gateway.hub import Hub
from gateway.session import OUTBOX_SIZE, TRY_AGAIN_LATER, Session


class StuckClient:
    """A connection whose sends never complete, as with a client that stopped reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.request = self.response = None  # its handshake is not looked at

    async def send(self, text: str) -> None:
        self.sent.append(text)
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_code = code
        self.closed.set()


async def test_a_full_outbox_closes_with_1013_at_once() -> None:
    client = StuckClient()
    session = Session(Hub(Settings(jwt_secret="x" * 32)), client)  # type: ignore[arg-type]
    writer = asyncio.create_task(session._write())
    session._writer = writer
    for number in range(OUTBOX_SIZE + 2):
        session.deliver(f"d{number}", f"frame {number}")  # never blocks
    async with asyncio.timeout(5):
        await client.closed.wait()
    assert client.close_code == TRY_AGAIN_LATER
    assert writer.cancelled() or writer.done()


async def test_duplicates_are_not_queued_twice() -> None:
    client = StuckClient()
    session = Session(Hub(Settings(jwt_secret="x" * 32)), client)  # type: ignore[arg-type]
    session.deliver("d1", "one")
    session.deliver("d1", "one again")
    session.deliver("d2", "two")
    assert len(session._outbox) == 2


@pytest.mark.integration
async def test_a_stalled_reader_is_dropped_and_the_room_flows_on(url: str, workers, rooms, publish, gateway) -> None:
    """A client that stops reading is closed with 1013; another in the same room keeps getting every
    event promptly, before and after."""
    rooms.of = {"ann": ["r1"], "bo": ["r1"]}
    ann = await sign_in(url, "ann", compression=None)  # and never reads again, for now
    bo = await sign_in(url, "bo")
    metrics = gateway.hub.metrics.registry

    def dropped() -> bool:
        return metrics.get_sample_value("boochat_gateway_slow_clients_dropped_total") == 1

    lags: list[float] = []
    async with asyncio.timeout(60):
        while not dropped():
            sent_at = time.monotonic()
            event = Delivery(id=f"d{len(lags)}", event="room.updated", data={"n": len(lags), "padding": "x" * 8000})
            await publish(room_key("r1"), event)
            assert (await receive(bo))["data"]["n"] == len(lags)
            lags.append(time.monotonic() - sent_at)
    for extra in range(3):  # and the room flows on
        await publish(room_key("r1"), Delivery(id=f"e{extra}", event="room.updated", data={"n": -1}))
        assert (await receive(bo))["data"] == {"n": -1}
    assert len(lags) > OUTBOX_SIZE and max(lags) < 1.0, (len(lags), max(lags))
    async with asyncio.timeout(WAIT):  # the stalled client reads again: what was sent, then 1013
        with contextlib.suppress(ConnectionClosed):
            async for _ in ann:
                pass
    assert ann.close_code == TRY_AGAIN_LATER
    await bo.close()
