"""A worker under SIGTERM finishes its in-flight commands within the graceful timeout and
acknowledges none it has not finished (RabbitMQ hands those to another replica)."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from support.stack import free_ports

from boochat.rpc import RpcClient
from boochat.settings import Settings
from boochat.supervisor import child_env, http_status
from boochat.topology import declare_exchanges
from contracts.envelope import Command
from workers.runtime.service import GRACEFUL_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

START_TIMEOUT = 60.0

# The users worker as `boochat worker users` runs it, except that list_users first says it started
# (on stdout) and then takes SLOW seconds: a test-only slow path, defined here, not in the worker.
WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from boochat.settings import Settings
    from workers.runtime import service
    from workers.users.handlers import COMMANDS, REACTIONS
    from workers.users.storage import DOCUMENTS

    slow, graceful = float(sys.argv[1]), float(sys.argv[2])
    service.GRACEFUL_TIMEOUT_SECONDS = graceful

    async def list_users(data, ctx):
        print("started", ctx.cause.correlation_id, flush=True)
        await asyncio.sleep(slow)
        return await COMMANDS["list_users"](data, ctx)

    worker = service.Worker("users", {**COMMANDS, "list_users": list_users}, REACTIONS, DOCUMENTS)
    asyncio.run(service.create(worker, Settings()).run())
    """
)


class WorkerProcess:
    def __init__(self, settings: Settings, slow: float, graceful: float) -> None:
        self.settings = settings.model_copy(update={"metrics_port": free_ports(1)})
        self.slow = slow
        self.graceful = graceful
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, script: Path) -> WorkerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(self.slow), str(self.graceful),
            env=child_env(self.settings), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        ready = f"http://127.0.0.1:{self.settings.metrics_port}/readyz"
        async with asyncio.timeout(START_TIMEOUT):
            while await http_status(ready) != 200:
                assert self.process.returncode is None, "the worker died while starting"
                await asyncio.sleep(0.1)  # polling: plain HTTP has nothing to wait on
        return self

    async def started(self, command_id: str) -> None:
        """Wait until the slow handler has started on ``command_id``."""
        assert self.process is not None and self.process.stdout is not None
        async with asyncio.timeout(10):
            while (line := await self.process.stdout.readline()) != f"started {command_id}\n".encode():
                assert line, "the worker's stdout closed"

    async def terminate(self, timeout: float) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "slow_users_worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture
async def rpc(settings: Settings) -> AsyncIterator[RpcClient]:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await declare_exchanges(channel, settings)
    client = RpcClient(channel, settings.names, timeout=30)
    await client.start()
    yield client
    await connection.close()


@pytest.fixture
async def workers() -> AsyncIterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        await worker.kill()


def list_users() -> Command:
    return Command(type="list_users", id=uuid.uuid4().hex, user_id="operator", data={})


async def test_sigterm_lets_an_in_flight_command_finish(
    settings: Settings, script: Path, rpc: RpcClient, workers: list[WorkerProcess]
) -> None:
    worker = await WorkerProcess(settings, slow=2.0, graceful=GRACEFUL_TIMEOUT_SECONDS).start(script)
    workers.append(worker)
    command = list_users()
    call = asyncio.create_task(rpc.call("users", command))
    await worker.started(command.id)
    stopping = asyncio.create_task(worker.terminate(timeout=GRACEFUL_TIMEOUT_SECONDS + 10))
    reply = await call
    assert reply.error is None and reply.ok is not None and "users" in reply.ok
    assert await stopping == 0


async def test_a_command_cut_off_by_the_graceful_timeout_goes_to_another_replica(
    settings: Settings, script: Path, rpc: RpcClient, workers: list[WorkerProcess]
) -> None:
    first = await WorkerProcess(settings, slow=30.0, graceful=0.5).start(script)
    workers.append(first)
    command = list_users()
    call = asyncio.create_task(rpc.call("users", command))
    await first.started(command.id)
    assert await first.terminate(timeout=15) == 0
    assert not call.done()
    second = await WorkerProcess(settings, slow=0.0, graceful=GRACEFUL_TIMEOUT_SECONDS).start(script)
    workers.append(second)
    await second.started(command.id)  # redelivered: the first worker never acknowledged it
    reply = await call
    assert reply.error is None and reply.ok is not None
