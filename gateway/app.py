"""Composition root of the gateway: the WebSocket server, the hub, the broker.

``serve(settings)`` runs until cancelled or SIGTERM, then closes client connections with 1012
(service restart) and stops. The HTTP port comes up at once; ``/readyz`` says when the broker is.
Operators' metrics (and the same health checks) are on the metrics port, never on the clients' port.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as websockets_serve

from boochat import logs
from boochat.health import HealthServer
from boochat.settings import Settings
from contracts.errors import CloseCode
from gateway import auth
from gateway.files import Files
from gateway.http import Handshakes
from gateway.hub import Hub
from gateway.keepalive import KeepAlive
from gateway.session import Session

log = structlog.get_logger("gateway")


class Gateway:
    def __init__(self, settings: Settings) -> None:
        auth.require_secret(settings)
        self.settings = settings
        self.hub = Hub(settings)
        self._handshakes = Handshakes(settings, lambda: self.hub.broker.ready, self.hub.signing_in, self.hub.call)
        self.files = Files(settings, self.hub.call)  # uploads and downloads, on a port of its own
        self._server: Server | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reporting: asyncio.Task[None] | None = None
        self._keeping_alive: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]  # untyped: (host, port, ...) in every family
        return port

    async def start(self) -> None:
        self._server = await websockets_serve(
            self._handle,
            self.settings.gateway_host,
            self.settings.gateway_port,
            process_request=self._handshakes,
            process_response=self._handshakes.responded,
            max_size=self.settings.max_frame_bytes,
            # Frames are small JSON: deflate saves little and costs CPU per frame per connection,
            # and memory: about 64 KiB per connection with it, 14 KiB without. Clients need not support it.
            compression=None,
            ping_interval=None,  # one task pings every connection (gateway.keepalive), not one each
            server_header="boochat",
        )
        server = self._server
        await self.files.start()
        self._keeping_alive = asyncio.create_task(KeepAlive(lambda: server.connections).run())
        self._connecting = asyncio.create_task(self._connect())
        self._reporting = asyncio.create_task(self.hub.report_requests())
        log.info("gateway_listening", port=self.port, gateway_id=self.hub.gateway_id)
        if self.settings.dev_login:
            log.warning(
                "dev_login_on",
                message="anyone can sign in as any user with dev_user: "
                "set BOOCHAT_DEV_LOGIN=false before serving real users",
            )

    async def _connect(self) -> None:
        try:
            await self.hub.connect()
        except Exception:
            log.exception("broker_setup_failed")
            raise

    async def connected(self) -> None:
        """Wait until the broker is set up (tests; operators look at ``/readyz``)."""
        assert self._connecting is not None
        await asyncio.shield(self._connecting)

    async def stop(self, code: int = CloseCode.SERVICE_RESTART, reason: str = "server restarting") -> None:
        if self._server is not None:
            self._server.close(close_connections=True, code=code, reason=reason)
            await self._server.wait_closed()
        for task in (self._connecting, self._reporting, self._keeping_alive):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.files.stop()
        await self.hub.close()
        log.info("gateway_stopped")

    async def readiness(self) -> str | None:
        """For the metrics port's ``/readyz``: what the clients' port's ``/readyz`` answers."""
        return None if self.hub.broker.ready else "broker not connected"

    async def _handle(self, ws: ServerConnection) -> None:
        await Session(self.hub, ws, self._handshakes.identity(ws)).run()


async def serve(settings: Settings) -> None:
    """Run the gateway until cancelled or SIGTERM."""
    logs.configure("gateway", settings.log_level)
    gateway = Gateway(settings)
    health = HealthServer(
        settings.metrics_host, settings.metrics_port, gateway.hub.metrics.registry, gateway.readiness, "gateway"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread: no signals
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    if settings.metrics_port:
        await health.start()
    await gateway.start()
    try:
        await stop.wait()
        log.info("sigterm_received")
    finally:
        await gateway.stop()  # a second SIGTERM meanwhile changes nothing
        await health.stop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
