"""Hostile input against the running stack, through a real gateway and a real WebSocket.

A corpus of known attacks and a hypothesis generator of frames: each gets its PROTOCOL.md error or
close code, no operator object gets past the contracts (so none reaches a MongoDB filter), and the
gateway and every worker keep running and answering.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from support.client import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from boochat.supervisor import http_status
from contracts.errors import ErrorCode
from contracts.requests import REQUESTS

pytestmark = pytest.mark.e2e

OPERATORS: list[Any] = [{"$gt": ""}, {"$ne": None}, {"$where": "sleep(1000)"}, {"$regex": ".*"}, {"$in": ["a"]}]
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()

# A valid ``data`` for every request type: the corpus spoils one field at a time.
VALID: dict[str, dict[str, Any]] = {
    "authenticate": {"dev_user": {"id": "u1", "name": "U", "email": "", "image_url": None}},
    "ping": {},
    "get_me": {},
    "create_room": {"name": "Den", "image_url": "https://x.org/a.png", "participant_ids": ["u2"]},
    "invite_to_room": {"room_id": "r1", "user_id": "u2"},
    "leave_room": {"room_id": "r1"},
    "mark_room_read": {"room_id": "r1", "seq": 1},
    "change_room_image": {"room_id": "r1", "image_url": "https://x.org/a.png"},
    "rename_room": {"room_id": "r1", "name": "Den"},
    "send_message": {"room_id": "r1", "content": "hi", "reply_to": 1, "mentions": ["u2"], "mentions_room": False},
    "edit_message": {"room_id": "r1", "seq": 1, "content": "hi again"},
    "delete_message": {"room_id": "r1", "seq": 1},
    "add_reaction": {"room_id": "r1", "seq": 1, "emoji": "👍"},
    "remove_reaction": {"room_id": "r1", "seq": 1, "emoji": "👍"},
    "set_room_notifications": {"room_id": "r1", "level": "mentions"},
    "typing": {"room_id": "r1", "active": True},
    "get_item_history": {"room_id": "r1", "seq": 1},
    "create_upload": {"room_id": "r1", "name": "a.jpg", "content_type": "image/jpeg", "size": 10},
    "complete_upload": {"upload_id": "5f0c5f0c5f0c5f0c5f0c5f0c5f0c5f0c"},
    "get_attachment_links": {"room_id": "r1", "seq": 1},
    "create_meetup": {
        "name": "Picnic",
        "location": "Park",
        "takes_place_on": FUTURE,
        "attendee_ids": ["u2"],
        "image_url": "https://x.org/a.png",
    },
    "change_rsvp": {"meetup_id": "m1", "rsvp": "yes"},
    "change_meetup_image": {"meetup_id": "m1", "image_url": "https://x.org/a.png"},
    "cancel_meetup": {"meetup_id": "m1"},
    "get_calendar_feed": {},
    "reset_calendar_feed": {},
    "set_reminders": {"enabled": False},
    "create_poll": {"meetup_id": "m1", "poll_type": "generic", "description": "Where?", "choices": ["a", "b"]},
    "vote_poll": {"poll_id": "p1", "choice_index": 0},
    "close_poll": {"poll_id": "p1"},
    "register_device": {"token": "t1", "platform": "android"},
    "unregister_device": {"token": "t1"},
    "list_rooms": {},
    "get_room": {"room_id": "r1"},
    "get_room_items": {"room_id": "r1", "before_seq": 5, "after_seq": 0, "limit": 10, "with_changes": True},
    "list_meetups": {},
    "get_meetup": {"meetup_id": "m1"},
    "list_users": {"query": "ann", "limit": 10, "cursor": "QW5uAWFubi0x"},
    "list_online_users": {},
    "create_invite": {"max_uses": 2, "expires_in": 3600},
    "list_invites": {},
    "revoke_invite": {"code": "AbCdEfGhIjKlMnOpQrStUv"},
    "list_sessions": {},
    "revoke_session": {"session_id": "s1"},
    "revoke_sessions": {"keep": "s1"},
}


def fields(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[tuple[str, list[str | int]]]:
    """Every field of ``model`` (nested models and list items included) as (name, path into ``data``)."""
    found: list[tuple[str, list[str | int]]] = []
    for name, info in model.model_fields.items():
        found.append((prefix + name, [name]))
        nested = [a for a in get_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        value = data.get(name)
        if nested and isinstance(value, dict):
            found += [(n, [name, *p]) for n, p in fields(nested[0], value, f"{prefix}{name}.")]
        if isinstance(value, list) and value:
            found.append((f"{prefix}{name}.0", [name, 0]))
    return found


def replaced(data: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def id_fields(type_: str) -> list[tuple[str, list[str | int]]]:
    """The fields naming ids: ``*_id``, ``*_ids`` and their items, a dev user's ``id``."""
    spec = REQUESTS[type_]
    return [(n, p) for n, p in fields(spec.data, VALID[type_]) if "_id" in n or n.endswith(".id")]


def test_the_corpus_covers_every_request_type() -> None:
    """A new request type needs its valid data here, so the corpus spoils its fields too."""
    assert set(VALID) == set(REQUESTS)
    for type_, data in VALID.items():
        REQUESTS[type_].data.model_validate(data)


@pytest.mark.parametrize("type_", sorted(REQUESTS))
def test_no_field_takes_an_operator_object(type_: str) -> None:
    """Every field of every request (ids above all) refuses an operator object: none reaches a query."""
    spec = REQUESTS[type_]
    for name, path in fields(spec.data, VALID[type_]):
        for operator in OPERATORS:
            with pytest.raises(ValidationError) as refused:
                spec.data.model_validate(replaced(VALID[type_], path, operator))
            located = {".".join(map(str, e["loc"])) for e in refused.value.errors()}
            assert any(loc == name or loc.startswith(name + ".") for loc in located), (name, located)


# Against the running stack ------------------------------------------------------------------


async def signed_in(stack, name: str = "Mallory") -> Client:
    return await Client.connect(stack.ws_url, dev_user={"id": f"{name.lower()}-{uuid.uuid4().hex[:10]}", "name": name})


async def answer_to_text(client: Client, text: str) -> dict[str, Any]:
    """The one reply to a frame sent as is, whatever its id (read before the reply to a ping)."""
    before = len(client.stray)
    await client.send_text(text)
    await client.sync()
    assert len(client.stray) == before + 1, client.stray[before:]
    return client.stray[before]


def starts(stack) -> dict[str, int]:
    return {process.name: stack.supervisor.starts(process.name) for process in stack.processes}


@pytest.fixture
async def serving(stack):
    """The session's stack; after the test, the gateway is ready, no process was restarted, and a
    normal request works."""
    before = starts(stack)
    yield stack
    assert await http_status(f"{stack.http_url}/readyz") == 200
    assert starts(stack) == before
    async with await signed_in(stack, "Trent") as client:
        room = (await client.ok("create_room", {"name": "After", "participant_ids": []}))["room"]
        sent = await client.ok("send_message", {"room_id": room["id"], "content": "still here"})
        assert sent["item"]["room_id"] == room["id"]


@pytest.mark.usefixtures("serving")
async def test_operator_objects_in_every_id_field_are_bad_requests(stack) -> None:
    """Through the gateway, for every request type: bad_request naming the field; the workers say the
    same of commands (the gateway forwards a command's invalid data to its owner, which keeps the reply)."""
    client = await signed_in(stack)
    try:
        for type_ in sorted(REQUESTS):
            if type_ == "authenticate":
                continue
            for name, path in id_fields(type_):
                data = replaced(VALID[type_], path, {"$gt": ""})
                error = await client.error(type_, data)
                assert error["code"] == "bad_request", (type_, name, error)
                assert any(key == f"data.{name}" or key.startswith(f"data.{name}.") for key in error["details"]), (
                    type_,
                    name,
                    error,
                )
    finally:
        await client.close()
    for name, path in id_fields("authenticate"):  # before signing in: refused, closed with 4401
        async with await Client.connect(stack.ws_url) as anonymous:
            error = await anonymous.error("authenticate", replaced(VALID["authenticate"], path, {"$gt": ""}))
            assert error["code"] == "unauthenticated" and f"data.{name}" in error["details"], (name, error)
            assert await anonymous.wait_closed() == 4401


BAD_ID = "id must be 1 to 64 printable ASCII characters"


@pytest.mark.usefixtures("serving")
@pytest.mark.parametrize(
    ("text", "re", "message"),
    [
        ("", None, "a frame must be JSON"),
        ("not json", None, "a frame must be JSON"),
        ('{"type": "ping", "id": "a", "data": {"x": NaN}}', None, "a frame must be JSON"),
        ("[" * 20_000, None, "a frame must be JSON"),
        ('{"a":' * 10_000, None, "a frame must be JSON"),
        ("[]", None, "a frame must be a JSON object"),
        ('"ping"', None, "a frame must be a JSON object"),
        ('{"type": "ping", "id": {"$gt": ""}, "data": {}}', None, BAD_ID),
        ('{"type": "ping", "id": 5, "data": {}}', None, BAD_ID),
        ('{"type": "ping", "id": "é", "data": {}}', None, BAD_ID),
        ('{"type": "ping", "id": "' + "x" * 65 + '", "data": {}}', None, BAD_ID),
        ('{"type": {"$gt": ""}, "id": "a", "data": {}}', "a", "unknown type"),
        ('{"type": "drop_database", "id": "a", "data": {}}', "a", "unknown type"),
        ('{"type": "ping", "id": "a", "data": []}', "a", "data must be an object"),
        ('{"type": "ping", "id": "a"}', "a", "data must be an object"),
        ('{"type": "ping", "id": "a", "data": {}, "$where": "1"}', "a", "unknown keys: $where"),
    ],
)
async def test_malformed_frames_are_bad_requests(stack, text: str, re: str | None, message: str) -> None:
    async with await signed_in(stack) as client:
        answer = await answer_to_text(client, text)
        assert answer == {"type": "error", "re": re, "error": {"code": "bad_request", "message": message}}


@pytest.mark.usefixtures("serving")
async def test_huge_and_deep_data(stack) -> None:
    """Within the size limit: too many ids, too long text, deep nesting are bad_request naming the field."""
    deep: Any = "x"
    for level in range(500):
        deep = {"a": deep} if level % 2 else [deep]
        if level == 20:
            nested = deep
    async with await signed_in(stack) as client:
        cases = [
            ("create_room", {"name": "Den", "participant_ids": ["u"] * 1001}, "data.participant_ids"),
            ("send_message", {"room_id": "r1", "content": "x" * 4001}, "data.content"),
            ("send_message", {"room_id": nested, "content": "hi"}, "data.room_id"),  # said by messaging
            ("get_room", {"room_id": "r1", "extra": nested}, "data.extra"),
            ("send_message", {"room_id": deep, "content": "hi"}, "data"),  # too deep to travel: the gateway says
            ("get_room", {"room_id": "r1", "extra": deep}, "data"),
        ]
        for type_, data, field in cases:
            error = await client.error(type_, data)
            assert error["code"] == "bad_request" and field in error["details"], (type_, error)
        await client.sync()


@pytest.mark.usefixtures("serving")
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"type": "ping", "id": "a", "data": {}}', 1003),  # binary
        ("invalid-utf8", 1007),
        ("oversize", 1009),
    ],
)
async def test_transport_abuse_closes(stack, payload: bytes | str, code: int) -> None:
    async with await signed_in(stack) as client:
        if payload == "invalid-utf8":
            await client.ws.send(b'{"type": "ping", "id": "\xff\xfe", "data": {}}', text=True)
        elif payload == "oversize":
            await client.ws.send(json.dumps({"type": "ping", "id": "a", "data": {"x": "y" * 70_000}}))
        else:
            await client.ws.send(payload)
        assert await client.wait_closed() == code


def forged_tokens(secret: str) -> dict[str, str]:
    now = int(datetime.now(UTC).timestamp())
    good = {"sub": "victim", "name": "Victim", "iss": "boochat", "aud": "boochat", "iat": now, "exp": now + 3600}
    return {
        "alg-none": jwt.encode(good, None, algorithm="none"),
        "wrong-key": jwt.encode(good, "k" * 40, algorithm="HS256"),
        "hs512": jwt.encode(good, secret, algorithm="HS512"),
        "wrong-issuer": jwt.encode(good | {"iss": "evil"}, secret, algorithm="HS256"),
        "wrong-audience": jwt.encode(good | {"aud": "evil"}, secret, algorithm="HS256"),
        "expired": jwt.encode(good | {"iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"),
        "sub-operator": jwt.encode(good | {"sub": {"$gt": ""}}, secret, algorithm="HS256"),
    }


@pytest.mark.usefixtures("serving")
@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the HS512 forgery uses the server's own key
async def test_forged_tokens_are_refused(stack) -> None:
    """In an authenticate frame: unauthenticated, then 4401; in a Bearer header: HTTP 401."""
    for name, token in forged_tokens(stack.settings.jwt_secret).items():
        async with await Client.connect(stack.ws_url) as client:
            assert (await client.error("authenticate", {"token": token}))["code"] == "unauthenticated", name
            assert await client.wait_closed() == 4401, name
        with pytest.raises(InvalidStatus) as refused:
            await connect(stack.ws_url, additional_headers={"Authorization": f"Bearer {token}"})
        assert refused.value.response.status_code == 401, name


# Generated frames ---------------------------------------------------------------------------

ERROR_CODES = set(get_args(ErrorCode)) - {"internal"}  # hostile input is refused, never crashes a handler
VALID_ID = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HOSTILE = JSON | st.sampled_from(OPERATORS) | st.text(string.printable, min_size=129, max_size=300)


@st.composite
def request_frames(draw: st.DrawFn) -> tuple[str, str | None]:
    """A frame that looks like a request of a known type, each field taken from a valid one, dropped,
    or replaced by something hostile; and the id a reply must carry (None when the id is bad)."""
    type_ = draw(st.sampled_from(sorted(t for t in REQUESTS if t != "authenticate")))
    data: dict[str, Any] = {}
    for key, value in VALID[type_].items():
        choice = draw(st.sampled_from(["keep", "drop", "spoil"]))
        if choice != "drop":
            data[key] = value if choice == "keep" else draw(HOSTILE)
    if draw(st.booleans()):
        data[draw(st.text(max_size=8))] = draw(HOSTILE)
    frame_id = draw(VALID_ID | HOSTILE)
    valid_id = isinstance(frame_id, str) and 1 <= len(frame_id) <= 64
    re = frame_id if valid_id and frame_id.isascii() and frame_id.isprintable() else None
    return json.dumps({"type": type_, "id": frame_id, "data": data}), re


FRAMES = request_frames() | st.tuples(st.text(max_size=200).map(str), st.none())


@pytest.mark.usefixtures("serving")
async def test_generated_frames_each_get_one_reply(stack) -> None:
    """Hypothesis drives frames at the gateway: one reply each, a PROTOCOL.md code other than
    ``internal`` (which would mean a handler crashed on the input), nothing crashes."""
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    sent = 0

    async def exchange(text: str, re: str | None) -> dict[str, Any]:
        nonlocal sent
        if not clients or sent % 9 == 0:  # a fresh connection before ten malformed frames could close one
            if clients:
                await clients[-1].close()
            clients.append(await signed_in(stack))
        sent += 1
        if re is None:  # answered by the gateway itself, before a later ping
            return await answer_to_text(clients[-1], text)
        return await clients[-1].send_raw(text, re=re, timeout=15)  # perhaps by a worker

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(FRAMES)
    def property(frame: tuple[str, str | None]) -> None:
        text, re = frame
        answer = asyncio.run_coroutine_threadsafe(exchange(text, re), loop).result(timeout=30)
        assert answer["type"] in ("ok", "error") and answer["re"] == re, (text, answer)
        if answer["type"] == "error":
            assert answer["error"]["code"] in ERROR_CODES, answer

    try:
        await asyncio.to_thread(property)
    finally:
        for client in clients:
            await client.close()
