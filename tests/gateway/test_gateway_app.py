"""gateway.app: refusing to start without a secret, and stopping with 1012."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from gwclient import WAIT, closed, request, sign_in
from websockets.asyncio.client import connect

from boochat.settings import Settings
from gateway.app import Gateway, serve

pytestmark = pytest.mark.integration


async def test_serve_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(SystemExit, match="BOOCHAT_JWT_SECRET"):
        await serve(Settings(jwt_secret=None))


async def test_stopping_closes_connections_with_1012(settings: Settings, amqp, workers) -> None:
    gateway = Gateway(settings)
    await gateway.start()
    await gateway.connected()
    ws = await sign_in(f"ws://127.0.0.1:{gateway.port}/ws", "ann")
    await gateway.stop()
    assert (await closed(ws))[0] == 1012
    assert (await workers["users"].next("connection_closed")).user_id == "ann"


async def test_sigterm_stops_serve_with_1012(settings: Settings, amqp, workers) -> None:
    """``serve`` in its own process, as the CLI runs it."""
    env = {
        **os.environ,
        "BOOCHAT_NAMESPACE": settings.namespace,
        "BOOCHAT_JWT_SECRET": "x" * 32,
        "BOOCHAT_DEV_LOGIN": "true",
        "BOOCHAT_GATEWAY_PORT": str(settings.gateway_port),
    }
    code = (
        "import asyncio; from boochat.settings import Settings; from gateway.app import serve; "
        "asyncio.run(serve(Settings()))"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(WAIT):
            while b"broker_connected" not in await process.stderr.readline():
                pass
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws"
        async with connect(url) as ws:
            assert (await request(ws, "authenticate", {"dev_user": {"id": "u", "name": "U"}}))["type"] == "ok"
            process.send_signal(signal.SIGTERM)
            assert (await closed(ws))[0] == 1012
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
