"""Shared fixtures: the Mongo stand-in, RabbitMQ, a namespace per test, settings, the running stack.

- ``mongo_url`` (session): one stand-in for the whole run.
- ``amqp_url`` (session): ``BOOCHAT_AMQP_URL`` or the default; fails clearly if RabbitMQ is down.
- ``namespace``: a fresh ``t<hex>`` per test, so tests never see each other's data; dropped
  (queues, exchanges, databases: ``boochat drop``) when the test ends.
- ``settings``: Settings for that namespace, built from these fixtures only (never from the
  developer's BOOCHAT_* environment).
- ``stack`` (session): the real stack, one namespace for the whole run; tests use fresh users and
  rooms. ``start_stack(scale=..., **settings)``: more stacks, stopped after the test. Every stack's
  namespace is dropped once its processes have stopped.

Helpers live in ``tests/support`` and are imported as ``support.*`` (pytest puts ``tests/`` on
``sys.path`` for this conftest).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from support.broker import check_reachable
from support.stack import Stack, free_ports

from boochat import mongo
from boochat.settings import Settings
from boochat.topology import drop_namespace

TEST_JWT_SECRET = "boochat-tests-jwt-secret-0123456789abcdef"  # 32+ bytes, as the gateway requires
REQUEST_TIMEOUT = 5.0


class IsolatedSettings(Settings):
    """Settings from explicit values only: a developer's BOOCHAT_* variables must not leak into tests."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **sources):  # type: ignore[no-untyped-def, override]
        return (init_settings,)


# Every test's data folder (uploaded files) is made in here; it goes, with all of them, when the test
# session ends.
SCRATCH = tempfile.TemporaryDirectory(prefix="boochat-tests-")


def make_settings(namespace: str, mongo_url: str, amqp_url: str, **overrides: Any) -> Settings:
    """Test settings for ``namespace``: dev login on, a test secret, short timeouts, a free port."""
    values: dict[str, Any] = {
        "namespace": namespace,
        "mongo_url": mongo_url,
        "amqp_url": amqp_url,
        "dev_login": True,
        "jwt_secret": TEST_JWT_SECRET,
        "request_timeout_seconds": REQUEST_TIMEOUT,
        "gateway_port": free_ports(1),
        "files_port": free_ports(1),
        "data_dir": tempfile.mkdtemp(prefix="data-", dir=SCRATCH.name),  # uploaded files, never the repository's data/
    }
    values.update(overrides)
    return IsolatedSettings(**values)


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def mongo_url() -> AsyncIterator[str]:
    async with mongo.start() as stand_in:
        yield stand_in.url


@pytest.fixture(scope="session")
async def amqp_url() -> str:
    url = os.environ.get("BOOCHAT_AMQP_URL") or Settings.model_fields["amqp_url"].default
    problem = await check_reachable(url)
    if problem is not None:
        pytest.fail(f"RabbitMQ is not reachable at {url} ({problem}); start it with deploy/ensure-rabbitmq.sh")
    return url


async def drop(namespace: str, mongo_url: str, amqp_url: str) -> None:
    """Delete the namespace's queues, exchanges and databases (stop its processes first)."""
    await drop_namespace(IsolatedSettings(namespace=namespace, mongo_url=mongo_url, amqp_url=amqp_url))


@pytest.fixture
async def namespace(mongo_url: str, amqp_url: str) -> AsyncIterator[str]:
    namespace = new_namespace()
    yield namespace
    await drop(namespace, mongo_url, amqp_url)


@pytest.fixture
def settings(namespace: str, mongo_url: str, amqp_url: str) -> Settings:
    return make_settings(namespace, mongo_url, amqp_url)


@pytest.fixture(scope="session")
async def stack(mongo_url: str, amqp_url: str) -> AsyncIterator[Stack]:
    namespace = new_namespace()
    try:
        async with Stack(make_settings(namespace, mongo_url, amqp_url)) as running:
            yield running
    finally:
        await drop(namespace, mongo_url, amqp_url)


StartStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def start_stack(mongo_url: str, amqp_url: str) -> AsyncIterator[StartStack]:
    """``await start_stack(scale={"messaging": 2, "gateway": 2}, **settings_overrides)``: a fresh
    namespace's stack, stopped when the test ends."""
    started: list[Stack] = []
    namespaces: list[str] = []

    async def start(scale: Mapping[str, int] | None = None, **overrides: Any) -> Stack:
        namespace = overrides.pop("namespace", None) or new_namespace()
        namespaces.append(namespace)
        gateways = (scale or {}).get("gateway", 1)
        overrides.setdefault("gateway_port", free_ports(max(gateways, 1)))
        overrides.setdefault("files_port", free_ports(max(gateways, 1)))
        stack = Stack(make_settings(namespace, mongo_url, amqp_url, **overrides), scale)
        await stack.start()
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in reversed(started):
            await stack.stop()
        for namespace in namespaces:
            await drop(namespace, mongo_url, amqp_url)
