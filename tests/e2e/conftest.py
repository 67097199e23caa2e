"""End-to-end fixtures: fresh users connected to the session's stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from support.client import Client

from e2e.helpers import new_user

Connect = Callable[..., Awaitable[Client]]


@pytest.fixture
async def connect(stack) -> AsyncIterator[Connect]:
    """``await connect("Alice")`` signs in a fresh user; ``connect(as_user=other.user)`` a second
    connection of the same user; ``ws_url=`` another gateway. All are closed after the test."""
    opened: list[Client] = []

    async def open_(name: str = "User", as_user: dict | None = None, ws_url: str | None = None) -> Client:
        profile = dict(as_user) if as_user else new_user(name)
        client = await Client.connect(ws_url or stack.ws_url, dev_user=profile)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        await client.close()
