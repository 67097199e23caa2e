"""A worker process's start and stop, run by FastStream's hooks (``attach``), and its readiness.

Starting: storage, the worker's queues and bindings, the outbox's confirming channel, the RPC client
and every mirror loaded, all before any subscriber runs; then the relay of what a crash left in an
outbox, the chores and the mirrors' reloads, in the background. Stopping: the background ends, what
handlers queued for publishing goes out while the broker is still open, then the connection closes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aio_pika
import structlog
from beanie import init_beanie
from faststream import FastStream
from faststream.rabbit import RabbitBroker
from pymongo import AsyncMongoClient

from boochat import topology
from boochat.rpc import RpcClient
from workers.runtime import bindings
from workers.runtime.context import Runtime
from workers.runtime.store import RUNTIME_DOCUMENTS
from workers.runtime.tables import Chore, Worker

log = structlog.get_logger()

PING_TIMEOUT = 1.0  # seconds /readyz waits for the broker and for MongoDB
RELAY_AT_START = timedelta(0)  # at start-up, whatever is in an outbox was left behind


class Lifecycle:
    """What one worker process opens at start and closes at stop. ``graceful_timeout``: how long
    the events handlers queued get to go out on stop (after it, the relay publishes them)."""

    def __init__(self, worker: Worker, runtime: Runtime, broker: RabbitBroker, graceful_timeout: float) -> None:
        self._worker = worker
        self._runtime = runtime
        self._broker = broker
        self._graceful_timeout = graceful_timeout
        self._mongo: AsyncMongoClient[Any] | None = None
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._background: list[asyncio.Task[None]] = []

    def attach(self, app: FastStream) -> None:
        app.on_startup(self.prepare)
        app.after_startup(self.start_background)
        app.on_shutdown(self.stop_background)
        # After the background, before the broker closes (whatever a handler still running queues
        # after this, the relay republishes after a restart).
        app.on_shutdown(self.publish_queued)
        # After the broker has stopped: in-flight commands may still ask other workers until then.
        app.after_shutdown(self.disconnect)

    async def readiness(self) -> str | None:
        """Why this process cannot serve yet (for /readyz), or None."""
        if not await self._broker.ping(PING_TIMEOUT):  # a bool: it never raises
            return "broker not connected"
        if self._mongo is None:
            return "storage not initialised"
        try:
            await asyncio.wait_for(self._mongo.admin.command("ping"), PING_TIMEOUT)
        except Exception as error:
            return f"mongodb not answering: {error!r}"
        if not all(subscriber.running for subscriber in self._broker.subscribers):
            return "subscribers not running"
        return None

    async def open_storage(self, shared: bool = False) -> None:
        """The worker's database, its documents bound to it (once). ``shared``: the process serves
        other workers too, whose bindings of the same classes are kept beside (``bindings``)."""
        if self._mongo is not None:
            return
        worker, settings = self._worker, self._runtime.settings
        client: AsyncMongoClient[Any] = AsyncMongoClient(settings.require_mongo_url(), tz_aware=True)
        self._mongo = client
        database = client[settings.names.database(worker.name)]
        models = [*RUNTIME_DOCUMENTS, *worker.documents]
        if shared:
            await bindings.bind(worker.name, database, models)
        else:
            await init_beanie(database=database, document_models=models)

    async def prepare(self) -> None:
        worker, runtime, settings = self._worker, self._runtime, self._runtime.settings
        names = settings.names
        await self.open_storage()
        connection = self._connection = runtime.connection = await aio_pika.connect_robust(settings.amqp_url)
        channel = await connection.channel(on_return_raises=True)
        await topology.declare_exchanges(channel, settings)
        await topology.declare_work_queue(
            channel, names, names.command_queue(worker.name), names.commands, [worker.name]
        )
        for name, types in worker.interests().items():
            queue = names.reaction_queue(worker.name, name)
            retired = topology.RETIRED_BINDINGS.get((worker.name, name), ())
            await topology.declare_work_queue(channel, names, queue, names.events, types, retired)
        await runtime.outbox.attach(await connection.channel(publisher_confirms=True))
        runtime.rpc = RpcClient(channel, names, settings.request_timeout_seconds)
        await runtime.rpc.start()
        for mirror in worker.mirrors.values():  # before any subscriber starts: none sees it empty
            await mirror.reload(runtime)

    async def start_background(self) -> None:
        runtime = self._runtime
        await runtime.outbox.relay_once(older_than=RELAY_AT_START)
        self._background.append(asyncio.create_task(runtime.outbox.relay_forever()))
        for name, chore in self._worker.chores.items():
            self._background.append(asyncio.create_task(_repeat(name, chore, runtime)))
        for name, mirror in self._worker.mirrors.items():
            catch_up = Chore(lambda s: s.mirror_reload_seconds, mirror.reload)
            self._background.append(asyncio.create_task(_repeat(f"reload_{name}", catch_up, runtime)))
        log.info("worker ready", worker=self._worker.name)

    async def stop_background(self) -> None:
        for task in self._background:
            task.cancel()

    async def publish_queued(self) -> None:
        """What handlers queued goes out, then each ``Chore.last`` runs once more (e.g. marking it)."""
        try:
            await asyncio.wait_for(self._runtime.outbox.drain(), self._graceful_timeout)
        except TimeoutError:
            log.warning("queued events left to the relay")
        for name, chore in self._worker.chores.items():
            if chore.last:
                try:
                    await chore.run(self._runtime)
                except Exception:  # what it would have written, a restart does again
                    log.exception("chore failed", chore=name)

    async def disconnect(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def _repeat(name: str, chore: Chore, runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(chore.every(runtime.settings))
        try:
            await chore.run(runtime)
        except Exception:  # try again next time
            log.exception("chore failed", chore=name)
