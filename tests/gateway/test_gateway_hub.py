"""gateway.hub against the real RabbitMQ: limits that hold over several gateways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from gwclient import WAIT, closed, request, sign_in
from support.stack import free_ports
from websockets.asyncio.client import connect

from boochat.rpc import failure
from boochat.settings import Settings
from contracts.envelope import Reply
from contracts.routing import GATEWAYS
from gateway.app import Gateway
from gateway.broker import RateReport

pytestmark = pytest.mark.integration

LIMIT = 10


@pytest.fixture
async def second(settings: Settings, gateway: Gateway) -> AsyncIterator[str]:
    """The URL of a second gateway of the same namespace."""
    other = Gateway(settings.model_copy(update={"gateway_port": free_ports(1)}))
    await other.start()
    async with asyncio.timeout(WAIT):
        await other.connected()
    yield f"ws://127.0.0.1:{other.port}/ws"
    await other.stop()


@pytest.fixture
async def reports(amqp, settings: Settings) -> Callable[[str, str, int], Awaitable[None]]:
    """``await reports(gateway_id, user_id, n)``: wait until that gateway has reported ``n`` of the user's requests."""
    queue = await amqp.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(settings.names.deliveries, routing_key=GATEWAYS)
    seen: asyncio.Queue[RateReport] = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.put_nowait(RateReport.model_validate_json(message.body))

    await queue.consume(on_message, no_ack=True)

    async def wait(gateway_id: str, user_id: str, count: int) -> None:
        total = 0
        async with asyncio.timeout(WAIT):
            while total < count:
                report = await seen.get()
                if report.gateway_id == gateway_id:
                    total += report.requests.get(user_id, 0)

    return wait


@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": LIMIT}])
async def test_the_rate_limit_holds_across_gateways(url: str, second: str, gateway: Gateway, workers, reports) -> None:
    """A user's requests on one gateway count on the other once reported (about a second later)."""
    here, there = await sign_in(url, "ann"), await sign_in(second, "ann")
    for _ in range(LIMIT - 1):
        assert (await request(here, "ping"))["type"] == "ok"
    await reports(gateway.hub.gateway_id, "ann", LIMIT - 1)
    # The reply comes through the second gateway's queue after the report: it has merged it by then.
    assert (await request(there, "get_me"))["type"] == "ok"
    refused = await request(there, "ping")
    assert refused["error"]["code"] == "rate_limited"
    other_user = await sign_in(second, "bo")
    assert (await request(other_user, "ping"))["type"] == "ok"  # per user
    for ws in (here, there, other_user):
        await ws.close()


async def test_a_connection_past_the_users_cap_is_refused_with_4429(url: str, workers, gateway: Gateway) -> None:
    """The users worker counts connections over every gateway; the one it refuses is never served."""
    workers["users"].handler = lambda command: (
        failure("rate_limited", "too many connections") if command.type == "connection_opened" else Reply(ok={})
    )
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"dev_user": {"id": "ann", "name": "Ann"}})
        assert answer["error"] == {"code": "rate_limited", "message": "too many connections"}
        assert (await closed(ws))[0] == 4429
    assert not gateway.hub.registry.connected("ann")
    assert not [c for c in workers["users"].seen if c.type == "connection_closed"]
