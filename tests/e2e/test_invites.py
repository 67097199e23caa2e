"""Invite links and device sessions through the gateway: newcomers join by a link, devices sign in
again with their renewed tokens, and a revoked device is signed out at once."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import jwt
import pytest
from support.client import Client

pytestmark = pytest.mark.e2e

BOOCHAT = (sys.executable, "-m", "boochat.cli")


async def join(stack, code: str, name: str = "Cy") -> tuple[Client, dict]:
    """A newcomer's connection and the reply (ok or error frame) to their ``authenticate`` by ``code``."""
    client = await Client.connect(stack.ws_url)
    frame = await client.request("authenticate", {"invite": code, "name": name, "device": "Test phone"})
    return client, frame


async def test_a_newcomer_joins_by_a_link_and_signs_in_again_with_a_renewed_token(connect, stack):
    """The link leads to the web client; the newcomer is a user with a device session; their token
    comes back renewed for the same session; one past the last use is conflict and creates nothing."""
    ann = await connect("Ann")
    invite = (await ann.ok("create_invite", {"max_uses": 1, "expires_in": 3600}))["invite"]
    assert invite["link"] == f"{stack.http_url}/invite/{invite['code']}"
    cy, frame = await join(stack, invite["code"])
    joined = frame["data"]
    assert joined["user"]["id"].startswith("invite:") and joined["user"]["name"] == "Cy"
    # Ann shares no room with Cy, so is not sent user.updated; the directory lists Cy.
    assert joined["user"]["id"] in [user["id"] for user in (await ann.ok("list_users"))["users"]]
    [session] = (await cy.ok("list_sessions"))["sessions"]
    assert (session["id"], session["device"]) == (joined["session_id"], "Test phone")
    async with await Client.connect(stack.ws_url, token=joined["token"]) as again:
        assert again.user == joined["user"]  # a fresh token of the same session (the same bytes within a second)
        assert (await again.ok("list_sessions"))["sessions"][0]["id"] == joined["session_id"]
    async with await Client.connect(stack.ws_url, token=joined["token"]):  # the first token still works
        pass
    late, refused = await join(stack, invite["code"], "Dee")
    assert refused["error"]["code"] == "conflict"
    assert await late.wait_closed() == 4401
    assert "Dee" not in [u["name"] for u in (await ann.ok("list_users"))["users"]]
    [listed] = (await ann.ok("list_invites"))["invites"]
    assert (listed["uses"], listed["status"]) == (1, "used_up")
    await cy.close()


async def test_two_newcomers_race_for_the_last_use(connect, stack):
    ann = await connect("Ann")
    invite = (await ann.ok("create_invite", {"max_uses": 1}))["invite"]
    (one, first), (two, second) = await asyncio.gather(join(stack, invite["code"]), join(stack, invite["code"]))
    assert sorted(f.get("error", {}).get("code", "ok") for f in (first, second)) == ["conflict", "ok"]
    await one.close()
    await two.close()


async def test_revoked_invites_and_unknown_codes_are_refused(connect, stack):
    ann = await connect("Ann")
    invite = (await ann.ok("create_invite", {}))["invite"]
    await ann.ok("revoke_invite", {"code": invite["code"]})
    for code, refused in [(invite["code"], "forbidden"), ("no-such-invite", "not_found")]:
        client, frame = await join(stack, code)
        assert frame["error"]["code"] == refused
        assert await client.wait_closed() == 4401


async def test_a_revoked_device_is_signed_out_at_once(connect, stack):
    """Its connections get session.revoked and close with 4401; its token is refused; the user's
    other devices go on until they sign out everywhere."""
    laptop = await connect("Ann")
    phone = await connect(as_user=laptop.user)
    sessions = (await phone.ok("list_sessions"))["sessions"]
    assert len(sessions) == 2
    laptop_session = jwt.decode(laptop.token, options={"verify_signature": False})["sid"]
    phone_session = jwt.decode(phone.token, options={"verify_signature": False})["sid"]
    assert {s["id"] for s in sessions} == {laptop_session, phone_session}
    await phone.ok("revoke_session", {"session_id": laptop_session})
    await laptop.expect_event("session.revoked", lambda d: d["session_id"] == laptop_session)
    assert await laptop.wait_closed() == 4401
    refused = await Client.connect(stack.ws_url)
    assert (await refused.request("authenticate", {"token": laptop.token}))["error"]["code"] == "unauthenticated"
    assert await refused.wait_closed() == 4401
    await phone.sync()
    # Signing out everywhere signs this device out too: it is closed, maybe before the reply arrives.
    await phone.send_text(json.dumps({"type": "revoke_sessions", "id": "everywhere", "data": {}}))
    await phone.expect_event("session.revoked", lambda d: d["session_id"] == phone_session)
    assert await phone.wait_closed() == 4401


async def test_boochat_invite_prints_a_link_that_signs_in(stack):
    """The operator's link, made by the running stack's users worker."""
    settings = stack.settings
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOCHAT_")}
    env |= {
        "BOOCHAT_NAMESPACE": settings.namespace,
        "BOOCHAT_AMQP_URL": settings.amqp_url,
        "BOOCHAT_GATEWAY_PORT": str(settings.gateway_port),
    }
    process = await asyncio.create_subprocess_exec(
        *BOOCHAT, "invite", "--uses", "2", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    link = out.decode().strip()
    assert link.startswith(f"{stack.http_url}/invite/")
    client, frame = await join(stack, link.rsplit("/", 1)[1], "First")
    assert frame["type"] == "ok", frame
    await client.close()
