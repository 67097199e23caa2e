"""gateway.session's outbox: a client that cannot keep up is closed, never waited for."""

from __future__ import annotations

import asyncio

from boochat.settings import Settings
from gateway.hub import Hub
from gateway.session import OUTBOX_SIZE, TRY_AGAIN_LATER, Session


class StuckClient:
    """A connection whose sends never complete, as with a client that stopped reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None

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
    assert session._outbox.qsize() == 2
