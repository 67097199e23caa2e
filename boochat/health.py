"""Health and metrics for operators: a small plain-HTTP server that every worker and gateway process
runs on ``BOOCHAT_METRICS_PORT`` (``BOOCHAT_METRICS_HOST``), apart from the clients' port.

    GET /metrics   the process's Prometheus registry, in the text exposition format
    GET /healthz   200 while the process runs
    GET /readyz    200 when the process's readiness check finds nothing wrong, else 503 and the reason

Anything else is 404, methods other than GET and HEAD 405. prometheus_client's own server cannot
answer /readyz from an async check, hence this one (asyncio streams, one request per connection).

/metrics shows two registries: the component's own (the gateway's, or FastStream's for a worker)
and prometheus_client's default one, which holds what belongs to the process: its CPU, memory and
file descriptors (``process_*``, prometheus_client's ProcessCollector), Python's own metrics, the
build (``boochat_build_info``) and, in a worker, the depth and consumers of its queues
(``QueueMetrics``).
"""

from __future__ import annotations

import asyncio
import http
import platform
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version

import aio_pika
import structlog
from aio_pika import IncomingMessage
from aio_pika.exceptions import AMQPError
from faststream.prometheus.middleware import PrometheusMiddleware
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider
from faststream.rabbit.response import RabbitPublishCommand
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, Info, generate_latest

log = structlog.get_logger("health")

# What is wrong, or None when ready. Slow checks are cut off and answered 503.
ReadinessCheck = Callable[[], Awaitable[str | None]]

READY_TIMEOUT = 3.0  # seconds a readiness check may take before /readyz says 503
REQUEST_TIMEOUT = 5.0  # seconds a client has to send its request line and headers
MAX_HEADER_LINES = 100
QUEUE_METRICS_SECONDS = 10.0  # how often a worker asks the broker about its queues
BROKER_TIMEOUT = 5.0  # seconds one round of those questions may take

Info("boochat_build", "The running Boochat: its version (a constant 1, labelled)").info(
    {"version": version("boochat"), "python": platform.python_version()}
)


class HealthServer:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, check: ReadinessCheck, name: str = ""
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._check = check
        self._name = name
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int | None:
        """The bound port (useful with port 0 in tests), None when not listening."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen. A port that cannot be bound is logged, not raised: chat keeps working without
        its metrics, and the orchestrator's health check on that port reports the problem."""
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as error:
            log.error("metrics_port_unavailable", service=self._name, port=self._port, error=str(error))
            return
        log.info("metrics_listening", service=self._name, host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                method, path = await _read_request(reader)
            status, content_type, body = await self._answer(method, path)
            head = (
                f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError):
            pass  # a client that sends garbage or goes away gets nothing more
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> tuple[http.HTTPStatus, str, bytes]:
        text = "text/plain; charset=utf-8"
        if path not in ("/metrics", "/healthz", "/readyz"):
            return http.HTTPStatus.NOT_FOUND, text, b"not found\n"
        if method not in ("GET", "HEAD"):
            return http.HTTPStatus.METHOD_NOT_ALLOWED, text, b"method not allowed\n"
        if path == "/metrics":
            return http.HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self._registry) + generate_latest(REGISTRY)
        if path == "/healthz":
            return http.HTTPStatus.OK, text, b"ok\n"
        problem = await self._readiness()
        if problem is None:
            return http.HTTPStatus.OK, text, b"ready\n"
        return http.HTTPStatus.SERVICE_UNAVAILABLE, text, f"{problem}\n".encode()

    async def _readiness(self) -> str | None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                return await self._check()
        except TimeoutError:
            return "readiness check timed out"
        except Exception as error:  # a failing check means "not ready", never a crashed server
            return f"readiness check failed: {error!r}"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("not an HTTP request line")
    for _ in range(MAX_HEADER_LINES):  # headers are read and ignored
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            return parts[0], parts[1].partition("?")[0]
    raise ValueError("too many header lines")


# Worker metrics ---------------------------------------------------------------------------------


class QueueMetrics:
    """The depth and consumer count of a worker's queues, as the broker tells them: every
    ``QUEUE_METRICS_SECONDS`` a passive declare of each queue on a connection of its own; /metrics
    shows the last answers. A queue not declared yet is left out until it is."""

    def __init__(
        self,
        amqp_url: str,
        queues: Iterable[str],
        registry: CollectorRegistry = REGISTRY,
        every: float = QUEUE_METRICS_SECONDS,
    ) -> None:
        self._url = amqp_url
        self._queues = tuple(queues)
        self._every = every
        self._messages = Gauge(
            "boochat_queue_messages", "Messages ready in the queue, by queue", ["queue"], registry=registry
        )
        self._consumers = Gauge(
            "boochat_queue_consumers", "Consumers of the queue, by queue", ["queue"], registry=registry
        )
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

    async def refresh(self) -> None:
        """Ask the broker once (bounded by ``BROKER_TIMEOUT``)."""
        async with asyncio.timeout(BROKER_TIMEOUT):
            if self._connection is None:
                self._connection = await aio_pika.connect_robust(self._url)
            channel = await self._connection.channel()
            try:
                for queue in self._queues:
                    if channel.is_closed:  # a 404 closes the channel it came on
                        channel = await self._connection.channel()
                    try:
                        declared = await channel.declare_queue(queue, passive=True)
                    except aio_pika.exceptions.ChannelNotFoundEntity:
                        continue
                    result = declared.declaration_result
                    # pamqp types both counts optional; a broker's DeclareOk always carries them.
                    if result.message_count is not None:
                        self._messages.labels(queue).set(result.message_count)
                    if result.consumer_count is not None:
                        self._consumers.labels(queue).set(result.consumer_count)
            finally:
                if not channel.is_closed:
                    await channel.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (AMQPError, OSError, TimeoutError) as error:  # the broker is away: try again next time
                log.warning("queue_metrics_failed", error=repr(error))
            await asyncio.sleep(self._every)


class _BoundedDestinations(RabbitMetricsSettingsProvider):
    """FastStream labels a publish with ``<exchange>.<routing key>``: on the deliveries exchange the
    keys name rooms and users, one time series each. Those are labelled by kind instead."""

    def __init__(self, deliveries_exchange: str) -> None:
        super().__init__()
        self._deliveries = deliveries_exchange

    def get_publish_destination_name_from_cmd(self, cmd: RabbitPublishCommand) -> str:
        if cmd.exchange.name == self._deliveries:
            return f"{self._deliveries}.{cmd.destination.partition('.')[0]}"
        return super().get_publish_destination_name_from_cmd(cmd)


def rabbit_metrics(
    registry: CollectorRegistry, app_name: str, deliveries_exchange: str
) -> PrometheusMiddleware[IncomingMessage, RabbitPublishCommand]:
    """FastStream's Prometheus middleware for RabbitMQ (``RabbitPrometheusMiddleware``), with the
    deliveries exchange's per-room and per-user keys folded into one label value each."""
    provider = _BoundedDestinations(deliveries_exchange)
    return PrometheusMiddleware[IncomingMessage, RabbitPublishCommand](
        settings_provider_factory=lambda _: provider, registry=registry, app_name=app_name
    )
