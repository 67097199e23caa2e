"""``boochat up`` runs the gateway and every worker in one Python process (beside the Mongo
stand-in): a chat goes through it, a ``boochat worker messaging`` started beside it consumes the same
command queue, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from support.client import Client
from support.stack import free_ports

from boochat.datadir import DataDir
from boochat.supervisor import http_status, wait_for_consumers
from e2e.helpers import make_room, new_user

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BOOCHAT = (sys.executable, "-m", "boochat.cli")
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


@pytest.fixture
async def up(amqp_url: str, tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, str]]]:
    """A ``boochat up`` on a fresh data folder and namespace; dropped and removed afterwards."""
    namespace = f"one{uuid.uuid4().hex[:8]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOCHAT_")}
    ports = free_ports(2)
    env |= {
        "BOOCHAT_NAMESPACE": namespace,
        "BOOCHAT_AMQP_URL": amqp_url,
        "BOOCHAT_DATA_DIR": str(tmp_path / "data"),
        "BOOCHAT_GATEWAY_PORT": str(ports),
        "BOOCHAT_METRICS_PORT": str(ports + 1),
        "BOOCHAT_DEV_LOGIN": "true",
    }
    with (tmp_path / "up.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *BOOCHAT, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=log, start_new_session=True
        )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
        assert line.decode() == f"Boochat is ready: ws://127.0.0.1:{ports}/ws\n", (tmp_path / "up.log").read_text()
        yield process, env
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        drop = await asyncio.create_subprocess_exec(
            *BOOCHAT, "drop", namespace, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        await drop.wait()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


async def test_one_process_serves_a_chat_and_a_worker_joins_it(
    up: tuple[asyncio.subprocess.Process, dict[str, str]],
) -> None:
    """One Python process besides the stand-in; one metrics port; a chat; ``boochat worker
    messaging`` beside it is a second consumer of messaging's commands, and messages still flow;
    SIGTERM ends it with status 0."""
    process, env = up
    children = psutil.Process(process.pid).children(recursive=True)
    assert [" ".join(child.cmdline()) for child in children if "nx-27017" not in " ".join(child.cmdline())] == []
    assert len(children) == 1  # the stand-in
    metrics = f"http://127.0.0.1:{env['BOOCHAT_METRICS_PORT']}"
    assert await http_status(f"{metrics}/readyz") == 200
    ws_url = f"ws://127.0.0.1:{env['BOOCHAT_GATEWAY_PORT']}/ws"
    async with (
        await Client.connect(ws_url, dev_user=new_user("Ann")) as ann,
        await Client.connect(ws_url, dev_user=new_user("Bob")) as bob,
    ):
        room = await make_room(ann, bob)
        await ann.ok("send_message", {"room_id": room["id"], "content": "one process"})
        await bob.expect_event("room.item_added", lambda d: d["item"]["content"] == "one process")

        beside = {
            **env,
            "BOOCHAT_MONGO_URL": DataDir.at(Path(env["BOOCHAT_DATA_DIR"])).mongo_url(),
            "BOOCHAT_METRICS_PORT": "0",
        }
        worker = await asyncio.create_subprocess_exec(
            *BOOCHAT, "worker", "messaging", env=beside, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            queue = f"{env['BOOCHAT_NAMESPACE']}.messaging.commands"
            await asyncio.wait_for(wait_for_consumers(env["BOOCHAT_AMQP_URL"], {queue: 2}), READY_TIMEOUT)
            for number in range(10):  # over both consumers: each arrives, in order
                await bob.ok("send_message", {"room_id": room["id"], "content": f"beside {number}"})
            for number in range(10):
                await ann.expect_event("room.item_added", lambda d, n=number: d["item"]["content"] == f"beside {n}")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), STOP_TIMEOUT) == 0
        await ann.ok("send_message", {"room_id": room["id"], "content": "alone again"})
        await bob.expect_event("room.item_added", lambda d: d["item"]["content"] == "alone again")

        process.send_signal(signal.SIGTERM)
        assert await bob.wait_closed(timeout=STOP_TIMEOUT) == 1012  # told to reconnect elsewhere
    assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
