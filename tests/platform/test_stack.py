"""support.stack: the real stack, shared by the session or started with another scale."""

from __future__ import annotations

import uuid

import pytest
from support.client import Client
from support.stack import Stack

from boochat.supervisor import http_status

pytestmark = pytest.mark.e2e


def dev_user() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"id": f"u-{suffix}", "name": f"User {suffix}"}


async def test_session_stack_serves_clients(stack: Stack) -> None:
    """The gateway answers /healthz and /readyz, and a dev user signs in and pings."""
    assert await http_status(f"{stack.http_url}/healthz") == 200
    assert await http_status(f"{stack.http_url}/readyz") == 200
    user = dev_user()
    async with await Client.connect(stack.ws_url, dev_user=user) as client:
        assert client.user is not None and client.user["id"] == user["id"]
        assert (await client.ok("get_me"))["user"]["id"] == user["id"]
        await client.sync()


async def test_start_stack_with_more_gateways(start_stack) -> None:  # type: ignore[no-untyped-def]
    """``gateway=2`` gives two gateways on consecutive ports, both serving the same namespace."""
    scaled = await start_stack(scale={"gateway": 2})
    assert len(scaled.ws_urls) == 2
    ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in scaled.ws_urls]
    assert ports[1] == ports[0] + 1
    for url in scaled.ws_urls:
        async with await Client.connect(url, dev_user=dev_user()) as client:
            await client.sync()
