"""A RabbitMQ node of the tests' own, on its own ports, for faults the shared broker must never see.

Restarting or killing the broker every other test uses would break them, so faults get a node of
their own: Debian's ``rabbitmq-server`` with its own node name and ports, and every ``RABBITMQ_*``
path (data, logs, pid file, config, enabled plugins) in a temporary folder owned by the ``rabbitmq``
user (Debian's wrapper drops to it); a ``rabbitmq.conf`` listening on a free loopback port, no
plugins; ready once ``rabbitmqctl await_startup`` answers; ``stop`` at the end, and the folder
removed. The node name carries a random suffix, so two test sessions on one machine never
share a node.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

from support.stack import free_ports

START_TIMEOUT = 90.0
CTL_TIMEOUT = 60.0


class PrivateBroker:
    def __init__(self) -> None:
        self.node = f"chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_ports(2)  # the AMQP port, and the next one for Erlang distribution
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.folder = Path(tempfile.mkdtemp(prefix="boochat-chaos-"))
        self._server: asyncio.subprocess.Process | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 1),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
        }

    async def start(self, timeout: float = START_TIMEOUT) -> PrivateBroker:
        (self.folder / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        self.folder.chmod(0o755)
        shutil.chown(self.folder, "rabbitmq", "rabbitmq")
        for path in self.folder.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        output = os.open(self.folder / "server.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._server = await asyncio.create_subprocess_exec(
                "rabbitmq-server", env=self.env, stdout=output, stderr=output, start_new_session=True
            )
        finally:
            os.close(output)
        try:
            async with asyncio.timeout(timeout):
                # await_startup fails at once while the Erlang node is not registered yet: ask again.
                while not await self._answers("await_startup", "--timeout", "30"):
                    if self._server.returncode is not None:
                        raise RuntimeError(f"{self.node} did not start:\n{self.output()}")
                    await asyncio.sleep(0.5)  # polling interval until the node registers
        except BaseException:
            await self.stop()
            raise
        return self

    async def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """``rabbitmqctl -n NODE ARGS``; its output (fails the test on a non-zero exit)."""
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "-n", self.node, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        output, errors = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {errors.decode(errors='replace')}"
        return output.decode(errors="replace")

    async def queues(self) -> dict[str, tuple[int, int]]:
        """Every queue: name -> (messages, consumers)."""
        listing = await self.ctl("list_queues", "name", "messages", "consumers", "--no-table-headers")
        rows = [line.split() for line in listing.splitlines()]
        return {row[0]: (int(row[1]), int(row[2])) for row in rows if len(row) == 3}

    async def stop(self) -> None:
        if self._server is not None and self._server.returncode is None:
            if not await self._answers("stop"):
                self._kill_node()
            try:
                await asyncio.wait_for(self._server.wait(), CTL_TIMEOUT)
            except TimeoutError:
                self._kill_node()
                await self._server.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def output(self, lines: int = 40) -> str:
        path = self.folder / "server.out"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def _answers(self, *args: str) -> bool:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "-n", self.node, *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(process.wait(), CTL_TIMEOUT) == 0
        except TimeoutError:
            process.kill()
            return False

    def _kill_node(self) -> None:
        """SIGKILL the node's own process group (the wrapper, su and the Erlang VM we started)."""
        assert self._server is not None
        try:
            os.killpg(self._server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def __aenter__(self) -> PrivateBroker:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
