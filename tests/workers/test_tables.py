"""One checked table per worker: every request is handled by its owner alone, with its contract's types."""

from __future__ import annotations

import importlib
import inspect
from typing import get_args, get_type_hints

import pytest

from boochat.supervisor import available_workers
from contracts.internal import INTERNAL, HandOver
from contracts.requests import REQUESTS
from workers.runtime.context import Context
from workers.runtime.outbox import Carried
from workers.runtime.tables import Worker

SPECS = REQUESTS | INTERNAL
WORKERS: dict[str, Worker] = {
    name: importlib.import_module(f"workers.{name}.app").WORKER for name in available_workers()
}


def test_requests_and_internal_requests_never_share_a_type() -> None:
    assert not REQUESTS.keys() & INTERNAL.keys()


@pytest.mark.parametrize("type", sorted(SPECS))
def test_each_request_is_handled_by_its_owner_alone(type: str) -> None:
    """A gateway's request by no worker; any other by exactly the worker its contract names."""
    handled_by = [name for name, worker in WORKERS.items() if type in worker.commands]
    owner = SPECS[type].owner
    assert handled_by == ([] if owner == "gateway" else [owner])


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_a_worker_handles_only_requests_it_owns(name: str) -> None:
    worker = WORKERS[name]
    assert worker.name == name
    owners = {type: SPECS[type].owner if type in SPECS else None for type in worker.commands}
    assert owners == dict.fromkeys(worker.commands, name)


@pytest.mark.parametrize(("worker", "type"), sorted((w.name, t) for w in WORKERS.values() for t in w.commands))
def test_a_handler_takes_its_contracts_data_and_returns_its_reply(worker: str, type: str) -> None:
    """The first parameter is exactly ``Spec.data`` (what the runtime validates it into), the
    second the ``Context``, the result a ``Spec.reply`` (or ``Carried``: that reply, already on its
    way to the caller)."""
    handler = WORKERS[worker].commands[type]
    data, context = inspect.signature(handler).parameters
    hints = get_type_hints(handler)
    assert hints[data] is SPECS[type].data
    assert hints[context] is Context
    [reply] = [t for t in get_args(hints["return"]) or (hints["return"],) if t is not Carried]
    assert issubclass(reply, SPECS[type].reply)


def test_followers_are_handed_over_by_commands_their_owner_handles() -> None:
    """Each hand-over is a command of the follower's own, taking ``HandOver``, and the follower reads
    every event type it is handed (a reaction's or a projection's)."""
    for worker in WORKERS.values():
        for type, event_types in worker.followers.items():
            spec = INTERNAL[type]
            follower = WORKERS[spec.owner]
            assert spec.data is HandOver and not spec.command and type in follower.commands
            read = {t for table in (follower.reactions | follower.projections).values() for t in table.payloads}
            assert set(event_types) <= read, (type, set(event_types) - read)
