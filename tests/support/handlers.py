"""Run a worker's command and reaction tables in-process, with the real pipeline (idempotency,
retries, the outbox) and storage on the Mongo stand-in, but fake neighbours: other workers answer
from scripts, and published events are recorded instead of sent. Its mirrors are loaded before
anything runs, as a worker process does; ``reload()`` loads them again, as its periodic reload does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from boochat.settings import Settings
from contracts.envelope import AnyEvent, Command, Failure, Reply
from contracts.internal import Users
from contracts.routing import Names
from contracts.shapes import User
from workers.runtime.context import Runtime
from workers.runtime.dispatch import run_command, run_reaction
from workers.runtime.entries import Message
from workers.runtime.outbox import Outbox
from workers.runtime.store import RUNTIME_DOCUMENTS, Aggregate
from workers.runtime.tables import Worker

Answer = Callable[[Command], dict[str, Any] | Failure]


class FakeRpc:
    """Other workers, scripted: ``answer(worker, type, fn)``; unscripted calls are ``unavailable``."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.calls: list[tuple[str, Command]] = []

    def answer(self, worker: str, type: str, fn: Answer) -> None:
        self.answers[(worker, type)] = fn

    async def call(self, worker: str, command: Command, timeout: float | None = None) -> Reply:
        self.calls.append((worker, command))
        fn = self.answers.get((worker, command.type))
        if fn is None:
            return Reply(error=Failure(code="unavailable", message=f"no fake for {worker} {command.type}"))
        answer = fn(command)
        return Reply(error=answer) if isinstance(answer, Failure) else Reply(ok=answer)


class RecordingOutbox(Outbox):
    """The real outbox (its queue, the event store, outbox clearing), publishing into lists: the
    messages as encoded for the broker, decoded again."""

    def __init__(self, aggregates: list[type[Aggregate]]) -> None:
        super().__init__(None, Names("test"), aggregates)  # type: ignore[arg-type]
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.also: dict[str, list[str]] = {}  # by event id: the routing keys besides its type

    async def _transmit(self, messages: list[Message]) -> None:
        for message in messages:
            body = json.loads(message.body)
            if message.exchange == "events":
                self.events.append(body)
                self.also[body["event_id"]] = list(message.also)
                continue
            cc = {"cc": list(message.also)} if message.also else {}  # more keys it is routed under
            self.deliveries.append({"key": message.routing_key, **body, **cc})
            self.deliveries.extend(body.get("riders", []))  # each with its own key, as the gateways deliver it


class Harness:
    def __init__(self, worker: Worker, runtime: Runtime, outbox: RecordingOutbox, rpc: FakeRpc) -> None:
        self.worker = worker
        self.runtime = runtime
        self.outbox = outbox
        self.rpc = rpc
        self.directory: dict[str, User] = {}
        rpc.answer("users", "resolve_users", self._resolve)

    def add_users(self, *names: str) -> list[User]:
        """Known users, as the users worker would resolve them."""
        users = [User(id=f"{name.lower()}-{uuid.uuid4().hex[:6]}", name=name) for name in names]
        self.directory.update({user.id: user for user in users})
        return users

    def _resolve(self, command: Command) -> dict[str, Any]:
        ids = command.data["ids"]
        return Users(users=[self.directory[i] for i in dict.fromkeys(ids) if i in self.directory]).model_dump(
            mode="json"
        )

    async def command(
        self, type: str, user: User | str, data: dict[str, Any] | None = None, id: str | None = None
    ) -> Reply:
        user_id = user if isinstance(user, str) else user.id
        command = Command(type=type, id=id or uuid.uuid4().hex, user_id=user_id, data=data or {})
        reply = (await run_command(self.worker, self.runtime, command)).reply
        await self.drain()
        return reply

    async def drain(self) -> None:
        """What was queued for publishing is published, and the chores that run last (marking it) ran."""
        await self.outbox.drain()
        for chore in self.worker.chores.values():
            if chore.last:
                await chore.run(self.runtime)

    async def ok(self, type: str, user: User | str, data: dict[str, Any] | None = None, id: str | None = None) -> dict:
        reply = await self.command(type, user, data, id)
        assert reply.error is None, reply.error
        return reply.ok or {}

    async def error(self, type: str, user: User | str, data: dict[str, Any] | None = None) -> str:
        reply = await self.command(type, user, data)
        assert reply.error is not None, reply.ok
        return reply.error.code

    async def react(self, name: str, event: AnyEvent) -> None:
        if name in self.worker.mirrors:
            self.worker.mirrors[name].reflect(self.runtime, event)
        elif name in self.worker.projections:
            await self.worker.projections[name].run(event)
        else:
            await run_reaction(self.worker.reactions[name], self.runtime, event)
        await self.drain()

    async def reload(self) -> None:
        for mirror in self.worker.mirrors.values():
            await mirror.reload(self.runtime)

    def events(self, type: str) -> list[dict[str, Any]]:
        return [event for event in self.outbox.events if event["type"] == type]

    def sent(self, event: str, key: str | None = None) -> list[dict[str, Any]]:
        return [d for d in self.outbox.deliveries if d["event"] == event and (key is None or d["key"] == key)]


def event(
    type: str, payload: Any, aggregate_id: str = "agg", version: int = 1, actor_id: str | None = None
) -> AnyEvent:
    """A domain event as another worker would publish it."""
    body = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload
    return AnyEvent(
        event_id=uuid.uuid4().hex,
        type=type,
        aggregate_id=aggregate_id,
        version=version,
        occurred_at=datetime.now(UTC),
        actor_id=actor_id,
        correlation_id="c",
        causation_id="c",
        payload=body,
    )


READS = ("find", "find_one", "aggregate", "count_documents")
WRITES = ("insert_one", "insert_many", "replace_one", "update_one", "update_many", "delete_one")


def database_calls(monkeypatch: pytest.MonkeyPatch, methods: tuple[str, ...]) -> list[str]:
    """From now on, every call of these collection ``methods``, as ``<collection>.<method>``."""
    calls: list[str] = []
    for name in methods:
        original = getattr(AsyncCollection, name)

        def spy(
            self: AsyncCollection[Any], *args: Any, _name: str = name, _original: Any = original, **kwargs: Any
        ) -> Any:
            calls.append(f"{self.name}.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(AsyncCollection, name, spy)
    return calls


def replica(of: Harness) -> Harness:
    """Another process of the same worker on the same database: its own memory, outbox and fakes."""
    outbox = RecordingOutbox(of.outbox._aggregates)
    rpc = FakeRpc()
    runtime = Runtime(Settings(), outbox, rpc, of.worker.projections.values(), of.worker.followers)  # type: ignore[arg-type]
    twin = Harness(of.worker, runtime, outbox, rpc)
    twin.directory = of.directory
    return twin


async def harness(worker: Worker, mongo_url: str) -> Harness:
    """A worker on a fresh database of the stand-in."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, tz_aware=True)
    await init_beanie(
        database=client[f"h{uuid.uuid4().hex[:12]}"], document_models=[*RUNTIME_DOCUMENTS, *worker.documents]
    )
    outbox = RecordingOutbox([d for d in worker.documents if issubclass(d, Aggregate)])
    rpc = FakeRpc()
    runtime = Runtime(Settings(), outbox, rpc, worker.projections.values(), worker.followers)  # type: ignore[arg-type]
    loaded = Harness(worker, runtime, outbox, rpc)
    await loaded.reload()
    return loaded
