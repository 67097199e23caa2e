"""The websockets library alone, the floor of the ``idle`` profile's memory per connection: an echo
server (``echo_server.py``, the project's own Python and ``websockets``) that crowds connect to
without signing in. It runs no chat profile."""

from __future__ import annotations

import sys
import tempfile
from asyncio.subprocess import Process
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.crowd import Crowd
from bench.load import MemberSpec, Profile
from bench.peers import start_server, stop_server, wait_until_answers
from boochat.mongo import free_port

SERVER = Path(__file__).with_name("echo_server.py")


class Peer:
    name = "websockets"
    client = "bench.peers.websockets_floor"

    def __init__(self, paced: bool = False) -> None:
        self._process: Process | None = None
        self._port = 0

    async def start(self) -> None:
        self._port = free_port()
        log = Path(tempfile.mkdtemp(prefix="bench-websockets-")) / "server.log"
        # -P: the script's folder stays off sys.path (as for the socketio server).
        self._process = await start_server([sys.executable, "-P", str(SERVER), str(self._port)], log)
        await wait_until_answers(f"http://127.0.0.1:{self._port}/", self._process, log, any_status=True)

    async def prepare(self, run: str, profile: Profile) -> list[MemberSpec]:
        raise NotImplementedError("the websockets floor runs the idle profile only")

    async def crowd(self, run: str, crowd: Crowd) -> list[dict[str, Any]]:
        return [{"url": f"ws://127.0.0.1:{self._port}/"}] * crowd.users

    def processes(self) -> dict[str, tuple[int | None, str]]:
        return {"websockets echo": (self._process.pid if self._process else None, "server")}

    async def stop(self) -> None:
        await stop_server(self._process)


class _Held:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def close(self) -> None:
        await self._ws.close()


class _Crowd:
    async def open(self, connect_to: dict[str, Any]) -> _Held:
        return _Held(await connect(connect_to["url"], max_size=None))


CROWD = _Crowd()
