"""One client connection: authenticate, register, then validate and forward each frame.

Everything sent to the client goes through a bounded outbox drained by one writer task, so a slow
client only ever blocks itself; when its outbox is full it is closed with 1013 (try again later).
Requests run as tasks of their own: a slow one never holds up the next, and each gets one reply.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from boochat.rpc import failure
from contracts.envelope import Command
from contracts.errors import CloseCode
from contracts.internal import SignedIn
from contracts.requests import REQUESTS, Authenticate, Authenticated, Typing
from gateway import auth, frames
from gateway.auth import Attempt, AuthError, AuthUnavailableError, Identity
from gateway.frames import Frame, InvalidDataError, MalformedFrameError
from gateway.hub import Hub, Seen
from gateway.limits import Outbox, OutboxFullError, RecentIds
from gateway.metrics import INVALID

log = structlog.get_logger("gateway.session")

MALFORMED_LIMIT = 10
OUTBOX_SIZE = 1000
TRY_AGAIN_LATER = 1013  # not in PROTOCOL.md: a client that cannot keep up, or users or rooms unreachable
CLOSE_FLUSH_SECONDS = 5.0
WRITER_IDLE_SECONDS = 30.0
# The users worker's refusals of a sign-in (a session ended; an invite unknown, ended or used up):
# the client hears the code, and the connection is closed with 4401.
REFUSED = frozenset({"unauthenticated", "not_found", "forbidden", "conflict"})


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class Session:
    def __init__(self, hub: Hub, ws: ServerConnection, identity: Identity | None = None) -> None:
        self.id = uuid.uuid4().hex
        self._hub = hub
        self._ws = ws
        self._identity = identity  # from an Authorization header, until registered
        self._user_id: str | None = None
        # (when queued, kind, text, the room item it brings): the wait is measured when the writer takes it
        self._outbox: Outbox[tuple[float, str, str, Seen | None] | Close] = Outbox(OUTBOX_SIZE)
        self._delivered: dict[str, int] = {}  # room id -> seq of the latest item sent to the client
        self._metrics = hub.metrics
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._closing: Close | None = None
        self._recent = RecentIds()
        self._malformed = 0
        self._refused = 0
        self._requests: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.TimerHandle | None = None
        # The handshake is over: keep what is used of it, and empty the library's copies of its
        # request's and response's headers (about 3 KiB per connection, held for its lifetime).
        self._device = ws.request.headers.get("User-Agent", "") if ws.request else ""
        for message in (ws.request, ws.response):
            if message is not None:
                message.headers.clear()

    async def run(self) -> None:
        self._metrics.connections.inc()
        try:
            await self._serve()
        except ConnectionClosed:
            pass
        finally:
            self._metrics.connections.dec()
            self._hub.signing_in.discard(self._ws)
            if self._expiry is not None:
                self._expiry.cancel()
            for task in self._requests:
                task.cancel()
            await self._finish()
            if self._user_id is not None:
                await self._hub.unregister(self, self._user_id)
            log.info("connection_closed", connection_id=self.id, code=self._ws.close_code)

    # Outgoing -----------------------------------------------------------------------------

    @property
    def delivered(self) -> dict[str, int]:
        """Per room, the ``seq`` of the latest ``room.item_added`` sent to the client (for pushes)."""
        return self._delivered

    def deliver(self, delivery_id: str, text: str, seen: Seen | None = None) -> None:
        """Queue an event, unless this connection already got this delivery."""
        if self._recent.first_time(delivery_id):
            self._send(text, "event", seen)

    def end_session(self, session_id: str) -> None:
        """A device session was revoked: its connections close (after the event telling them)."""
        if self._identity is not None and self._identity.session_id == session_id:
            self.close(CloseCode.UNAUTHENTICATED, "session revoked")

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued has been sent."""
        if self._closing is not None:
            return
        self._closing = Close(code, reason)
        try:
            self._outbox.put(self._closing)
        except OutboxFullError:
            self._abandon(code, reason)
            return
        self._write_soon()

    def _send(self, text: str, kind: str = "reply", seen: Seen | None = None) -> None:
        if self._closing is not None:
            return
        try:
            self._outbox.put((time.monotonic(), kind, text, seen))
        except OutboxFullError:
            self._metrics.slow_clients.inc()
            log.warning("client_too_slow", connection_id=self.id, user_id=self._user_id)
            self._closing = Close(TRY_AGAIN_LATER, "too slow to keep up")
            self._abandon(TRY_AGAIN_LATER, "too slow to keep up")
            return
        self._write_soon()

    def _write_soon(self) -> None:
        """Make sure a writer drains the outbox. It ends after ``WRITER_IDLE_SECONDS`` without
        anything to send: an idle connection holds no task of its own."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    def _abandon(self, code: int, reason: str) -> None:
        """Close now, dropping whatever is still queued."""
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self._ws.close(code, reason))

    async def _write(self) -> None:
        try:
            while (item := await self._outbox.get(WRITER_IDLE_SECONDS)) is not None:
                if isinstance(item, Close):
                    await self._ws.close(item.code, item.reason)
                    return
                queued_at, kind, text, seen = item
                waited = time.monotonic() - queued_at
                await self._ws.send(text)
                self._metrics.frame_sent(kind, waited)
                if seen is not None and seen.seq > self._delivered.get(seen.room_id, 0):
                    self._delivered[seen.room_id] = seen.seq
        except ConnectionClosed:
            pass

    async def _finish(self) -> None:
        if self._writer is not None:
            if self._closing is not None:
                # Let the writer flush the replies queued before the close, within reason.
                await asyncio.wait([self._writer], timeout=CLOSE_FLUSH_SECONDS)
            self._writer.cancel()
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)
        if self._closing is not None and self._ws.state is State.OPEN:
            await self._ws.close(self._closing.code, self._closing.reason)

    # Incoming -----------------------------------------------------------------------------

    async def _serve(self) -> None:
        if self._identity is not None:
            if not await self._open(auth.presented(self._hub.settings, self._identity), None):
                return
        elif not await self._authenticate():
            return
        async for message in self._ws:
            self._receive(message)
            if self._closing is not None:
                return

    async def _authenticate(self) -> bool:
        """The first frame must be a valid ``authenticate``; anything else closes with 4401."""
        try:
            async with asyncio.timeout(self._hub.settings.auth_timeout_seconds):
                message = await self._ws.recv()
            self._metrics.frames_received.inc()
            started = time.monotonic()
        except TimeoutError:
            self.close(CloseCode.UNAUTHENTICATED, "authentication timed out")
            return False
        if isinstance(message, bytes):
            self.close(CloseCode.UNSUPPORTED_DATA, "binary messages are not supported")
            return False
        try:
            frame = frames.parse(message)
            if frame.type != "authenticate":
                return self._refuse(frame.id, "authenticate first")
            data = frames.validate(frame)
            assert isinstance(data, Authenticate)
            attempt = await auth.check(self._hub.settings, data, self._hub.google.verify, self._device)
        except MalformedFrameError as exc:
            return self._refuse(exc.re, exc.message)
        except InvalidDataError as exc:
            return self._refuse(frame.id, "invalid authenticate data", exc.details)
        except AuthError as exc:
            return self._refuse(frame.id, str(exc))
        except AuthUnavailableError as exc:
            self._metrics.request("authenticate", "unavailable")
            self._send(frames.error(frame.id, "unavailable", str(exc)))
            self.close(TRY_AGAIN_LATER, "sign-in unavailable")
            return False
        if not await self._open(attempt, frame.id):
            return False
        identity = self._identity
        assert identity is not None  # _open keeps it
        answer = Authenticated(
            user=identity.user, token=identity.token, expires_at=identity.expires_at, session_id=identity.session_id
        )
        self._metrics.request("authenticate", "ok", time.monotonic() - started)
        self._send(frames.ok(frame.id, answer.model_dump(mode="json")))
        return True

    def _refuse(self, re: str | None, message: str, details: dict[str, str] | None = None) -> bool:
        self._metrics.request("authenticate", "unauthenticated")
        self._send(frames.error(re, "unauthenticated", message, details))
        self.close(CloseCode.UNAUTHENTICATED, "unauthenticated")
        return False

    async def _open(self, attempt: Attempt, re: str | None) -> bool:
        """Sign the user in with the users worker (it has the last word on sessions and invites),
        then register the connection and its rooms."""
        reply = await self._hub.sign_in(attempt.request())
        if reply.error is not None and reply.error.code in REFUSED:
            log.info("sign_in_refused", user_id=attempt.user.id, error=reply.error.code)
            self._metrics.request("authenticate", reply.error.code)
            if re is not None:
                self._send(frames.error(re, reply.error.code, reply.error.message))
            self.close(CloseCode.UNAUTHENTICATED, "unauthenticated")
            return False
        if reply.error is not None:
            log.warning("sign_in_failed", user_id=attempt.user.id, error=reply.error.code)
            if re is not None:
                self._send(frames.error(re, "unavailable", "sign-in is unavailable, try again later"))
            self.close(TRY_AGAIN_LATER, "sign-in unavailable")
            return False
        identity = auth.issue(self._hub.settings, attempt, SignedIn.model_validate(reply.ok or {}).user_id)
        self._identity = identity
        refused = await self._hub.register(self, identity.user.id)
        if refused is not None:
            if re is not None:
                self._send(frames.error(re, refused.code, refused.message))
            too_many = refused.code == "rate_limited"
            self.close(CloseCode.RATE_LIMITED if too_many else TRY_AGAIN_LATER, refused.message)
            return False
        self._user_id = identity.user.id
        self._hub.signing_in.discard(self._ws, time.monotonic())
        remaining = identity.expires_at.timestamp() - time.time()
        self._expiry = asyncio.get_running_loop().call_later(
            max(remaining, 0), self.close, CloseCode.UNAUTHENTICATED, "token expired"
        )
        log.info("connection_authenticated", connection_id=self.id, user_id=identity.user.id)
        return True

    def _receive(self, message: str | bytes) -> None:
        assert self._user_id is not None
        self._metrics.frames_received.inc()
        if self._closing is not None:
            return
        if isinstance(message, bytes):
            self.close(CloseCode.UNSUPPORTED_DATA, "binary messages are not supported")
            return
        try:
            frame = frames.parse(message)
        except MalformedFrameError as exc:
            self._send(frames.error(exc.re, "bad_request", exc.message))
            self._metrics.request(INVALID, "bad_request")
            self._malformed += 1
            if self._malformed >= MALFORMED_LIMIT:
                self.close(CloseCode.MALFORMED, "too many malformed frames")
            return
        if frame.type == "typing":  # never counts against the rate limit (PROTOCOL.md)
            self._typing(frame)
            return
        if not self._hub.limiter.allow(self._user_id, time.monotonic()):
            self._send(frames.error(frame.id, "rate_limited", "too many requests, slow down"))
            self._metrics.request(frame.type, "rate_limited")
            self._refused += 1
            if self._refused > self._hub.limiter.limit:
                self.close(CloseCode.RATE_LIMITED, "rate limit exceeded")
            return
        self._refused = 0
        if frame.type == "authenticate":
            self._send(frames.error(frame.id, "bad_request", "already authenticated"))
            self._metrics.request(frame.type, "bad_request")
            return
        try:
            # What the client sent, validated and trimmed: fields it left out stay out, so a worker
            # not yet upgraded to a newer contract takes a request that uses none of its additions.
            data = frames.validate(frame).model_dump(mode="json", exclude_unset=True)
        except InvalidDataError as exc:
            if not (REQUESTS[frame.type].command and exc.forwardable):
                self._send(frames.error(frame.id, "bad_request", "invalid data", exc.details))
                self._metrics.request(frame.type, "bad_request")
                return
            # A command's bad_request is an outcome its id must remember (PROTOCOL.md, idempotency):
            # its owner validates against the same contract and keeps the reply for a retry.
            data = frame.data
        if frame.type == "ping":
            self._send(frames.ok(frame.id, {}))
            self._metrics.request(frame.type, "ok")
            return
        task = asyncio.create_task(self._forward(frame, data))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    def _typing(self, frame: Frame) -> None:
        try:
            data = frames.validate(frame)
        except InvalidDataError as exc:
            self._send(frames.error(frame.id, "bad_request", "invalid data", exc.details))
            self._metrics.request(frame.type, "bad_request")
            return
        assert isinstance(data, Typing)
        task = asyncio.create_task(self._tell_typing(frame.id, data))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _tell_typing(self, re: str, data: Typing) -> None:
        assert self._user_id is not None
        refused = await self._hub.typing(self._user_id, data.room_id, data.active)
        if refused is not None:
            self._send(frames.error(re, refused.code, refused.message))
        else:
            self._send(frames.ok(re, {}))
        self._metrics.request("typing", refused.code if refused is not None else "ok")

    async def _forward(self, frame: Frame, data: dict[str, Any]) -> None:
        assert self._user_id is not None
        owner = REQUESTS[frame.type].owner
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(request_id=frame.id, user_id=self._user_id):
            try:
                command = Command(type=frame.type, id=frame.id, user_id=self._user_id, data=data)
                reply = await self._hub.call(owner, command)
            except Exception:
                log.exception("forward_failed", type=frame.type)
                reply = failure("internal", "internal error")
            if reply.error is not None:
                log.info("request_failed", type=frame.type, code=reply.error.code)
            self._send(frames.reply(frame.id, reply))
            outcome = reply.error.code if reply.error is not None else "ok"
            self._metrics.request(frame.type, outcome, time.monotonic() - started)
