"""Which worker's database a document class means, when several workers share one process.

Beanie binds a document class to one database, in the class itself (``init_beanie`` sets its
``_document_settings``). Every worker has a database of its own, and some classes belong to several
workers: the event store and the command claims to all of them, presence to messaging and to
notifications. In a process of its own a worker binds its classes once and nothing here is used. In
a process serving several (``boochat up``), ``bind`` replaces each class's settings by a
``_Routed`` that holds each worker's binding and picks the one of the worker in ``SERVING``, a context
variable each worker's task sets (``serve_as``) and every task it starts inherits: its subscribers,
its background, its stop.

Bind every worker before any of them runs: ``init_beanie`` rebinds the classes while it works.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from beanie import Document, init_beanie
from beanie.odm.settings.document import DocumentSettings
from pymongo.asynchronous.database import AsyncDatabase

SERVING: ContextVar[str | None] = ContextVar("boochat_serving_worker", default=None)


def serve_as(worker: str) -> None:
    """This task, and the tasks it starts from now on, act for ``worker``."""
    SERVING.set(worker)


class NotServingError(RuntimeError):
    """A class bound for several workers was used outside any worker's tasks."""


class _Routed:
    """Stands in for a document class's settings: each worker's, chosen by ``SERVING``."""

    def __init__(self, model: type[Document]) -> None:
        self._model = model
        self._by_worker: dict[str, DocumentSettings] = {}

    def add(self, worker: str, settings: DocumentSettings) -> None:
        self._by_worker[worker] = settings

    def current(self) -> DocumentSettings:
        worker = SERVING.get()
        if worker is not None and worker in self._by_worker:
            return self._by_worker[worker]
        if len(self._by_worker) == 1:  # a class of one worker: there is no choice to make
            return next(iter(self._by_worker.values()))
        raise NotServingError(f"{self._model.__name__} is bound for {sorted(self._by_worker)}, used for {worker!r}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)


async def bind(worker: str, database: AsyncDatabase[Any], models: list[type[Document]]) -> None:
    """Bind ``models`` to ``database`` for ``worker``, beside the other workers' bindings."""
    routes = {model: model.__dict__.get("_document_settings") for model in models}
    await init_beanie(database=database, document_models=models)
    for model in models:
        routed = routes[model]
        if not isinstance(routed, _Routed):
            routed = _Routed(model)
        routed.add(worker, model.get_settings())
        model._document_settings = routed  # type: ignore[assignment]  # reads through it, as DocumentSettings
