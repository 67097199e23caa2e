"""The real stack as subprocesses, built, supervised and waited for by boochat.supervisor exactly as
``boochat up`` does, for one namespace."""

from __future__ import annotations

import random
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from boochat.settings import Settings
from boochat.supervisor import Process, Supervisor, child_env, stack_processes, wait_stack_ready
from support.ops_http import get, sample

START_TIMEOUT = 90.0  # a cold start of every process against the slow stand-in


# The stacks' logs (read by failure messages while a test runs) go, with all of them, when the test
# session ends.
LOGS = tempfile.TemporaryDirectory(prefix="boochat-stacks-")


class Stack:
    def __init__(self, settings: Settings, scale: Mapping[str, int] | None = None, log_dir: Path | None = None) -> None:
        """``settings.gateway_port`` is the first gateway's port; more gateways take the next ones.
        Metrics ports (unless ``metrics_port`` is 0) are free ones found here, one per process."""
        if settings.metrics_port:
            settings = settings.model_copy(update={"metrics_port": _metrics_ports(settings, scale)})
        self.settings = settings
        self.processes = stack_processes(settings, scale)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"{settings.namespace}-", dir=LOGS.name))
        self.supervisor = Supervisor(self.processes, env=child_env(settings), log_dir=self.log_dir)

    @property
    def gateways(self) -> list[Process]:
        return [process for process in self.processes if process.ready_url]

    @property
    def ws_urls(self) -> list[str]:
        return [process.ws_url for process in self.gateways if process.ws_url]

    @property
    def ws_url(self) -> str:
        """The first gateway's WebSocket URL (``ws://127.0.0.1:PORT/ws``)."""
        return self.ws_urls[0]

    @property
    def http_url(self) -> str:
        """The first gateway's plain HTTP root (``http://127.0.0.1:PORT``), for /healthz and /readyz."""
        return f"http://{urlsplit(self.ws_url).netloc}"

    async def start(self, timeout: float = START_TIMEOUT) -> Stack:
        await self.supervisor.start()
        try:
            await wait_stack_ready(self.supervisor, self.settings, timeout)
        except BaseException as error:
            await self.stop()
            if isinstance(error, TimeoutError):
                raise TimeoutError(f"stack {self.settings.namespace} not ready in {timeout} s\n{self.logs()}") from None
            raise
        return self

    async def stop(self) -> None:
        await self.supervisor.stop()

    def logs(self, lines: int = 30) -> str:
        """The last ``lines`` lines of every child's output, for failure messages."""
        parts = []
        for process in self.processes:
            path = self.log_dir / f"{process.name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {process.name} ({path})\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    async def handled_by(self, worker: str) -> dict[str, int]:
        """Commands and queries each replica of ``worker`` has answered so far, from its metrics."""
        commands = f"{self.settings.names.commands}.{worker}"  # FastStream's label: exchange.routing_key
        counts = {}
        for process in self.processes:
            if process.service == worker and process.metrics_url:
                body = (await get(process.metrics_url))[1]
                handled = sample(body, "faststream_received_processed_messages_total", handler=commands)
                counts[process.name] = int(handled)
        return counts

    async def __aenter__(self) -> Stack:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


# Ports handed out for servers that bind them later (a child process): below the kernel's range of
# ephemeral ports, which outgoing connections (to RabbitMQ, MongoDB, a gateway) take from. A port
# that bind(0) found free is in that range, and a connection could take it before the child binds
# it; the child then ran without metrics, and a test reading them failed (seen once in CI).
LOWEST_PORT = 10_000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive loopback ports that are free right now, below the
    ephemeral range (random, so concurrent stacks rarely pick the same)."""
    highest = _ephemeral_start() - count
    for _ in range(1000):
        first = random.randrange(LOWEST_PORT, highest) if highest > LOWEST_PORT else _any_free()
        if all(_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def _any_free() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _metrics_ports(settings: Settings, scale: Mapping[str, int] | None) -> int:
    """The first of enough free consecutive ports for every process, clear of the gateways' ports
    (free too, but not bound yet)."""
    count = len(stack_processes(settings, scale))
    gateways = range(settings.gateway_port, settings.gateway_port + (scale or {}).get("gateway", 1))
    while True:
        first = free_ports(count)
        if not set(gateways) & set(range(first, first + count)):
            return first
