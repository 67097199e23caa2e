"""Push fakes: an FCM server on loopback with a service-account file whose ``token_uri`` points at
it, and, for tests below the firebase-admin layer, an in-memory push port with builders of the
events the notifications worker consumes.

It answers what firebase-admin calls: the OAuth token request (``POST /token``) and
``POST /v1/projects/<project>/messages:send``. Every request is recorded (path, headers, body);
tests wait for them with ``wait_for`` (a condition and a timeout, never a sleep). Answers to sends
are scripted per target with ``answer(value, *answers)``; unscripted sends succeed.

Plain asyncio HTTP/1.1 with keep-alive: enough for requests' connection pool, no new dependency.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.envelope import AnyEvent
from contracts.events import ItemAdded, PresenceChanged
from contracts.shapes import RoomItem
from workers.notifications.domain import Outcome, Push, Target

WAIT = 10.0
PROJECT_ID = "boochat-test"

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# What FCM v1 answers, by name (bodies as the real service sends them).
ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "unregistered": (404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                     "status": "NOT_FOUND",
                                     "details": [{"@type": FCM_ERROR, "errorCode": "UNREGISTERED"}]}}),
    "invalid_token": (400, {"error": {
        "code": 400, "message": "The registration token is not a valid FCM registration token",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
                    {"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}],
    }}),
    "invalid_message": (400, {"error": {
        "code": 400, "message": "Invalid value at 'message.data[0].value'", "status": "INVALID_ARGUMENT",
        "details": [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
                    {"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "message.data[0].value", "description": "Invalid value"}]}],
    }}),
    "rate_limited": (429, {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED",
                                     "details": [{"@type": FCM_ERROR, "errorCode": "QUOTA_EXCEEDED"}]}}),
    "unavailable": (503, {"error": {"code": 503, "message": "The service is currently unavailable.",
                                    "status": "UNAVAILABLE"}}),
    "internal": (500, {"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}}),
}  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # JSON for sends, the form fields for the token request
    status: int  # what the fake answered

    @property
    def message(self) -> dict[str, Any]:
        return self.body["message"]

    @property
    def target(self) -> str | None:
        return self.message.get("token") or self.message.get("fid")


class FakeFcm:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[str, list[str]] = {}
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._issued = 0
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def endpoint(self) -> str:
        """A BOOCHAT_FCM_ENDPOINT pointing here."""
        return self.url + "/v1/projects/{project_id}/messages:send"

    @property
    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/messages:send")]

    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/token"]

    def sends_to(self, target: str) -> list[Recorded]:
        return [r for r in self.sends if r.target == target]

    def answer(self, target: str, *answers: str) -> None:
        """Answer the next sends to ``target`` with these (names of ``ANSWERS``), then success."""
        self._scripts.setdefault(target, []).extend(answers)

    async def wait_for(
        self, predicate: Callable[[list[Recorded]], bool], timeout: float = WAIT, what: str = "requests"
    ) -> list[Recorded]:
        """Wait until ``predicate(self.requests)`` holds; the requests then."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: predicate(self.requests))
        except TimeoutError:
            seen = [(r.path, r.target if r.path != "/token" else None, r.status) for r in self.requests]
            raise TimeoutError(f"no {what} within {timeout} s; seen {seen}") from None
        return list(self.requests)

    async def wait_sends(self, target: str, count: int, timeout: float = WAIT) -> list[Recorded]:
        """Wait until ``target`` has had ``count`` sends; those sends."""
        await self.wait_for(lambda _: len(self.sends_to(target)) >= count, timeout, f"{count} sends to {target[:12]}")
        return self.sends_to(target)

    # Server --------------------------------------------------------------------------------------

    async def start(self) -> FakeFcm:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # Python 3.11's Server has no close_clients()
                writer.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeFcm:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := (await reader.readline()).decode("latin-1").strip()) != "":
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                status, reply = self._respond(path, headers, raw)
                await self._record(Recorded(method, path, headers, self._parse(path, raw), status))
                payload = json.dumps(reply).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=UTF-8\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _respond(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/token":
            self._issued += 1
            return 200, {"access_token": f"fake-access-{self._issued}", "expires_in": 3600, "token_type": "Bearer"}
        if path.endswith("/messages:send"):
            message = json.loads(raw)["message"]
            script = self._scripts.get(message.get("token") or message.get("fid") or "", [])
            if script:
                return ANSWERS[script.pop(0)]
            return 200, {"name": f"projects/{PROJECT_ID}/messages/{uuid.uuid4().hex}"}
        return 404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}

    @staticmethod
    def _parse(path: str, raw: bytes) -> Any:
        if path == "/token":
            return {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        return json.loads(raw) if raw else None

    async def _record(self, request: Recorded) -> None:
        async with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()


def write_service_account(directory: Path, token_uri: str, project_id: str = PROJECT_ID) -> Path:
    """A service-account file with a freshly generated key, whose tokens come from ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"pusher@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": token_uri,
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    path = directory / f"service-account-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(account))
    return path


# The push port in memory, and events ---------------------------------------------------------


class FakeSender:
    """The push port in memory: records every send; ``answer(value, *outcomes)`` scripts a target."""

    def __init__(self) -> None:
        self.sent: list[tuple[Push, Target]] = []
        self.closed = False
        self._scripts: dict[str, list[Outcome | Exception]] = {}
        self._arrived = asyncio.Condition()

    def answer(self, value: str, *outcomes: Outcome | Exception) -> None:
        self._scripts.setdefault(value, []).extend(outcomes)

    def to(self, value: str) -> list[Push]:
        return [push for push, target in self.sent if target.value == value]

    async def send(self, push: Push, target: Target) -> Outcome:
        async with self._arrived:
            self.sent.append((push, target))
            self._arrived.notify_all()
        script = self._scripts.get(target.value)
        answer = script.pop(0) if script else Outcome.SENT
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(predicate)

    async def close(self) -> None:
        self.closed = True


def event(type: str, payload: Any, version: int = 1, aggregate_id: str = "a1", event_id: str | None = None) -> AnyEvent:
    return AnyEvent(
        event_id=event_id or uuid.uuid4().hex,
        type=type,
        aggregate_id=aggregate_id,
        version=version,
        occurred_at=datetime.now(UTC),
        actor_id="someone",
        correlation_id="c1",
        causation_id="c0",
        payload=payload.model_dump(mode="json"),
    )


def presence(user_id: str, online: bool, version: int) -> AnyEvent:
    return event("user.presence_changed", PresenceChanged(user_id=user_id, online=online), version, user_id)


def item_added(
    room_id: str,
    participants: list[str],
    sender_id: str | None,
    content: str = "hi",
    seq: int = 1,
    room_name: str = "Den",
    sender_name: str | None = "Ann",
) -> AnyEvent:
    item = RoomItem(
        id=uuid.uuid4().hex,
        room_id=room_id,
        seq=seq,
        kind="message" if sender_id else "announcement",
        sender_id=sender_id,
        content=content,
        sent_at=datetime.now(UTC),
    )
    payload = ItemAdded(item=item, room_name=room_name, sender_name=sender_name, participant_ids=participants)
    return event("room.item_added", payload, seq, room_id)
