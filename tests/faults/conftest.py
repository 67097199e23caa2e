"""Fixtures of the fault tests: every fixture of tests/conftest.py here talks to a private RabbitMQ
node (``amqp_url`` is overridden), started once for this folder and stopped after its last test, so
closed connections, a stopped broker and killed workers never reach the shared broker.
``start_stack`` gives each test its own stack there; its namespace is dropped when the test ends."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from support.fcm import FakeFcm
from support.private_broker import PrivateBroker


@pytest.fixture(scope="package")
async def private_broker() -> AsyncIterator[PrivateBroker]:
    if os.geteuid() != 0:  # the node's folder is handed to the rabbitmq user, as Debian's wrapper runs it
        pytest.fail("tests/faults start a private RabbitMQ node of their own: run them as root")
    async with PrivateBroker() as broker:
        yield broker


@pytest.fixture(scope="package")
def amqp_url(private_broker: PrivateBroker) -> str:
    return private_broker.url


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    async with FakeFcm() as server:
        yield server
