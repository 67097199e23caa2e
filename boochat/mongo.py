"""The embedded MongoDB stand-in (``nx-27017``) for local runs and tests.

Each stand-in gets a free loopback port, in-memory databases and its own temporary folder for its
log and pid files: the tool's defaults are shared paths under /tmp, so two runs would clobber each
other.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pymongo
from pymongo.errors import PyMongoError

STARTUP_TIMEOUT = 30.0
# The stand-in is the ``local`` extra (make run and the tests install it; the production image does not).
MISSING = (
    "the MongoDB stand-in (nx-27017) is not installed: set BOOCHAT_MONGO_URL to a MongoDB server, "
    "or install Boochat with its local extra (pip install 'boochat[local]'; make run does)"
)


def free_port() -> int:
    """A port nobody listens on right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def executable() -> str:
    # The pip package installs its script next to the interpreter, which need not be on PATH.
    return str(Path(sys.executable).with_name("nx-27017"))


class StandIn:
    """A running stand-in; ``url`` is its connection string. Stop it with ``await stop()``."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, folder: Path) -> None:
        self.process = process
        self.port = port
        self.folder = folder
        self.url = f"mongodb://127.0.0.1:{port}"

    @property
    def log_file(self) -> Path:
        return self.folder / "nx.log"

    async def stop(self, timeout: float = 10.0) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    async def __aenter__(self) -> StandIn:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class _Starting:
    """What ``start()`` returns: awaitable (``await start()``) and an async context manager."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._stand_in: StandIn | None = None

    def __await__(self):  # type: ignore[no-untyped-def]
        return _start(self._timeout).__await__()

    async def __aenter__(self) -> StandIn:
        self._stand_in = await _start(self._timeout)
        return self._stand_in

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stand_in is not None
        await self._stand_in.stop()


def start(timeout: float = STARTUP_TIMEOUT) -> _Starting:
    """Start a stand-in: ``mongo = await start()`` or ``async with start() as mongo:``."""
    return _Starting(timeout)


async def _start(timeout: float) -> StandIn:
    folder = Path(tempfile.mkdtemp(prefix="boochat-mongo-"))
    port = free_port()
    log = folder / "nx.log"
    try:
        with (folder / "stderr.log").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                executable(),
                *("--data-dir", "memory", "--host", "127.0.0.1", "-p", str(port)),
                *("--log-file", str(log), "--pid-file", str(folder / "nx.pid")),
                cwd=folder,  # anything it writes by default lands in our folder, not the caller's
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
    except FileNotFoundError:
        shutil.rmtree(folder, ignore_errors=True)
        raise SystemExit(MISSING) from None
    stand_in = StandIn(process, port, folder)
    try:
        await _wait_until_it_answers(stand_in, timeout)
    except BaseException:
        await stand_in.stop()
        raise
    return stand_in


async def _wait_until_it_answers(stand_in: StandIn, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    client: pymongo.AsyncMongoClient = pymongo.AsyncMongoClient(
        stand_in.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        while True:
            if stand_in.process.returncode is not None:
                raise RuntimeError(
                    f"nx-27017 exited with {stand_in.process.returncode} before answering; "
                    f"see {stand_in.folder / 'stderr.log'}: {_tail(stand_in.folder / 'stderr.log')}"
                )
            try:
                await client.admin.command("ping")
                return
            except PyMongoError as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nx-27017 on {stand_in.url} did not answer ping within {timeout:.0f} s: {error}"
                    ) from error
            await asyncio.sleep(0.1)  # polling interval of a bounded wait, not synchronisation
    finally:
        await client.close()


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""
