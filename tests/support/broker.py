"""RabbitMQ helpers for tests: reachability, what the broker holds, waiting for queues to drain.
Namespaces are deleted by ``boochat.topology.drop_namespace`` (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.exceptions import AMQPError


async def check_reachable(amqp_url: str, timeout: float = 5.0) -> str | None:
    """None when RabbitMQ accepts a connection at ``amqp_url``, else why not."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(amqp_url), timeout)
    except (OSError, AMQPError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


async def listed(kind: str, prefix: str) -> list[str]:
    """Names of the broker's ``kind`` ("queues" or "exchanges") starting with ``prefix``, as
    rabbitmqctl lists them (AMQP cannot list): how tests check what a namespace left behind."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", f"list_{kind}", "name", "--no-table-headers",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, errors.decode(errors="replace")
    return sorted(name for name in output.decode(errors="replace").split() if name.startswith(prefix))


async def wait_until_idle(namespace: str, timeout: float = 60.0, node: str | None = None) -> None:
    """Wait until every queue of ``namespace`` (but its log and dead letters) holds nothing, ready or
    unacknowledged, twice in a row: the workers have finished all the work the test caused.
    ``node``: another RabbitMQ node than the default one (a private one of tests/faults).

    Polled through rabbitmqctl: RabbitMQ has no way to wait for an empty queue.
    """
    skip = {f"{namespace}.events.log", f"{namespace}.dead"}
    busy: list[list[str]] = []  # what the last poll found busy, for the failure message
    try:
        await asyncio.wait_for(_quiet(namespace, skip, node, busy), timeout)
    except TimeoutError:
        raise AssertionError(f"queues still busy after {timeout} s (name, ready, unacked): {busy}") from None


async def _quiet(namespace: str, skip: set[str], node: str | None, busy: list[list[str]]) -> None:
    quiet_checks = 0
    while quiet_checks < 2:
        process = await asyncio.create_subprocess_exec(
                "rabbitmqctl", "-q", *(("-n", node) if node else ()),
                "list_queues", "name", "messages_ready", "messages_unacknowledged",
                "--no-table-headers", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        output, _ = await process.communicate()
        rows = [line.split() for line in output.decode().splitlines()]
        busy[:] = [
            row
            for row in rows
            if len(row) == 3
            and row[0].startswith(f"{namespace}.")
            and row[0] not in skip
            and (row[1] != "0" or row[2] != "0")
        ]
        quiet_checks = quiet_checks + 1 if not busy else 0
        await asyncio.sleep(0.2)  # polling interval of a bounded wait on a condition


@asynccontextmanager
async def held_back(amqp_url: str, events_exchange: str, queues: Mapping[str, Iterable[str]]) -> AsyncIterator[None]:
    """While inside, the events of the given types do not reach the given queues (queue name -> event
    types it is bound to): they wait in a queue of the test's own, and reach each queue they missed
    once the block ends, late and in order. The longest lag a worker's event queue can have: what a
    worker must know at once comes by another path (a hand-over), or not at all."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(events_exchange, ensure=False)
        holding = await channel.declare_queue(f"{events_exchange}.held-{uuid.uuid4().hex[:8]}", auto_delete=False)
        types = {queue: set(keys) for queue, keys in queues.items()}
        for key in set().union(*types.values()):
            await holding.bind(exchange, routing_key=key)
        for queue, keys in types.items():
            declared = await channel.declare_queue(queue, passive=True)
            for key in keys:
                await declared.unbind(exchange, routing_key=key)
        try:
            yield
        finally:
            for queue, keys in types.items():
                declared = await channel.declare_queue(queue, passive=True)
                for key in keys:
                    await declared.bind(exchange, routing_key=key)
            while (message := await holding.get(no_ack=True, fail=False)) is not None:
                late = aio_pika.Message(message.body, content_type=message.content_type, headers=message.headers)
                for queue, keys in types.items():
                    if message.routing_key in keys:
                        await channel.default_exchange.publish(late, routing_key=queue)
            await holding.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
