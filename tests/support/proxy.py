"""A TCP proxy on loopback for network faults (PITFALLS.md: no toxiproxy here): ``cut()`` drops every
connection through it and refuses new ones until ``restore()``."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.accepted = 0  # connections piped so far (a client that connected again counts twice)
        self._changed = asyncio.Condition()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return self

    def cut(self) -> None:
        """Drop every connection now (no goodbye to either side); refuse new ones until ``restore``."""
        self._cut = True
        for writer in list(self._open):
            writer.transport.abort()

    def restore(self) -> None:
        self._cut = False

    async def wait_accepted(self, count: int, timeout: float = 15.0) -> None:
        """Wait until ``count`` connections in all have been piped."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.accepted >= count)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        async with self._changed:
            self.accepted += 1
            self._changed.notify_all()
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Proxy:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side goes; then abort the other, as a cut network does."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()
