"""The composition every worker shares: a FastStream app with the worker's subscribers
(``subscribers``), its storage, relay, chores and mirrors opened and closed with it (``lifecycle``),
and its health and metrics."""

from __future__ import annotations

import logging

import structlog
from faststream import FastStream
from faststream.rabbit import RabbitBroker
from faststream.rabbit.schemas import Channel
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry

from boochat.health import HealthServer, rabbit_metrics
from boochat.logs import configure
from boochat.settings import Settings
from contracts.routing import Names
from workers.runtime.context import Runtime
from workers.runtime.lifecycle import Lifecycle
from workers.runtime.outbox import Outbox
from workers.runtime.store import Aggregate
from workers.runtime.subscribers import subscribe
from workers.runtime.tables import Worker

# On SIGTERM, in-flight messages get this long to finish (unfinished ones are not acknowledged, so
# RabbitMQ redelivers them); an orchestrator's stop grace must be longer (compose: stop_grace_period).
GRACEFUL_TIMEOUT_SECONDS = 10.0


class WorkerApp(FastStream):
    """A worker's FastStream app, and what a process serving several workers (``boochat.together``)
    takes from it: its start and stop, and its metrics."""

    worker: Worker
    lifecycle: Lifecycle
    registry: CollectorRegistry


def create(worker: Worker, settings: Settings) -> WorkerApp:
    """The FastStream app of ``worker``: topology, storage, subscribers, relay and RPC."""
    configure(worker.name, settings.log_level)
    names = settings.names
    registry = CollectorRegistry()
    broker = RabbitBroker(
        settings.amqp_url,
        default_channel=Channel(prefetch_count=settings.prefetch),
        graceful_timeout=GRACEFUL_TIMEOUT_SECONDS,
        middlewares=[rabbit_metrics(registry, worker.name, names.deliveries)],
        # FastStream's own lines as JSON like ours; its per-message lines only at debug level, like
        # "command handled" for a command that succeeded.
        logger=structlog.get_logger("faststream"),
        log_level=logging.DEBUG,
    )
    outbox = Outbox(broker, names, [d for d in worker.documents if issubclass(d, Aggregate)], registry)
    runtime = Runtime(settings, outbox, None, worker.projections.values(), worker.followers)
    spec = AsyncAPI(title=f"Boochat {worker.name} worker", description=_describe(worker, names))
    app = WorkerApp(broker, specification=spec, logger=structlog.get_logger("faststream"))
    app.context.set_global("runtime", runtime)  # for operators' hooks and tests: what this process holds
    subscribe(broker, worker, runtime)
    lifecycle = Lifecycle(worker, runtime, broker, GRACEFUL_TIMEOUT_SECONDS)
    if settings.metrics_port:
        health = HealthServer(settings.metrics_host, settings.metrics_port, registry, lifecycle.readiness, worker.name)
        # First in, last out: /healthz answers while the rest starts and stops.
        app.on_startup(health.start)
        app.after_shutdown(health.stop)
    lifecycle.attach(app)
    app.worker, app.lifecycle, app.registry = worker, lifecycle, registry
    return app


def _describe(worker: Worker, names: Names) -> str:
    """The AsyncAPI description: what the queues' bindings (declared by ``topology``) route to them."""
    lines = [
        f"Commands on `{names.command_queue(worker.name)}` (exchange `{names.commands}`, key "
        f"`{worker.name}`): {', '.join(f'`{c}`' for c in sorted(worker.commands))}. Each gets a reply.",
    ]
    for name, reaction_types in worker.interests().items():
        kind = "Projection" if name in worker.projections else "Reaction"
        types = ", ".join(f"`{t}`" for t in reaction_types)
        lines.append(f"{kind} `{name}` on `{names.reaction_queue(worker.name, name)}`: events {types}.")
    for name, mirror in worker.mirrors.items():
        types = ", ".join(f"`{t}`" for t in mirror.types)
        queue = names.mirror_queue(worker.name, name, "<process_id>")
        lines.append(f"Mirror `{name}` on `{queue}`, one queue per process (auto-delete): events {types}.")
    lines.append(f"Publishes its events on `{names.events}` and client deliveries on `{names.deliveries}`.")
    return "\n\n".join(lines)
