"""Request/reply over RabbitMQ, for the gateway and for workers asking each other.

FastStream's ``broker.request`` holds one lock for all requests of a broker; a gateway forwards many
requests at once, so this client keeps its own exclusive reply queue and a future per correlation id.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, HeadersType
from aio_pika.exceptions import DeliveryError

from contracts.envelope import CarriedReply, Command, Failure, Reply
from contracts.errors import ErrorCode
from contracts.routing import REPLY_KEY, Names


class RpcClient:
    """Calls workers and waits for their replies.

    Alone, it declares and consumes its own reply queue. A gateway instead passes the queue that
    also receives its deliveries and feeds every message to ``resolve`` from its one ordered
    consumer: a worker publishes (with confirms) the deliveries of a command before its reply, so
    the gateway has bound a new room before its client sees the reply that names it. That queue is
    also bound to ``reply_key``, which each command offers (header ``REPLY_KEY``): a worker may send
    the reply inside a delivery the command causes, and the gateway hands it to ``settle``.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        names: Names,
        timeout: float,
        queue: AbstractQueue | None = None,
        reply_key: str | None = None,
    ) -> None:
        self._channel = channel
        self._names = names
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._queue = queue
        self._shared = queue is not None
        self._headers: HeadersType | None = {REPLY_KEY: reply_key} if reply_key is not None else None
        self._commands: aio_pika.abc.AbstractExchange | None = None  # the channel's, found on first use

    async def start(self) -> None:
        if self._queue is None:
            self._queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        if not self._shared:
            await self._queue.consume(self._on_reply, no_ack=True)

    def resolve(self, message: AbstractIncomingMessage) -> bool:
        """Hand ``message`` to the call waiting for it; False when it is not a reply of ours."""
        future = self._pending.get(message.correlation_id or "")
        if future is None:
            return False
        if not future.done():
            future.set_result(Reply.model_validate_json(message.body))
        return True

    def settle(self, carried: CarriedReply) -> None:
        """Hand a reply that rode on a delivery to the call waiting for it, if it is one of ours."""
        future = self._pending.get(carried.correlation_id)
        if future is not None and not future.done():
            future.set_result(carried.reply)

    async def call(self, worker: str, command: Command, timeout: float | None = None) -> Reply:
        """Send ``command`` to ``worker`` and wait for its reply, or a ``timeout``/``unavailable`` one."""
        assert self._queue is not None, "start() first"
        timeout = timeout or self._timeout
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        if self._commands is None:
            self._commands = await self._channel.get_exchange(self._names.commands, ensure=False)
        message = aio_pika.Message(
            command.model_dump_json().encode(),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=self._queue.name,
            headers=self._headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            # A command nobody took in time is dropped, so a retry acts once.
            expiration=timeout,
        )
        try:
            await self._commands.publish(message, routing_key=worker, mandatory=True)
            return await asyncio.wait_for(future, timeout)
        except DeliveryError:
            return failure("unavailable", f"no {worker} worker is running")
        except TimeoutError:
            return failure("timeout", "no answer in time; retrying with the same id is safe")
        finally:
            self._pending.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        self.resolve(message)


def failure(code: ErrorCode, message: str, details: dict[str, str] | None = None) -> Reply:
    return Reply(error=Failure(code=code, message=message, details=details))
