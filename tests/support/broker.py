"""RabbitMQ helpers for tests: reachability, deleting a namespace's topology."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable

import aio_pika
from aio_pika.exceptions import AMQPError

from boochat.supervisor import WORKERS
from contracts.routing import Names


async def check_reachable(amqp_url: str, timeout: float = 5.0) -> str | None:
    """None when RabbitMQ accepts a connection at ``amqp_url``, else why not."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(amqp_url), timeout)
    except (OSError, AMQPError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


async def queues_named(prefixes: Iterable[str]) -> list[str]:
    """Queues whose name starts with one of ``prefixes``, listed by rabbitmqctl (AMQP cannot list).

    Best effort: an empty list when rabbitmqctl is missing or refuses (not root, say).
    """
    prefixes = tuple(prefixes)
    if not prefixes or shutil.which("rabbitmqctl") is None:
        return []
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "list_queues", "name", "--no-table-headers",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        return []
    names = output.decode(errors="replace").split()
    return [name for name in names if name.startswith(prefixes)]


async def delete_namespaces(amqp_url: str, namespaces: Iterable[str]) -> None:
    """Delete the exchanges and queues of ``namespaces`` (best effort, never raises).

    Known names come from ``contracts.routing.Names``; reaction queues, whose names only workers
    know, are found with ``queues_named``.
    """
    namespaces = list(namespaces)
    if not namespaces:
        return
    queues: set[str] = set(await queues_named(f"{namespace}." for namespace in namespaces))
    exchanges: list[str] = []
    for namespace in namespaces:
        names = Names(namespace)
        queues.update((names.dead_letters, names.log, *(names.command_queue(w) for w in WORKERS)))
        exchanges.extend((names.commands, names.events, names.deliveries, names.dead_letters))
    try:
        connection = await aio_pika.connect(amqp_url)
    except (OSError, AMQPError):
        return
    async with connection:
        channel = await connection.channel()
        for queue in sorted(queues):
            channel = await _quietly(connection, channel, channel.queue_delete(queue))
        for exchange in exchanges:
            channel = await _quietly(connection, channel, channel.exchange_delete(exchange))


async def _quietly(connection, channel, operation):  # type: ignore[no-untyped-def]
    """Run ``operation``; a refusal closes the channel, so hand back a usable one either way."""
    try:
        await operation
        return channel
    except AMQPError:
        return await connection.channel()


async def wait_until_idle(namespace: str, timeout: float = 60.0) -> None:
    """Wait until every queue of ``namespace`` (but its log and dead letters) holds nothing, ready or
    unacknowledged, twice in a row: the workers have finished all the work the test caused.

    Polled through rabbitmqctl: RabbitMQ has no way to wait for an empty queue.
    """
    skip = {f"{namespace}.events.log", f"{namespace}.dead"}
    quiet_checks = 0
    async with asyncio.timeout(timeout):
        while quiet_checks < 2:
            process = await asyncio.create_subprocess_exec(
                "rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged",
                "--no-table-headers", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            output, _ = await process.communicate()
            rows = [line.split() for line in output.decode().splitlines()]
            busy = [
                row
                for row in rows
                if len(row) == 3
                and row[0].startswith(f"{namespace}.")
                and row[0] not in skip
                and (row[1] != "0" or row[2] != "0")
            ]
            quiet_checks = quiet_checks + 1 if not busy else 0
            await asyncio.sleep(0.2)  # polling interval of a bounded wait on a condition
