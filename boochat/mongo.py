"""The embedded MongoDB stand-in (``nx-27017``) for local runs and tests.

Each stand-in gets a free loopback port and a folder of its own for its log and pid files (the
tool's defaults are shared paths under /tmp, so two runs would clobber each other): a temporary one
removed when it stops, or the one given. Its databases are in memory (tests), or on disk in the
folder given (``boochat up``: one SQLite file per database under the data folder).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

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
        port: int = sock.getsockname()[1]
        return port


def executable() -> str:
    # The pip package installs its script next to the interpreter, which need not be on PATH.
    return str(Path(sys.executable).with_name("nx-27017"))


class StandIn:
    """A running stand-in; ``url`` is its connection string. Stop it with ``await stop()``."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, folder: Path, temporary: bool = True) -> None:
        self.process = process
        self.port = port
        self.folder = folder
        self.temporary = temporary  # the folder is ours to remove when it stops
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
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)

    async def __aenter__(self) -> StandIn:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class _Starting:
    """What ``start()`` returns: awaitable (``await start()``) and an async context manager."""

    def __init__(self, start: Callable[[], Coroutine[Any, Any, StandIn]]) -> None:
        self._start = start
        self._stand_in: StandIn | None = None

    def __await__(self) -> Generator[Any, None, StandIn]:
        return self._start().__await__()

    async def __aenter__(self) -> StandIn:
        self._stand_in = await self._start()
        return self._stand_in

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stand_in is not None
        await self._stand_in.stop()


def start(
    timeout: float = STARTUP_TIMEOUT,
    *,
    databases: Path | None = None,
    folder: Path | None = None,
    hold: Sequence[int] = (),
) -> _Starting:
    """Start a stand-in: ``mongo = await start()`` or ``async with start() as mongo:``.

    ``databases``: the folder of its databases on disk (default: in memory, gone when it stops).
    ``folder``: where its log, pid file and stderr go (default: a temporary folder, removed when it
    stops). ``hold``: file descriptors it inherits, e.g. the data folder's lock, so the lock is held
    until the stand-in has stopped writing. It is sent SIGTERM if this process dies first (Linux:
    when the thread that started it ends, so start it from one that outlives it, as the event loop's).
    """
    return _Starting(functools.partial(_start, timeout, databases, folder, tuple(hold)))


async def _start(timeout: float, databases: Path | None, folder: Path | None, hold: tuple[int, ...]) -> StandIn:
    temporary = folder is None
    folder = _make_folders(folder, databases)
    port = free_port()
    log = folder / "nx.log"
    try:
        with (folder / "stderr.log").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                executable(),
                *("--data-dir", "memory" if databases is None else str(databases)),
                *("--host", "127.0.0.1", "-p", str(port)),
                *("--log-file", str(log), "--pid-file", str(folder / "nx.pid")),
                cwd=folder,  # anything it writes by default lands in our folder, not the caller's
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=hold,
                preexec_fn=_terminated_when_parent_dies(),
            )
    except FileNotFoundError:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise SystemExit(MISSING) from None
    stand_in = StandIn(process, port, folder, temporary)
    try:
        await _wait_until_it_answers(stand_in, timeout)
    except BaseException:
        await stand_in.stop()
        raise
    return stand_in


def _make_folders(folder: Path | None, databases: Path | None) -> Path:
    """The stand-in's own folder (a temporary one unless given), and its databases' folder."""
    if databases is not None:
        databases.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder is None:
        return Path(tempfile.mkdtemp(prefix="boochat-mongo-"))
    folder.mkdir(parents=True, exist_ok=True)
    # A stand-in that was killed left its pid file: it would refuse to start while that pid lives
    # (pids are reused).
    (folder / "nx.pid").unlink(missing_ok=True)
    return folder


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _terminated_when_parent_dies() -> Callable[[], None] | None:
    """For the child, between fork and exec: ask Linux for SIGTERM when we (its parent) die, so no
    orphaned stand-in keeps a data folder's databases (and lock) once ``boochat up`` was killed."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing but the call after fork
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # we died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


async def _wait_until_it_answers(stand_in: StandIn, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    client: pymongo.AsyncMongoClient[dict[str, Any]] = pymongo.AsyncMongoClient(
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
