"""gateway.http: health endpoints, 404, Origin and the Bearer header on the handshake."""

from __future__ import annotations

import asyncio

import pytest
from gwclient import WAIT, request
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from boochat.settings import Settings
from gateway import auth
from gateway.app import Gateway

pytestmark = pytest.mark.integration


async def http_status(port: int, path: str, method: str = "GET") -> int:
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_health_ready_and_not_found(gateway: Gateway) -> None:
    assert await http_status(gateway.port, "/healthz") == 200
    assert await http_status(gateway.port, "/readyz") == 200
    assert await http_status(gateway.port, "/nothing-here") == 404
    assert await http_status(gateway.port, "/ws/other") == 404
    assert await http_status(gateway.port, "/healthz", "POST") == 405


async def test_not_ready_without_broker(settings: Settings) -> None:
    """Nothing listens on port 1: healthy, not ready, and clients are told to come back."""
    gateway = Gateway(settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:1/"}))
    await gateway.start()
    try:
        assert await http_status(gateway.port, "/healthz") == 200
        assert await http_status(gateway.port, "/readyz") == 503
        async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
            answer = await request(ws, "authenticate", {"dev_user": {"id": "u", "name": "U"}})
            assert answer["error"]["code"] == "unavailable"
    finally:
        await gateway.stop()


@pytest.mark.parametrize("overrides", [{"allowed_origins": "https://chat.example.com, https://b.example"}])
async def test_origins(url: str, workers) -> None:
    """Listed origins and no Origin are let in; others get 403."""
    for origin in ("https://chat.example.com", "https://b.example", None):
        async with connect(url, origin=origin) as ws:
            assert (await request(ws, "authenticate", {"dev_user": {"id": "u", "name": "U"}}))["type"] == "ok"
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_bearer_header_authenticates_from_the_start(url: str, settings: Settings, workers) -> None:
    token, _ = auth.issue_token(settings, "ann", "Ann")
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await request(ws, "ping"))["type"] == "ok"
        assert (await request(ws, "authenticate", {"token": token}))["error"]["code"] == "bad_request"
        assert (await workers["users"].next("sign_in")).user_id == "ann"


@pytest.mark.parametrize("header", ["Bearer nope", "Basic YTpi", "Bearer"])
async def test_bad_authorization_is_401(url: str, header: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers={"Authorization": header})
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("overrides", [{"max_pending_connections": 2}])
async def test_connections_still_signing_in_are_capped(url: str, gateway: Gateway, workers) -> None:
    """Past the cap, handshakes get 503; a connection that signs in, or a handshake that fails, frees its place."""
    for _ in range(3):  # not upgrades: they hold no place
        assert await http_status(gateway.port, "/ws") == 426
    first, second = await connect(url), await connect(url)
    with pytest.raises(InvalidStatus) as refused:
        await connect(url)
    assert refused.value.response.status_code == 503
    # told when to come back: two sign-ins pending, none completed lately, so the least wait
    assert refused.value.response.headers["Retry-After"] == "1"
    assert (await request(first, "authenticate", {"dev_user": {"id": "u", "name": "U"}}))["type"] == "ok"
    async with connect(url) as third:
        assert (await request(third, "authenticate", {"dev_user": {"id": "v", "name": "V"}}))["type"] == "ok"
    await first.close()
    await second.close()


@pytest.mark.parametrize("overrides", [{"handshakes_per_minute_per_address": 3}])
async def test_handshakes_per_address_are_limited(url: str, gateway: Gateway, workers) -> None:
    """Past the limit, handshakes from the same address get 429 before the upgrade; plain HTTP is not counted."""
    opened = [await connect(url) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await connect(url)
    assert refused.value.response.status_code == 429
    assert await http_status(gateway.port, "/healthz") == 200
    for ws in opened:
        await ws.close()
    with pytest.raises(InvalidStatus) as again:  # closing them frees nothing: the count is of handshakes
        await connect(url)
    assert again.value.response.status_code == 429
