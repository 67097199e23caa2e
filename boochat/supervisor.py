"""Runs the stack's processes in the foreground and keeps them running.

``boochat up`` and the tests' ``Stack`` both build the same process list with ``stack_processes`` and
run it with a ``Supervisor``: one child process per gateway or worker replica, restarted with
exponential backoff when it dies, stopped with SIGTERM and then SIGKILL.

Each child's stdin is a pipe whose write end only the supervisor holds and never writes to: when the
supervisor dies, even by SIGKILL, the pipe closes and a supervised child (``--supervised``) stops
itself, so no orphaned worker keeps consuming from the namespace.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import structlog
from aio_pika.exceptions import AMQPError, ChannelClosed

from boochat.settings import Settings

WORKERS = ("rooms", "messaging", "users", "meetups", "polls", "notifications", "media")
GATEWAY = "gateway"

log = structlog.get_logger("supervisor")


@dataclass(frozen=True)
class Process:
    """One child: its name in logs, its command line, its own environment on top of the stack's."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # plain HTTP URL answering 200 once the child is ready
    ws_url: str | None = None  # what a ready gateway serves, for the ready line
    service: str = ""  # "gateway" or the worker's name; replicas share it
    metrics_url: str | None = None  # the child's /metrics (see boochat.health), None when off


@dataclass(frozen=True)
class Backoff:
    """Delay before restarting a child: doubles on each quick death, resets once it ran a while."""

    first: float = 0.5
    limit: float = 30.0
    healthy_after: float = 10.0

    def next(self, previous: float | None, ran_for: float) -> float:
        if previous is None or ran_for >= self.healthy_after:
            return self.first
        return min(previous * 2, self.limit)


class Supervisor:
    def __init__(
        self,
        processes: Iterable[Process],
        *,
        env: Mapping[str, str] | None = None,
        backoff: Backoff = Backoff(),
        stop_timeout: float = 20.0,
        log_dir: Path | None = None,
    ) -> None:
        """``env`` is the whole base environment of the children (default: this process's)."""
        self._children = {process.name: _Child(process) for process in processes}
        self._env = dict(os.environ if env is None else env)
        self._backoff = backoff
        self._stop_timeout = stop_timeout
        self._log_dir = log_dir
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def processes(self) -> list[Process]:
        return [child.process for child in self._children.values()]

    def pid(self, name: str) -> int | None:
        """The pid of ``name``'s current run, None while it is down."""
        running = self._children[name].running
        return running.pid if running is not None and running.returncode is None else None

    def starts(self, name: str) -> int:
        """How many times ``name`` has been started (1 + its restarts)."""
        return self._children[name].starts

    async def start(self) -> None:
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
        self._tasks = [
            asyncio.create_task(self._keep_running(child), name=f"supervise {name}")
            for name, child in self._children.items()
        ]

    async def wait_started(self, name: str, starts: int, timeout: float) -> int:
        """Wait until ``name`` has been started ``starts`` times and runs; return its pid."""
        child = self._children[name]
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: child.starts >= starts and self.pid(name) is not None)
        pid = self.pid(name)
        assert pid is not None
        return pid

    async def wait_ready(self, name: str, timeout: float | None = None) -> None:
        """Wait until ``name``'s ready URL answers 200 (polled; bounded by ``timeout``)."""
        url = self._children[name].process.ready_url
        assert url is not None, f"{name} has no ready_url"
        async with asyncio.timeout(timeout):
            while True:
                if await http_status(url) == 200:
                    return
                await asyncio.sleep(0.1)  # polling interval: plain HTTP has nothing to wait on

    async def stop(self) -> None:
        """SIGTERM every child, SIGKILL those still running after ``stop_timeout``, then return."""
        self._stopping.set()
        for child in self._children.values():
            child.signal(signal.SIGTERM)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._stop_timeout)
        for child in self._children.values():
            if child.signal(signal.SIGKILL):
                log.warning("child_killed", child=child.process.name, after_seconds=self._stop_timeout)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _keep_running(self, child: _Child) -> None:
        delay: float | None = None
        while not self._stopping.is_set():
            started = time.monotonic()
            returncode = await self._run_once(child)
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - started
            delay = self._backoff.next(delay, ran_for)
            log.warning(
                "child_exited",
                child=child.process.name,
                returncode=returncode,
                ran_seconds=round(ran_for, 2),
                restart_in_seconds=delay,
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                log.info("child_restarting", child=child.process.name, restarts=child.starts)

    async def _run_once(self, child: _Child) -> int | None:
        """Start ``child`` once and wait for it to end; its return code (None if it never started)."""
        process = child.process
        output = self._output(process)
        # The child's stdin: a pipe whose write end only we hold (see the module docstring).
        lifeline_read, lifeline_write = os.pipe()
        try:
            child.running = await asyncio.create_subprocess_exec(
                *process.argv,
                env={**self._env, **process.env},
                stdin=lifeline_read,
                stdout=output,
                stderr=output if self._log_dir is not None else None,
            )
        except OSError as error:
            os.close(lifeline_write)
            log.error("child_start_failed", child=process.name, error=str(error))
            return None
        finally:
            os.close(lifeline_read)
            if self._log_dir is not None:
                os.close(output)
        try:
            child.starts += 1
            log.info("child_started", child=process.name, pid=child.running.pid, starts=child.starts)
            if self._stopping.is_set():  # stop() came while we were spawning it
                child.signal(signal.SIGTERM)
            async with self._changed:
                self._changed.notify_all()
            returncode = await child.running.wait()
        finally:
            os.close(lifeline_write)
        async with self._changed:
            self._changed.notify_all()
        return returncode

    def _output(self, process: Process) -> int:
        if self._log_dir is None:
            # Children's stdout goes to our stderr: our stdout carries only the ready lines.
            return sys.stderr.fileno()
        return os.open(self._log_dir / f"{process.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


class _Child:
    def __init__(self, process: Process) -> None:
        self.process = process
        self.running: asyncio.subprocess.Process | None = None
        self.starts = 0

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if the child runs; whether it was sent."""
        if self.running is None or self.running.returncode is not None:
            return False
        try:
            self.running.send_signal(signum)
        except ProcessLookupError:  # it ended between the check and the signal
            return False
        return True


async def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a plain ``GET url``, None when nothing answers (no dependency beyond asyncio)."""
    parts = urlsplit(url)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
            try:
                writer.write(
                    f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
        return int(status_line.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return None


def exit_when_supervisor_dies() -> None:
    """In a child: SIGTERM ourselves (a graceful stop) once the supervisor's pipe on stdin closes."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its lock,
        # and the interpreter then aborts at exit ("could not acquire lock for <stdin>").
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-lifeline", daemon=True).start()


# The stack ------------------------------------------------------------------------------------


def available_workers() -> tuple[str, ...]:
    """Workers whose ``workers/<name>/app.py`` exists, so the stack runs while some are unwritten."""
    spec = importlib.util.find_spec("workers")
    roots = [Path(p) for p in (spec.submodule_search_locations or ()) if Path(p).is_dir()] if spec else []
    return tuple(name for name in WORKERS if any((root / name / "app.py").is_file() for root in roots))


def parse_scale(text: str | None) -> dict[str, int]:
    """``"messaging=2,gateway=1"`` -> ``{"messaging": 2, "gateway": 1}``."""
    scale: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, count = part.partition("=")
        name = name.strip()
        if name not in (GATEWAY, *WORKERS):
            raise ValueError(f"unknown service {name!r} in --scale (known: {', '.join((GATEWAY, *WORKERS))})")
        if not count.strip().isdigit():
            raise ValueError(f"--scale {name}= needs a whole number of replicas, got {count.strip()!r}")
        scale[name] = int(count)
    return scale


def stack_processes(settings: Settings, scale: Mapping[str, int] | None = None) -> list[Process]:
    """One ``Process`` per replica: gateways on consecutive ports from ``settings.gateway_port`` (their
    files listeners likewise from ``settings.files_port``),
    then every written worker (one replica each unless ``scale`` says otherwise). Each child serves
    its metrics on its own port, ``settings.metrics_port`` + its index in this list (0: none)."""
    scale = dict(scale or {})
    written = available_workers()
    for name, count in scale.items():
        if name in WORKERS and count > 0 and name not in written:
            raise ValueError(f"worker {name!r} is not written yet (no workers/{name}/app.py)")
    command = (sys.executable, "-m", "boochat.cli")
    processes = []
    for index in range(scale.get(GATEWAY, 1)):
        port = settings.gateway_port + index
        processes.append(
            Process(
                name=f"{GATEWAY}-{index + 1}",
                argv=(*command, GATEWAY, "--supervised"),
                env={"BOOCHAT_GATEWAY_PORT": str(port), "BOOCHAT_FILES_PORT": str(settings.files_port + index)},
                ready_url=f"http://{_probe_host(settings.gateway_host)}:{port}/readyz",
                ws_url=f"ws://{settings.gateway_host}:{port}/ws",
                service=GATEWAY,
            )
        )
    for worker in written:
        for index in range(scale.get(worker, 1)):
            argv = (*command, "worker", worker, "--supervised")
            processes.append(Process(name=f"{worker}-{index + 1}", argv=argv, service=worker))
    return [_with_metrics_port(settings, process, index) for index, process in enumerate(processes)]


def _with_metrics_port(settings: Settings, process: Process, index: int) -> Process:
    if not settings.metrics_port:
        return replace(process, env={**process.env, "BOOCHAT_METRICS_PORT": "0"})
    port = settings.metrics_port + index
    return replace(
        process,
        env={**process.env, "BOOCHAT_METRICS_PORT": str(port)},
        metrics_url=f"http://{_probe_host(settings.metrics_host)}:{port}/metrics",
    )


def child_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: our environment) without any BOOCHAT_ variable, plus ``settings`` as
    BOOCHAT_ variables: children see exactly these settings, whatever the parent's environment held."""
    base = os.environ if base is None else base
    env = {key: value for key, value in base.items() if not key.startswith("BOOCHAT_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"BOOCHAT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _probe_host(host: str) -> str:
    # A gateway bound to every interface is reachable on loopback.
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def wait_stack_ready(supervisor: Supervisor, settings: Settings, timeout: float | None = None) -> None:
    """Every gateway answers ``/readyz`` 200 and every worker replica consumes its command queue
    (a worker declares all its queues before it consumes, so its topology is then complete)."""
    replicas: dict[str, int] = {}
    for process in supervisor.processes:
        if process.service in WORKERS:
            queue = settings.names.command_queue(process.service)
            replicas[queue] = replicas.get(queue, 0) + 1
    async with asyncio.timeout(timeout):
        for process in supervisor.processes:
            if process.ready_url:
                await supervisor.wait_ready(process.name)
        await wait_for_consumers(settings.amqp_url, replicas)


async def wait_for_consumers(amqp_url: str, wanted: Mapping[str, int]) -> None:
    """Wait until each queue in ``wanted`` has at least that many consumers (bound it by a timeout)."""
    while True:
        try:
            connection = await aio_pika.connect(amqp_url)
            break
        except (OSError, AMQPError) as error:
            log.info("broker_not_reachable", error=str(error))
            await asyncio.sleep(1)  # polling interval until the broker answers
    try:
        channel = await connection.channel()
        for queue, count in wanted.items():
            while True:
                try:
                    declared = await channel.declare_queue(queue, passive=True)
                    if (declared.declaration_result.consumer_count or 0) >= count:
                        break
                except ChannelClosed:  # 404: not declared yet, and the channel is gone
                    channel = await connection.channel()
                await asyncio.sleep(0.1)  # polling interval: AMQP has no "consumer added" signal
    finally:
        await connection.close()


async def run_until_signalled(
    supervisor: Supervisor, when_started: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> None:
    """Run ``supervisor`` until SIGINT or SIGTERM, and ``when_started()`` alongside (cancelled at
    the end if still running)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with supervisor:
            alongside = asyncio.create_task(when_started()) if when_started else None
            await stop.wait()
            log.info("stopping")
            if alongside is not None:
                alongside.cancel()
                await asyncio.gather(alongside, return_exceptions=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("stopped")
