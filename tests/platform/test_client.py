"""support.client against a scripted WebSocket server: replies by id, events kept until taken."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from support.client import Client, RequestError
from websockets.asyncio.server import ServerConnection, serve


async def scripted(ws: ServerConnection) -> None:
    """authenticate -> ok; ping -> ok; shout -> two events then ok; fail -> error; bye -> close 4401."""
    async for message in ws:
        frame = json.loads(message)
        kind, request_id = frame["type"], frame["id"]
        if kind == "authenticate":
            user = {"id": frame["data"]["dev_user"]["id"], "name": "N", "image_url": None}
            await ws.send(json.dumps({"type": "ok", "re": request_id, "data": {"user": user, "token": "t"}}))
        elif kind == "shout":
            for n in (1, 2):
                await ws.send(json.dumps({"type": "event", "event": "shouted", "data": {"n": n}}))
            await ws.send(json.dumps({"type": "ok", "re": request_id, "data": {}}))
        elif kind == "fail":
            error = {"code": "forbidden", "message": "no"}
            await ws.send(json.dumps({"type": "error", "re": request_id, "error": error}))
        elif kind == "bye":
            await ws.close(4401, "bye")
        else:
            await ws.send(json.dumps({"type": "ok", "re": request_id, "data": {}}))


@pytest.fixture
async def ws_url() -> AsyncIterator[str]:
    async with serve(scripted, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


async def test_authenticates_and_matches_replies(ws_url: str) -> None:
    """connect() authenticates; ok() returns data; error() and RequestError carry the code."""
    async with await Client.connect(ws_url, dev_user={"id": "u1", "name": "N"}) as client:
        assert client.user == {"id": "u1", "name": "N", "image_url": None}
        assert await client.ok("ping") == {}
        assert (await client.error("fail"))["code"] == "forbidden"
        with pytest.raises(RequestError) as failed:
            await client.ok("fail", id="my-id")
        assert failed.value.code == "forbidden" and failed.value.frame["re"] == "my-id"


async def test_events_wait_for_whoever_expects_them(ws_url: str) -> None:
    """An event not matched now stays for a later expect_event; sync() makes pending() complete."""
    async with await Client.connect(ws_url, dev_user={"id": "u1", "name": "N"}) as client:
        await client.ok("shout")
        assert await client.expect_event("shouted", lambda data: data["n"] == 2) == {"n": 2}
        await client.sync()
        assert client.pending("shouted") == [{"n": 1}]
        assert await client.expect_event("shouted") == {"n": 1}
        assert client.pending() == []
        with pytest.raises(TimeoutError, match="no event shouted"):
            await client.expect_event("shouted", timeout=0.2)


async def test_close_code_is_reported(ws_url: str) -> None:
    """A server close fails the waiting request and shows its code."""
    client = await Client.connect(ws_url)
    with pytest.raises(ConnectionError):
        await client.request("bye")
    assert await client.wait_closed() == 4401
    await client.close()


async def test_expect_event_after_close_fails_fast(ws_url: str) -> None:
    client = await Client.connect(ws_url)
    await client.send_text(json.dumps({"type": "bye", "id": "x", "data": {}}))
    await client.wait_closed()
    with pytest.raises(AssertionError, match="connection closed"):
        await asyncio.wait_for(client.expect_event("shouted", timeout=30), 5)
