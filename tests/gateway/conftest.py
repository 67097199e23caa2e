"""Fixtures of the gateway tests: a namespace per test, the real RabbitMQ, fake workers, a gateway.

Self-contained on purpose (the shared fixtures of tests/conftest.py are written elsewhere).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from boochat.settings import Settings
from boochat.topology import declare_exchanges, drop_namespace
from contracts.envelope import Command, Delivery, Reply
from contracts.routing import Names
from gateway.app import Gateway

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
WAIT = 5.0

Handler = Callable[[Command], Reply | None | Awaitable[Reply | None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A fresh namespace, dropped when the test ends (gateways declare its exchanges, fakes its queues)."""
    namespace = f"gwtest{uuid.uuid4().hex[:10]}"
    yield namespace
    await drop_namespace(Settings(namespace=namespace, amqp_url=AMQP_URL))


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Tests override settings by overriding this fixture or parametrising it indirectly."""
    return {}


@pytest.fixture
def settings(namespace: str, overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "namespace": namespace,
        "amqp_url": AMQP_URL,
        "jwt_secret": "x" * 32,
        "dev_login": True,
        "gateway_port": free_port(),
        "files_port": free_port(),
        "request_timeout_seconds": 2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def amqp(settings: Settings) -> AsyncIterator[AbstractChannel]:
    connection: AbstractRobustConnection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel()
    await declare_exchanges(channel, settings)
    yield channel
    await connection.close()


class FakeWorker:
    """Answers the commands sent to one worker name, as the real worker's queue would get them."""

    def __init__(self, channel: AbstractChannel, names: Names, name: str, handler: Handler) -> None:
        self.channel, self.names, self.name, self.handler = channel, names, name, handler
        self.commands: asyncio.Queue[Command] = asyncio.Queue()
        self.seen: list[Command] = []

    async def start(self) -> FakeWorker:
        queue = await self.channel.declare_queue(self.names.command_queue(self.name), exclusive=True, auto_delete=True)
        await queue.bind(self.names.commands, routing_key=self.name)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        command = Command.model_validate_json(message.body)
        self.seen.append(command)
        self.commands.put_nowait(command)
        reply = self.handler(command)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply is not None and message.reply_to:
            await self.channel.default_exchange.publish(
                aio_pika.Message(reply.model_dump_json().encode(), correlation_id=message.correlation_id),
                routing_key=message.reply_to,
            )

    async def next(self, type_: str) -> Command:
        """The next command of this type (earlier ones of other types are skipped)."""
        async with asyncio.timeout(WAIT):
            while True:
                command = await self.commands.get()
                if command.type == type_:
                    return command


def ok(data: dict[str, Any] | None = None) -> Reply:
    return Reply(ok=data or {})


class Users:
    """A users worker that accepts every sign-in and connection."""

    def __call__(self, command: Command) -> Reply:
        return ok()


class Rooms:
    """A rooms worker that knows which rooms each user is in, and echoes other requests.

    A test changes how a request type is answered through ``answers``.
    """

    def __init__(self) -> None:
        self.of: dict[str, list[str]] = {}
        self.answers: dict[str, Handler] = {}

    def __call__(self, command: Command) -> Reply | None | Awaitable[Reply | None]:
        if command.type in self.answers:
            return self.answers[command.type](command)
        if command.type == "user_rooms":
            return ok({"room_ids": self.of.get(command.user_id, [])})
        return ok({"echo": command.data})


@pytest.fixture
def rooms() -> Rooms:
    return Rooms()


@pytest.fixture
async def workers(amqp: AbstractChannel, settings: Settings, rooms: Rooms) -> dict[str, FakeWorker]:
    users = await FakeWorker(amqp, settings.names, "users", Users()).start()
    rooms_worker = await FakeWorker(amqp, settings.names, "rooms", rooms).start()
    return {"users": users, "rooms": rooms_worker}


@pytest.fixture
async def gateway(settings: Settings, amqp: AbstractChannel) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    await gateway.start()
    async with asyncio.timeout(WAIT):
        await gateway.connected()
    yield gateway
    await gateway.stop()


@pytest.fixture
def url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/ws"


@pytest.fixture
async def publish(amqp: AbstractChannel, settings: Settings) -> Callable[[str, Delivery], Awaitable[None]]:
    exchange = await amqp.get_exchange(settings.names.deliveries)

    async def publish(key: str, delivery: Delivery) -> None:
        await exchange.publish(aio_pika.Message(delivery.model_dump_json().encode()), routing_key=key)

    return publish
