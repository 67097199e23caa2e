"""boochat.health: the operators' port answers /healthz, /readyz and /metrics, and 404 elsewhere;
/metrics shows the process and the build, and a worker's queues as the broker sees them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from importlib.metadata import version

import aio_pika
import pytest
from prometheus_client import CollectorRegistry, Counter
from support.ops_http import get

from boochat import health
from boochat.health import HealthServer, QueueMetrics
from boochat.settings import Settings


class Readiness:
    """A readiness check whose answer the test sets."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self.hang = False

    async def __call__(self) -> str | None:
        if self.hang:
            await asyncio.Event().wait()
        return self.problem


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def server(readiness: Readiness) -> AsyncIterator[tuple[str, CollectorRegistry]]:
    registry = CollectorRegistry()
    running = HealthServer("127.0.0.1", 0, registry, readiness, "test")
    await running.start()
    yield f"http://127.0.0.1:{running.port}", registry
    await running.stop()


async def test_healthz_answers_while_running(server: tuple[str, CollectorRegistry]) -> None:
    url, _ = server
    assert await get(f"{url}/healthz") == (200, "ok\n")


async def test_readyz_follows_the_check(server: tuple[str, CollectorRegistry], readiness: Readiness) -> None:
    url, _ = server
    assert await get(f"{url}/readyz") == (200, "ready\n")
    readiness.problem = "broker not connected"
    assert await get(f"{url}/readyz") == (503, "broker not connected\n")


async def test_a_hanging_check_is_not_ready(
    server: tuple[str, CollectorRegistry], readiness: Readiness, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    monkeypatch.setattr(health, "READY_TIMEOUT", 0.1)
    readiness.hang = True
    assert await get(f"{url}/readyz") == (503, "readiness check timed out\n")


async def test_metrics_are_the_registry_in_prometheus_text(server: tuple[str, CollectorRegistry]) -> None:
    url, registry = server
    Counter("boochat_test_things", "Things", registry=registry).inc(3)
    status, body = await get(f"{url}/metrics")
    assert status == 200
    assert "boochat_test_things_total 3.0" in body


async def test_other_paths_and_methods_are_refused(server: tuple[str, CollectorRegistry]) -> None:
    url, _ = server
    assert (await get(f"{url}/ws"))[0] == 404
    assert (await get(f"{url}/metrics/x"))[0] == 404
    assert (await get(f"{url}/healthz", method="POST"))[0] == 405
    assert await get(f"{url}/healthz", method="HEAD") == (200, "")


async def test_a_taken_port_is_logged_not_raised(readiness: Readiness) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HealthServer("127.0.0.1", taken.getsockname()[1], CollectorRegistry(), readiness)
        await server.start()
        assert server.port is None
        await server.stop()


async def test_metrics_show_the_process_and_the_build(server: tuple[str, CollectorRegistry]) -> None:
    url, _ = server
    body = (await get(f"{url}/metrics"))[1]
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        assert float(next(line for line in body.splitlines() if line.startswith(f"{name} ")).split()[1]) > 0, name
    assert 'boochat_build_info{python="' in body and f'version="{version("boochat")}"' in body


@pytest.mark.integration
async def test_queue_metrics_say_what_the_broker_holds(settings: Settings) -> None:
    """Three messages wait in one queue, a consumer holds another, a third is not declared yet."""
    # Real queue names of the namespace, so that dropping it deletes them.
    waiting, consumed, missing = (settings.names.command_queue(worker) for worker in ("rooms", "users", "polls"))
    registry = CollectorRegistry()
    metrics = QueueMetrics(settings.amqp_url, [waiting, consumed, missing], registry=registry)
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()  # publisher confirms: the messages are queued once published
        for name in (waiting, consumed):
            await channel.declare_queue(name, durable=True)
        for _ in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=waiting)
        await (await channel.get_queue(consumed)).consume(ack)
        await metrics.refresh()
    finally:
        await metrics.stop()
        await connection.close()
    assert registry.get_sample_value("boochat_queue_messages", {"queue": waiting}) == 3
    assert registry.get_sample_value("boochat_queue_consumers", {"queue": waiting}) == 0
    assert registry.get_sample_value("boochat_queue_messages", {"queue": consumed}) == 0
    assert registry.get_sample_value("boochat_queue_consumers", {"queue": consumed}) == 1
    assert registry.get_sample_value("boochat_queue_messages", {"queue": missing}) is None


async def ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.ack()


async def test_queue_metrics_outlive_an_unreachable_broker() -> None:
    """Nothing listens on the port: the metrics stay empty, the worker goes on."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    registry = CollectorRegistry()
    metrics = QueueMetrics(f"amqp://guest:guest@127.0.0.1:{port}/", ["x.commands"], registry=registry)
    with pytest.raises((OSError, aio_pika.exceptions.AMQPError)):
        await metrics.refresh()
    await metrics.stop()
    assert registry.get_sample_value("boochat_queue_messages", {"queue": "x.commands"}) is None
