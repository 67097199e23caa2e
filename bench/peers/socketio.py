"""python-socketio, the floor: one process, rooms in memory, no broker, no database (socketio_server.py).

The load side speaks Socket.IO over the ``websockets`` client that drives the other peers too, so
every peer's clients cost the same: Engine.IO v4 packets ``0`` open, ``2``/``3`` ping/pong, ``4``
message; inside them Socket.IO ``0`` connect, ``2`` event, ``3`` ack (``42<id>[...]`` asks for an ack).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from asyncio.subprocess import Process
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.load import MemberSpec, Profile
from bench.peers import start_server, stop_server, venvs, wait_until_answers
from boochat.mongo import free_port

REQUIREMENTS = ["python-socketio==5.18.1", "uvicorn==0.54.0", "websockets==17.4"]
SERVER = Path(__file__).with_name("socketio_server.py")


class Peer:
    name = "socketio"
    client = "bench.peers.socketio"

    def __init__(self) -> None:
        self._process: Process | None = None
        self._port = 0

    async def start(self) -> None:
        python = await venvs.ensure(self.name, REQUIREMENTS)
        self._port = free_port()
        log = Path(tempfile.mkdtemp(prefix="bench-socketio-")) / "server.log"
        # -P: the script's folder stays off sys.path, where this module would shadow the socketio package.
        self._process = await start_server([str(python), "-P", str(SERVER), str(self._port)], log)
        await wait_until_answers(f"http://127.0.0.1:{self._port}/", self._process, log, any_status=True)

    async def prepare(self, run: str, profile: Profile) -> list[MemberSpec]:
        url = f"ws://127.0.0.1:{self._port}/socket.io/?EIO=4&transport=websocket"
        return [
            MemberSpec(
                index,
                index // profile.members,
                {"url": url, "room": f"{run}-{profile.slug}-{index // profile.members}"},
            )
            for index in range(profile.rooms * profile.members)
        ]

    def processes(self) -> dict[str, tuple[int | None, str]]:
        return {"socketio": (self._process.pid if self._process else None, "server")}

    async def stop(self) -> None:
        await stop_server(self._process)


class _Member:
    def __init__(self, ws: ClientConnection, room: str, deliver: Callable[[str], None]) -> None:
        self._ws = ws
        self._room = room
        self._deliver = deliver
        self._acks: dict[int, asyncio.Future[str]] = {}
        self._ids = itertools.count()
        self._reader = asyncio.create_task(self._read())

    async def emit(self, event: str, data: Any) -> str:
        ack = next(self._ids)
        self._acks[ack] = asyncio.get_running_loop().create_future()
        await self._ws.send(f"42{ack}" + json.dumps([event, data]))
        return await self._acks[ack]

    async def send(self, content: str) -> str:
        return await self.emit("send", {"room": self._room, "content": content})

    async def close(self) -> None:
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for packet in self._ws:
                assert isinstance(packet, str)
                if packet == "2":  # the server's ping
                    await self._ws.send("3")
                elif packet.startswith("42"):
                    _, message = json.loads(packet[2:])
                    self._deliver(message["content"])
                elif packet.startswith("43"):
                    ack, _, rest = packet[2:].partition("[")
                    future = self._acks.pop(int(ack), None)
                    if future is not None and not future.done():
                        future.set_result("ok" if json.loads("[" + rest) == ["ok"] else "error")
        finally:
            for future in self._acks.values():
                if not future.done():
                    future.set_result("closed")


class _Client:
    async def open(self, connect_to: dict[str, Any], deliver: Callable[[str], None]) -> _Member:
        ws = await connect(connect_to["url"], max_size=None)
        opened = await ws.recv()
        assert isinstance(opened, str) and opened.startswith("0"), opened
        await ws.send("40")
        connected = await ws.recv()
        assert isinstance(connected, str) and connected.startswith("40"), connected
        member = _Member(ws, connect_to["room"], deliver)
        assert await member.emit("join", connect_to["room"]) == "ok"
        return member


CLIENT = _Client()
