"""Plain HTTP on the gateway's port, and the checks made before a WebSocket upgrade.

``/healthz`` while the process runs, ``/readyz`` while the broker is connected, ``/ws`` for clients,
the web client's files at ``/`` and ``/config.json`` (``gateway.static``), calendar files under
``/calendar/`` (``gateway.calendar``, answered by the meetups worker); anything else is 404.
On ``/ws``: handshakes per client address (429), connections still signing in (503), the Origin
(403) and an ``Authorization: Bearer`` header (401).
"""

from __future__ import annotations

import http
import time
import weakref
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from boochat.settings import Settings
from gateway import auth
from gateway.auth import AuthError, Identity
from gateway.calendar import Calendars, Call
from gateway.limits import AddressLimiter, SignIns
from gateway.static import Static

ENDPOINT = "/ws"


class Handshakes:
    """``process_request`` for ``serve``; remembers who a Bearer header authenticated."""

    def __init__(
        self,
        settings: Settings,
        ready: Callable[[], bool],
        signing_in: SignIns[ServerConnection] | None = None,
        call: Call | None = None,
    ) -> None:
        self._settings = settings
        self._ready = ready
        self._static = Static(settings)
        # Calendar files are asked of the meetups worker (``call``: the hub's requests); none without.
        self._calendars = Calendars(call) if call is not None else None
        self._addresses = AddressLimiter(settings.handshakes_per_minute_per_address)
        # Upgraded connections not signed in yet: the session takes itself out once it is.
        self._signing_in: SignIns[ServerConnection] = SignIns() if signing_in is None else signing_in
        self._identities: weakref.WeakKeyDictionary[ServerConnection, Identity] = weakref.WeakKeyDictionary()

    def identity(self, connection: ServerConnection) -> Identity | None:
        return self._identities.pop(connection, None)

    def __call__(self, connection: ServerConnection, request: Request) -> Response | Awaitable[Response] | None:
        path = request.path.partition("?")[0]
        if path == "/healthz":
            return _plain(connection, request, http.HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self._ready():
                return _plain(connection, request, http.HTTPStatus.OK, "ready\n")
            return _plain(connection, request, http.HTTPStatus.SERVICE_UNAVAILABLE, "broker not connected\n")
        if path in self._static:
            return self._static.respond(request, path)
        if self._calendars is not None and path in self._calendars:
            return self._calendars.respond(request, path)  # a coroutine, which the server awaits
        if path != ENDPOINT:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if not self._addresses.allow(_address(connection), time.monotonic()):
            return connection.respond(http.HTTPStatus.TOO_MANY_REQUESTS, "too many connections from your address\n")
        if len(self._signing_in) >= self._settings.max_pending_connections:
            response = connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "too many connections signing in\n")
            response.headers["Retry-After"] = str(self._signing_in.retry_after(time.monotonic()))
            return response
        origins = self._settings.origins
        sent = request.headers.get_all("Origin")
        if origins and (len(sent) > 1 or (sent and sent[0] not in origins)):
            return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
        headers = request.headers.get_all("Authorization")
        if headers:
            try:
                identity = auth.verify_token(self._settings, auth.bearer(headers))
            except AuthError as exc:
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, f"{exc}\n")
                response.headers["WWW-Authenticate"] = 'Bearer realm="boochat"'
                return response
            self._identities[connection] = identity
        self._signing_in.add(connection)
        return None

    def responded(self, connection: ServerConnection, request: Request, response: Response) -> None:
        """``process_response``: a handshake that did not upgrade is not signing in."""
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            self._signing_in.discard(connection)


def _address(connection: ServerConnection) -> str:
    """The client's IP address as the socket has it (a proxy's own, behind one)."""
    peer = connection.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _plain(connection: ServerConnection, request: Request, status: http.HTTPStatus, text: str) -> Response:
    if request.method not in ("GET", "HEAD"):
        response = connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n")
        response.headers["Allow"] = "GET"
        return response
    return connection.respond(status, text)
