"""Parked messages: what waits in ``<ns>.dead``, and sending it back (``boochat dead``).

A message is parked by a worker after its last retry (workers/runtime/retry.py writes the headers
below: the queue it came from, the attempts, the error, when each attempt failed) or by RabbitMQ
when a queue's ``x-delivery-limit`` is reached (``x-first-death-queue``, ``x-first-death-reason``).
Messages are read with ``basic.get`` on a channel of their own that is closed without acknowledging
them, so each goes back to its place; they are numbered by that place, 1 first.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from boochat.settings import Settings

QUEUE = "x-boochat-queue"  # the queue the message failed in: where a re-drive sends it
ATTEMPTS = "x-boochat-attempts"  # how many times its handler failed
ERROR = "x-boochat-error"  # the last failure: its exception, without input values (logs.describe_error)
FAILED_AT = "x-boochat-failed-at"  # when each attempt failed (ISO 8601, UTC)
RETRY_HEADERS = (QUEUE, ATTEMPTS, ERROR, FAILED_AT, "x-delivery-count")


@dataclass(frozen=True)
class Parked:
    number: int
    queue: str | None  # where it came from
    reason: str
    attempts: int | None
    message_id: str | None
    headers: dict[str, Any]
    body: bytes

    def line(self) -> str:
        attempts = "?" if self.attempts is None else str(self.attempts)
        reason = self.reason.splitlines()[0][:100] if self.reason else ""
        return f"{self.number}\t{self.queue or '?'}\t{attempts} attempts\t{self.message_id or '-'}\t{reason}"

    def describe(self) -> str:
        """Everything about it: its headers, then its body (indented when it is JSON)."""
        try:
            body = json.dumps(json.loads(self.body), indent=2, ensure_ascii=False)
        except ValueError:
            body = self.body.decode(errors="replace")
        headers = "\n".join(f"{key}: {value}" for key, value in sorted(self.headers.items()))
        return f"#{self.number} from {self.queue or '?'} (message id {self.message_id or '-'})\n{headers}\n\n{body}"


def parked(number: int, message: AbstractIncomingMessage) -> Parked:
    headers = dict(message.headers or {})
    origin = headers.get(QUEUE) or headers.get("x-first-death-queue")
    reason = headers.get(ERROR) or headers.get("x-first-death-reason") or ""
    attempts = headers.get(ATTEMPTS)
    return Parked(
        number,
        str(origin) if origin is not None else None,
        str(reason),
        attempts if isinstance(attempts, int) else None,  # workers/runtime/retry.py writes an int
        message.message_id,
        headers,
        message.body,
    )


async def peek(settings: Settings, limit: int | None = None) -> list[Parked]:
    """The first ``limit`` (default: all) parked messages, left where they are."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.names.dead_letters, passive=True)
        found: list[Parked] = []
        while limit is None or len(found) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(parked(len(found) + 1, message))
        return found  # closing the channel gives every message back, in its place


@dataclass(frozen=True)
class Redriven:
    moved: list[Parked]
    kept: list[tuple[Parked, str]]  # asked for but left parked, and why


async def redrive(settings: Settings, numbers: Collection[int] | None = None) -> Redriven:
    """Send parked messages (those numbered ``numbers``, or all) back to the queue they came from,
    each removed from ``<ns>.dead`` once the broker has confirmed its copy; with a fresh count of
    attempts. Messages parked meanwhile are not touched."""
    moved: list[Parked] = []
    kept: list[tuple[Parked, str]] = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(on_return_raises=True)  # confirms are on by default
        queue = await channel.declare_queue(settings.names.dead_letters, passive=True)
        count = queue.declaration_result.message_count or 0
        for number in range(1, count + 1):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            if numbers is not None and number not in numbers:
                continue
            item = parked(number, message)
            if item.queue is None:
                kept.append((item, "no header names the queue it came from"))
                continue
            try:
                await channel.default_exchange.publish(_fresh(message), routing_key=item.queue, mandatory=True)
            except aio_pika.exceptions.DeliveryError:
                kept.append((item, f"queue {item.queue} does not exist"))
                continue
            await message.ack()
            moved.append(item)
    return Redriven(moved, kept)


def _fresh(message: AbstractIncomingMessage) -> aio_pika.Message:
    """A copy of ``message`` that starts its retries over (its ``x-death`` history kept)."""
    return copy_of(message, {k: v for k, v in (message.headers or {}).items() if k not in RETRY_HEADERS})


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent copy of ``message`` (body and properties) with ``headers``."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
    )
