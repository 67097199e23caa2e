"""Poison messages: a reaction or projection that fails is tried again later, with growing delays,
then parked in ``<ns>.dead``; never dropped, and never in the way of the messages behind it.

RabbitMQ 3.10 cannot requeue with a delay. So a failed delivery is copied, with the attempt count
and the error in its headers, into the retry queue of its next delay (``boochat.topology``:
``<ns>.retry.<delay>``, whose messages expire back to the queue they came from), and the original
is acknowledged: the queue serves the next message at once. After the last delay the copy goes to
``<ns>.dead`` instead, where ``boochat dead`` lists, shows and re-drives it. The original is
acknowledged only once its copy is confirmed; if the copy cannot be published the original is
nacked, left to the queue's own redelivery (and ``x-delivery-limit``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage
from faststream import BaseMiddleware
from faststream._internal.context.repository import ContextRepo
from faststream.middlewares import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitQueue, RabbitRouter

from boochat.dead import ATTEMPTS, ERROR, FAILED_AT, QUEUE, copy_of
from boochat.logs import describe_error
from boochat.settings import Settings
from boochat.topology import retry_queue

log = structlog.get_logger()

ERROR_CHARS = 1000  # of the error's description kept in a header


Handler = Callable[..., Any]


def subscriber(broker: RabbitBroker, settings: Settings, queue: str) -> Callable[[Handler], None]:
    """``broker.subscriber`` for the queue of a reaction or projection, its failures retried, then parked."""
    router = RabbitRouter(middlewares=(Retry(broker, settings, queue),))

    def register(handler: Handler) -> None:
        router.subscriber(RabbitQueue(queue, declare=False), ack_policy=AckPolicy.NACK_ON_ERROR, no_reply=True)(handler)
        broker.include_router(router)

    return register


class Retry:
    """A FastStream middleware (a factory of one per delivery) for the subscriber of ``queue``."""

    def __init__(self, broker: RabbitBroker, settings: Settings, queue: str) -> None:
        self.broker = broker
        self.settings = settings
        self.queue = queue

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _Delivery(msg, context=context, retry=self)

    async def failed(self, message: AbstractIncomingMessage, error: Exception) -> None:
        """Copy ``message`` to its next retry queue, or to the dead letters after the last one."""
        headers = {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}
        before, stamps = headers.get(ATTEMPTS, 0), headers.get(FAILED_AT, [])
        attempts = (before if isinstance(before, int) else 0) + 1
        failed_at = [
            *(stamps if isinstance(stamps, list) else []),
            datetime.now(UTC).isoformat(timespec="milliseconds"),
        ]
        reason = describe_error(error)[:ERROR_CHARS]  # no input values: a header outlives the log
        headers |= {QUEUE: self.queue, ATTEMPTS: attempts, ERROR: reason, FAILED_AT: failed_at}
        delays = self.settings.retry_delays
        names = self.settings.names
        parking = attempts > len(delays)
        destination = names.dead_letters if parking else retry_queue(names, delays[attempts - 1])
        # The routing key is the queue's name: a retry queue's messages expire back to it by that key.
        await self.broker.publish(copy_of(message, headers), exchange=destination, routing_key=self.queue)
        if parking:  # the traceback once, here
            log.error("message parked", queue=self.queue, attempts=attempts, error=reason, exc_info=error)
        else:
            log.warning(
                "message to retry", queue=self.queue, attempts=attempts, retry_in=delays[attempts - 1], error=reason
            )


class _Delivery(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, retry: Retry) -> None:
        super().__init__(msg, context=context)
        self.retry = retry

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool:
        if not isinstance(exc_val, Exception):  # success, or a cancellation (shutdown): not a failure
            return False
        assert isinstance(self.msg, AbstractIncomingMessage)  # what a RabbitMQ subscriber receives
        await self.retry.failed(self.msg, exc_val)
        return True  # handled: the original is acknowledged, its copy waits for its next attempt
