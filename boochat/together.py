"""The gateway and every worker in this one process, on one asyncio loop: ``boochat up``.

Each worker is the FastStream app it is in a process of its own (``create_app(settings)``): its own
broker connections, its command queue and its reaction queues, so a ``boochat worker NAME`` started
elsewhere consumes beside it. Each runs in a context of its own (``bindings.serve_as``), which its
tasks inherit: its log lines name it as their ``service``, and its documents reach its database.

Start: the metrics port, every worker's storage one after the other (binding a worker's documents
must not overlap a worker that runs), every worker's app at once, then the gateway. A worker whose
start fails ends the process with status 1, after stopping the rest: whoever runs ``boochat up``
(a systemd unit, a terminal) starts it again; nothing restarts inside the process.
Stop (SIGTERM or SIGINT): the gateway first (clients are closed with 1012 and reconnect), then every
worker at once, as in a process of its own: in-flight messages get ``GRACEFUL_TIMEOUT_SECONDS``,
what handlers queued is published, then it disconnects.

One metrics port for the process (``BOOCHAT_METRICS_PORT``): ``/metrics`` holds the gateway's
metrics, every worker's (labelled ``app_name``) and the depth and consumers of every worker's
queues; ``/readyz`` is 200 when the gateway and every worker are ready, else 503 and who is not.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from boochat.health import HealthServer, QueueMetrics
from boochat.logs import configure
from boochat.settings import Settings

log = structlog.get_logger("together")


class WorkerStartError(Exception):
    """A worker's app could not start."""


class Together:
    """The gateway and ``workers`` (names), served by this process."""

    def __init__(self, settings: Settings, workers: Iterable[str]) -> None:
        # Imported here: ``boochat`` runs without them (``boochat drop``, ``dead``, the tests of the CLI).
        from gateway.app import Gateway
        from workers.runtime.bindings import serve_as
        from workers.runtime.service import WorkerApp

        self.settings = settings
        own = settings.model_copy(update={"metrics_port": 0})  # the process's port is served here
        self._contexts: dict[str, contextvars.Context] = {}
        self.apps: dict[str, WorkerApp] = {}
        for name in workers:
            context = self._contexts[name] = contextvars.copy_context()
            context.run(serve_as, name)
            module = importlib.import_module(f"workers.{name}.app")
            app = context.run(module.create_app, own)  # configures logging for ``name`` in its context
            assert isinstance(app, WorkerApp), f"workers.{name}.app.create_app makes no WorkerApp"
            self.apps[name] = app
        context = self._contexts["gateway"] = contextvars.copy_context()
        context.run(structlog.contextvars.bind_contextvars, service="gateway")
        self.gateway = context.run(Gateway, settings)
        configure("boochat", settings.log_level)  # lines of no component's context: the process's
        self._health = HealthServer(
            settings.metrics_host, settings.metrics_port, self._registry(), self.readiness, "boochat"
        )
        names = settings.names
        queues = [
            queue
            for app in self.apps.values()
            for queue in (
                names.command_queue(app.worker.name),
                *(names.reaction_queue(app.worker.name, n) for n in app.worker.interests()),
            )
        ]
        # Its gauges are the process's (prometheus_client's default registry): made once, when shown.
        self._queues = QueueMetrics(settings.amqp_url, queues) if settings.metrics_port else None
        self._started: list[str] = []

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.gateway_host}:{self.gateway.port}/ws"

    async def start(self) -> None:
        """Everything, in order (above). Raises ``WorkerStartError`` once what had started is stopped."""
        if self.settings.metrics_port:
            await self._health.start()
        for name, app in self.apps.items():
            await self._as(name, app.lifecycle.open_storage(shared=True))
        names = list(self.apps)
        outcomes = await asyncio.gather(
            *(self._as(name, self.apps[name].start()) for name in names), return_exceptions=True
        )
        self._started = [name for name, outcome in zip(names, outcomes, strict=True) if outcome is None]
        failed = {name: outcome for name, outcome in zip(names, outcomes, strict=True) if outcome is not None}
        if failed:
            for name, error in failed.items():
                log.error("worker_failed", worker=name, error=repr(error), exc_info=error)
            await self.stop()
            raise WorkerStartError(", ".join(f"{name}: {error!r}" for name, error in failed.items()))
        if self._queues is not None:
            await self._queues.start()
        try:
            await self._as("gateway", self.gateway.start())
            await self.gateway.connected()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self._as("gateway", self.gateway.stop())
        stopping = [self._as(name, self.apps[name].stop()) for name in self._started]
        for name, outcome in zip(self._started, await asyncio.gather(*stopping, return_exceptions=True), strict=True):
            if outcome is not None:
                log.error("worker_stop_failed", worker=name, error=repr(outcome), exc_info=outcome)
        self._started = []
        if self._queues is not None:
            await self._queues.stop()
        await self._health.stop()

    async def readiness(self) -> str | None:
        """Who is not ready and why, for ``/readyz``; None when all are."""
        problem = await self.gateway.readiness()
        if problem is not None:
            return f"gateway: {problem}"
        for name, app in self.apps.items():
            problem = await app.lifecycle.readiness()
            if problem is not None:
                return f"{name}: {problem}"
        return None

    def _as(self, name: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """``work`` in ``name``'s context (a copy: what it binds stays its own)."""
        return asyncio.create_task(work, name=name, context=self._contexts[name].copy())

    def _registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged([self.gateway.hub.metrics.registry, *(app.registry for app in self.apps.values())]))
        return registry


class _Merged:
    """Several registries as one: a family that more than one holds (FastStream's, one per worker,
    labelled apart by ``app_name``) is shown once with every sample, as the text format requires."""

    def __init__(self, registries: list[CollectorRegistry]) -> None:
        self._registries = registries

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for registry in self._registries:
            for metric in registry.collect():
                merged = families.get(metric.name)
                if merged is None:
                    merged = families[metric.name] = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                merged.samples.extend(metric.samples)
        return families.values()


async def serve(settings: Settings, workers: Iterable[str], when_ready: Callable[[Together], Awaitable[None]]) -> None:
    """Run the gateway and ``workers`` until SIGINT or SIGTERM; ``when_ready`` once all serve.
    A worker that fails to start ends it with ``SystemExit`` naming it (status 1)."""
    together = Together(settings, workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        log.info("starting", workers=list(together.apps))
        try:
            await together.start()  # bounded: a broker or database that does not answer fails it
        except WorkerStartError as error:
            raise SystemExit(f"boochat up: a worker failed to start ({error})") from None
        await when_ready(together)
        await stop.wait()
        log.info("stopping")
        await together.stop()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("stopped")
