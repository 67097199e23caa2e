"""The outbox's publish queue, with fake exchanges: in order, batched, and every future settled,
even when the broker never confirms or the channel cancels a publish under it."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest

from contracts.routing import Names
from workers.runtime import outbox
from workers.runtime.entries import Message
from workers.runtime.outbox import Outbox


class FakeExchange:
    """Records what is published; ``behave`` says what each publish does after recording it."""

    def __init__(self, behave: str = "confirm") -> None:
        self.published: list[bytes] = []
        self.behave = behave

    async def publish(self, message: aio_pika.Message, routing_key: str, mandatory: bool) -> None:
        self.published.append(message.body)
        if self.behave == "never":
            await asyncio.Event().wait()  # a confirmation that never comes
        if self.behave == "cancelled":
            raise asyncio.CancelledError()  # what a channel closing under a publish does to it


def fake_outbox(exchange: FakeExchange) -> Outbox:
    box = Outbox(None, Names("test"), [])  # type: ignore[arg-type]  # no broker: replies are not sent here
    box._exchanges = {"events": exchange, "deliveries": exchange}  # type: ignore[dict-item]
    return box


def messages(*bodies: str) -> list[Message]:
    return [Message("events", "t", body.encode()) for body in bodies]


async def test_messages_go_out_in_the_order_queued_and_each_future_is_settled() -> None:
    exchange = FakeExchange()
    box = fake_outbox(exchange)
    futures = [box.publish(messages(f"m{n}")) for n in range(5)]
    await asyncio.gather(*futures)
    assert exchange.published == [f"m{n}".encode() for n in range(5)]


@pytest.mark.parametrize("behave", ["never", "cancelled"])
async def test_a_publish_that_is_never_confirmed_fails_its_future_instead_of_holding_it(
    behave: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost confirmation, or a publish cancelled by its channel, fails the future after the retries:
    the writer hears of it (the relay publishes it later), and publishes queued after it go on."""
    monkeypatch.setattr(outbox, "CONFIRM_TIMEOUT", 0.05)
    monkeypatch.setattr(outbox, "RETRY_SECONDS", (0.01,))
    exchange = FakeExchange(behave)
    box = fake_outbox(exchange)
    first = box.publish(messages("lost"))
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(first, 5)
    exchange.behave = "confirm"
    await asyncio.wait_for(box.publish(messages("next")), 5)
    assert exchange.published[-1] == b"next"
    await asyncio.wait_for(box.drain(), 5)


async def test_stopping_the_publisher_settles_what_it_held() -> None:
    exchange = FakeExchange("never")
    box = fake_outbox(exchange)
    held: Any = box.publish(messages("held"))
    await asyncio.sleep(0)  # the publisher takes it
    await asyncio.sleep(0)
    assert box._publisher is not None
    box._publisher.cancel()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(held, 5)
