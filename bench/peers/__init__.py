"""The servers under test. Each module holds both sides of one peer: ``Peer`` (in the parent: start the
server, make users and rooms, name its processes, stop and clean up) and ``CLIENT`` (in the load
processes: one member's connection)."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import Process
from pathlib import Path
from typing import Any, Protocol

from bench.crowd import Crowd
from bench.load import MemberSpec, Profile
from boochat.supervisor import http_status

START_TIMEOUT = 120.0


class Peer(Protocol):
    name: str
    client: str  # the module whose CLIENT the load processes use

    async def start(self) -> None: ...

    async def prepare(self, run: str, profile: Profile) -> list[MemberSpec]:
        """Users and rooms for ``profile``, fresh ones: one spec per member."""
        ...

    def processes(self) -> dict[str, tuple[int | None, str]]:
        """Label -> (pid, group) of every process to measure (see bench.measure.Usage.group)."""
        ...

    async def stop(self) -> None: ...


async def wait_until_answers(url: str, process: Process, log: Path, any_status: bool = False) -> None:
    """Poll ``url`` until it answers 200 (or anything, with ``any_status``), bounded; fail early if
    ``process`` died."""
    async with asyncio.timeout(START_TIMEOUT):
        while (status := await http_status(url)) != 200 and not (any_status and status is not None):
            if process.returncode is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}; see {log}")
            await asyncio.sleep(0.2)  # polling interval of a bounded wait: plain HTTP has nothing to wait on


async def start_server(argv: list[str], log: Path, cwd: Path | None = None) -> Process:
    """Start a peer's server with its output in ``log``."""
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdout=output, stderr=output, stdin=asyncio.subprocess.DEVNULL
        )


async def stop_server(process: Process | None, timeout: float = 15.0) -> None:
    if process is None or process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


class CrowdPeer(Peer, Protocol):
    """A peer that crowds connect to (bench.crowd): Boochat's, the websockets floor."""

    async def crowd(self, run: str, crowd: Crowd) -> list[dict[str, Any]]:
        """How each of ``crowd``'s users connects (for ``client``'s ``CROWD``), fresh users."""
        ...
