"""boochat.health: the operators' port answers /healthz, /readyz and /metrics, and 404 elsewhere."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from ops_http import get
from prometheus_client import CollectorRegistry, Counter

from boochat import health
from boochat.health import HealthServer


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
