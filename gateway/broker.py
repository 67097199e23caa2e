"""The gateway's side of RabbitMQ: requests to workers, and its own queue of deliveries.

One robust connection; a confirming channel for requests (``RpcClient``), another for the
deliveries queue: exclusive and auto-delete, named after this gateway process, bound to
``everyone``, ``gateways`` and the user and room keys its owner asks for (``bind``). Replies arrive
on that queue too, in order with the deliveries: on their own, or riding on a delivery (the queue
is bound to the gateway's ``reply_key`` for that); they are settled here. Everything else that
arrives, ``arrivals`` yields to the owner (``gateway.hub``), which calls down and is never called
back: deliveries with the key they came by, and the other gateways' rate reports.

aio-pika's robust connection reconnects by itself and declares the queue again, with the bindings
and the consumer it had; what was sent to the gateway while it had no queue is lost, and
``reconnected`` tells the owner so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

import aio_pika
import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import BaseModel, ValidationError

from boochat.rpc import RpcClient, failure
from boochat.settings import Settings
from boochat.topology import declare_exchanges
from contracts.envelope import Command, Delivery, Reply
from contracts.routing import EVERYONE, GATEWAYS, reply_key

log = structlog.get_logger("gateway.broker")

DELIVERY_PREFETCH = 256
# Deliveries are acknowledged in bulk: ACK_LINGER seconds after the first one not yet acknowledged,
# or as soon as ACK_EVERY (well under the prefetch, so the broker never stops sending) are waiting.
ACK_LINGER = 0.05
ACK_EVERY = 64
RETRY_SECONDS = (0.5, 1, 2, 5)


class RateReport(BaseModel):
    """What one gateway tells the others, routed ``gateways`` on the deliveries exchange: the
    requests it accepted per user since its last report (``gateway.limits.RateLimiter``)."""

    gateway_id: str
    requests: dict[str, int]


@dataclass(slots=True)  # not frozen: one is made per delivery, and freezing would triple its cost
class Routed:
    """A delivery and the routing key it came by: a room's, a user's or ``everyone``."""

    key: str
    delivery: Delivery


Arrival = Routed | RateReport


class Broker:
    def __init__(self, settings: Settings, gateway_id: str) -> None:
        self._settings = settings
        self._names = settings.names
        self._gateway_id = gateway_id
        self._exchange: AbstractExchange | None = None
        self._connection: AbstractRobustConnection | None = None
        self._rpc: RpcClient | None = None
        self._queue: AbstractQueue | None = None
        self._bound: set[str] = set()
        self._last: AbstractIncomingMessage | None = None  # the last message handled, not acked yet
        self._acking: asyncio.Task[None] | None = None
        self._unacked = 0
        self._ack_now = asyncio.Event()  # ack without waiting for ACK_LINGER
        self._reconnected = asyncio.Event()

    @property
    def ready(self) -> bool:
        connection = self._connection
        return (
            self._rpc is not None
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    @property
    def bound(self) -> frozenset[str]:
        """The routing keys the deliveries queue is bound to."""
        return frozenset(self._bound)

    async def connect(self) -> None:
        """Connect, retrying until the broker answers; afterwards aio-pika reconnects by itself."""
        attempt = 0
        while True:
            try:
                self._connection = await aio_pika.connect_robust(self._settings.amqp_url)
                break
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.warning("broker_unreachable", error=str(exc), retry_in=delay)
                attempt += 1
                await asyncio.sleep(delay)
        requests = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_exchanges(requests, self._settings)
        deliveries = await self._connection.channel()
        await deliveries.set_qos(prefetch_count=DELIVERY_PREFETCH)
        self._queue = await deliveries.declare_queue(
            self._names.gateway_queue(self._gateway_id), exclusive=True, auto_delete=True
        )
        # Replies come through the deliveries queue too: a worker publishes a command's deliveries
        # before its reply, so the rooms they bind are bound before the client sees the reply.
        own = reply_key(self._gateway_id)
        await self._queue.bind(self._names.deliveries, routing_key=own)  # replies riding on deliveries
        rpc = RpcClient(requests, self._names, self._settings.request_timeout_seconds, queue=self._queue, reply_key=own)
        await rpc.start()
        self._exchange = await requests.get_exchange(self._names.deliveries)
        await self.bind({EVERYONE: True, GATEWAYS: True})
        self._rpc = rpc
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        log.info("broker_connected")

    def _on_reconnect(self, connection: object) -> None:
        log.warning("broker_reconnected")
        self._reconnected.set()

    async def reconnected(self) -> None:
        """Return once the connection was lost and made again (queue and bindings restored) since
        the last call returned (or since ``connect``): several reconnections meanwhile count once."""
        await self._reconnected.wait()
        self._reconnected.clear()

    async def close(self) -> None:
        """Acknowledge what was handled, then disconnect (the owner has stopped ``arrivals`` first)."""
        if self._acking is not None:
            self._ack_now.set()
            await asyncio.gather(self._acking, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()
        self._rpc = None

    async def call(self, worker: str, command: Command) -> Reply:
        """The worker's reply, or ``unavailable`` / ``timeout``: this never raises for broker trouble."""
        if not self.ready or self._rpc is None:
            return failure("unavailable", "the message broker is not reachable")
        try:
            return await self._rpc.call(worker, command)
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            log.warning("request_failed", worker=worker, error=repr(exc))
            return failure("unavailable", f"{worker} is not reachable")

    async def report(self, requests: dict[str, int]) -> None:
        """Tell every gateway (this one ignores its own) what this one accepted; lost while disconnected."""
        if not self.ready or self._exchange is None:
            return
        body = RateReport(gateway_id=self._gateway_id, requests=requests).model_dump_json().encode()
        try:
            await self._exchange.publish(aio_pika.Message(body), routing_key=GATEWAYS)
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            log.warning("report_failed", error=repr(exc))

    async def signal(self, key: str, delivery: Delivery) -> bool:
        """Publish an ephemeral client event (``room.typing``) straight to the gateways bound to
        ``key``: not persistent, not kept, not confirmed; False when it could not be sent."""
        if not self.ready or self._exchange is None:
            return False
        body = delivery.model_dump_json().encode()
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        try:
            await self._exchange.publish(message, routing_key=key, mandatory=False)
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            log.warning("signal_failed", key=key, error=repr(exc))
            return False
        return True

    async def bind(self, wanted: Mapping[str, bool]) -> None:
        """Bind each key mapped to True and unbind each mapped to False, where not so already.

        Calls must not overlap: two that race on one key could leave it bound the wrong way round.
        The owner runs them one at a time, each with what it wants once its turn has come.
        """
        if self._queue is None:
            return
        for key, want in wanted.items():
            try:
                if want and key not in self._bound:
                    await self._queue.bind(self._names.deliveries, routing_key=key)
                    self._bound.add(key)
                elif not want and key in self._bound:
                    await self._queue.unbind(self._names.deliveries, routing_key=key)
                    self._bound.discard(key)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("binding_failed", key=key, bind=want, error=repr(exc))

    async def arrivals(self) -> AsyncGenerator[Arrival, None]:
        """What arrives on the deliveries queue besides replies, after ``connect``, until the caller stops.

        One message at a time: the next one is taken only once the caller is done with this one and
        asks again, so the events of a room reach connections in order, and a reply after the
        deliveries its command caused finds them handled. Each message is acknowledged once the
        caller asks for the next, a failed one too (logged here or by the caller, which goes on:
        sending it again would not help), in bulk (``_ack_handled``).
        """
        queue, rpc = self._queue, self._rpc
        if queue is None or rpc is None:
            raise RuntimeError("connect() first")
        async with queue.iterator() as messages:
            async for message in messages:
                try:
                    arrival = self._read(message, rpc)
                except Exception:
                    log.exception("delivery_failed", routing_key=message.routing_key)
                    arrival = None
                if arrival is not None:
                    yield arrival
                self._handled(message)

    def _read(self, message: AbstractIncomingMessage, rpc: RpcClient) -> Arrival | None:
        """What ``message`` brings the owner; None for a reply (settled here) or a message to drop."""
        if message.correlation_id and rpc.resolve(message):
            return None
        if message.routing_key == GATEWAYS:
            report = RateReport.model_validate_json(message.body)
            return report if report.gateway_id != self._gateway_id else None
        try:
            delivery = Delivery.model_validate_json(message.body)
        except ValidationError:
            if message.correlation_id:  # a reply that came after its caller gave up
                log.info("late_reply", correlation_id=message.correlation_id)
            else:
                log.error("bad_delivery", routing_key=message.routing_key)
            return None
        if delivery.reply is not None:
            rpc.settle(delivery.reply)
        return Routed(message.routing_key or "", delivery)

    def _handled(self, message: AbstractIncomingMessage) -> None:
        """Count ``message`` as handled: one ack covers it and every message before it."""
        self._last = message
        self._unacked += 1
        if self._unacked >= ACK_EVERY:
            self._ack_now.set()
        if self._acking is None or self._acking.done():
            self._acking = asyncio.create_task(self._ack_handled())

    async def _ack_handled(self) -> None:
        """Acknowledge the last handled message and all before it (``multiple``) ``ACK_LINGER``
        after the first of them, or once ``ACK_EVERY`` are waiting; again while more were handled
        meanwhile. So the gateway sends one ack per burst instead of one per message (under load,
        a third of its writes to the broker); a single task keeps acks in order.

        An ack the broker can no longer take (its channel closed meanwhile) is only logged: the
        queue went with that channel, and the consumer goes on once reconnected. Ending the consumer
        instead would leave the consumer that aio-pika restores on reconnection feeding a buffer
        nobody reads.
        """
        while self._last is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ack_now.wait(), ACK_LINGER)
            self._ack_now.clear()
            message, self._unacked = self._last, 0  # the latest by now
            self._last = None
            try:
                await message.ack(multiple=True)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("ack_failed", routing_key=message.routing_key, error=repr(exc))
