"""A WebSocket test client speaking PROTOCOL.md.

A background reader sorts incoming frames: replies go to the request waiting for them (by ``re``),
events to a list that ``expect_event`` searches, so an event a test is not waiting for yet is kept
for a later ``expect_event``. Every wait has a timeout. To assert that something did *not* arrive,
call ``sync()`` (a ``ping`` round trip: whatever the server sent before its reply is then here) and
look at ``pending()``; never sleep.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

WAIT = 5.0

Predicate = Callable[[dict[str, Any]], bool]


class RequestError(AssertionError):
    """``ok()`` got an ``error`` frame."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('error')} (reply {frame.get('re')!r})")
        self.frame = frame
        self.code = frame.get("error", {}).get("code")


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.user: dict[str, Any] | None = None
        self.token: str | None = None
        self.stray: list[dict[str, Any]] = []  # replies nobody waits for (``re`` null or unknown)
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name="test client reader")

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        *,
        dev_user: Mapping[str, Any] | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        origin: str | None = None,
        timeout: float = WAIT,
    ) -> Client:
        """Open a connection; with ``dev_user`` or ``token``, authenticate (and fail if refused)."""
        ws = await connect(
            ws_url,
            additional_headers=dict(headers or {}),
            origin=origin,  # type: ignore[arg-type]  # Origin is a NewType of str
            open_timeout=timeout,
        )
        client = cls(ws)
        credentials = {"dev_user": dict(dev_user)} if dev_user is not None else {"token": token} if token else None
        if credentials is not None:
            data = await client.ok("authenticate", credentials, timeout=timeout)
            client.user, client.token = data["user"], data["token"]
        return client

    # Requests ------------------------------------------------------------------------------------

    async def request(
        self, type: str, data: Mapping[str, Any] | None = None, id: str | None = None, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Send a request and return its reply frame (``ok`` or ``error``)."""
        request_id = id or str(uuid.uuid4())
        return await self.send_raw({"type": type, "id": request_id, "data": dict(data or {})}, timeout=timeout)

    async def ok(
        self, type: str, data: Mapping[str, Any] | None = None, id: str | None = None, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Send a request that must succeed; its reply's ``data``."""
        frame = await self.request(type, data, id=id, timeout=timeout)
        if frame.get("type") != "ok":
            raise RequestError(frame)
        return frame["data"]

    async def error(
        self, type: str, data: Mapping[str, Any] | None = None, id: str | None = None, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Send a request that must fail; its reply's ``error`` object (``code``, ``message``...)."""
        frame = await self.request(type, data, id=id, timeout=timeout)
        assert frame.get("type") == "error", f"expected an error, got {frame}"
        return frame["error"]

    async def send_raw(
        self, frame: Mapping[str, Any] | str, timeout: float = WAIT, re: str | None = None
    ) -> dict[str, Any]:
        """Send any frame (a dict with an ``id``, or raw text whose reply carries ``re``) and wait for
        the reply to its ``id``."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        request_id = re if isinstance(frame, str) else frame.get("id")
        if not isinstance(request_id, str):
            raise ValueError("send_raw waits by id: send other frames with send_text() and read stray")
        future = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        try:
            await self.ws.send(text)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"no reply to {text[:200]} within {timeout} s") from None
        finally:
            self._replies.pop(request_id, None)

    async def send_text(self, text: str | bytes) -> None:
        """Send anything, waiting for nothing (malformed-frame tests)."""
        await self.ws.send(text)

    async def sync(self, timeout: float = WAIT) -> None:
        """Round trip a ``ping``: everything the server sent before its reply has been read."""
        await self.ok("ping", {}, timeout=timeout)

    # Events --------------------------------------------------------------------------------------

    async def expect_event(
        self, name: str, predicate: Predicate | None = None, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Wait for the first event ``name`` whose data matches ``predicate``; take and return its data.

        Events that do not match stay for later calls.
        """
        try:
            async with asyncio.timeout(timeout), self._arrived:
                while True:
                    found = self._take(name, predicate)
                    if found is not None:
                        return found
                    if self._reader.done():
                        raise AssertionError(f"connection closed ({self.close_code}) before event {name}")
                    await self._arrived.wait()
        except TimeoutError:
            seen = [event["event"] for event in self._events]
            raise TimeoutError(f"no event {name} matching within {timeout} s; pending: {seen}") from None

    def pending(self, name: str | None = None, predicate: Predicate | None = None) -> list[dict[str, Any]]:
        """Data of events received and not yet taken (all, or those named ``name``); takes nothing."""
        return [
            event["data"]
            for event in self._events
            if (name is None or event["event"] == name) and (predicate is None or predicate(event["data"]))
        ]

    def _take(self, name: str, predicate: Predicate | None) -> dict[str, Any] | None:
        for index, event in enumerate(self._events):
            if event["event"] == name and (predicate is None or predicate(event["data"])):
                del self._events[index]
                return event["data"]
        return None

    # Connection ----------------------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def wait_closed(self, timeout: float = WAIT) -> int | None:
        """Wait until the server closes the connection; its close code."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                try:
                    frame = json.loads(message)
                except ValueError:  # the protocol promises JSON; keep the evidence for the test
                    self.stray.append({"raw": message})
                    continue
                if frame.get("type") == "event":
                    async with self._arrived:
                        self._events.append(frame)
                        self._arrived.notify_all()
                    continue
                future = self._replies.get(frame.get("re")) if isinstance(frame.get("re"), str) else None
                if future is not None and not future.done():
                    future.set_result(frame)
                else:
                    self.stray.append(frame)
        except ConnectionClosed:
            pass
        finally:
            closed = ConnectionError(f"connection closed ({self.ws.close_code})")
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(closed)
            async with self._arrived:
                self._arrived.notify_all()
