"""Google sign-in through a whole stack whose gateway fetches certificates from a loopback stand-in."""

from __future__ import annotations

import pytest
from support.client import Client
from support.google import FakeGoogle

pytestmark = pytest.mark.e2e


async def test_google_sign_in_keeps_the_profile(start_stack):
    """A Google token signs in as google:<sub>; get_me and list_users show the Google profile; the session
    token it gets back works on a new connection; a later Google sign-in updates name and picture."""
    with FakeGoogle() as google:
        stack = await start_stack(
            google_client_id=google.client_id, allowed_emails="Ann@Example.com", google_certs_url=google.certs_url
        )
        sub = "104242424242424242424"
        user = {"id": f"google:{sub}", "name": "Ann Example", "image_url": "https://lh3.googleusercontent.com/a/ann"}
        async with await Client.connect(stack.ws_url) as ann:
            signed_in = await ann.ok("authenticate", {"google_id_token": google.token(sub=sub)})
            assert signed_in["user"] == user
            assert (await ann.ok("get_me"))["user"] == user
            assert user in (await ann.ok("list_users"))["users"]
        async with await Client.connect(stack.ws_url, token=signed_in["token"]) as again:
            assert again.user == user
            assert (await again.ok("get_me"))["user"] == user
            renamed = {"id": f"google:{sub}", "name": "Ann B.", "image_url": None}
            async with await Client.connect(stack.ws_url) as later:
                await later.ok("authenticate", {"google_id_token": google.token(sub=sub, name="Ann B.", picture="")})
            assert (await again.ok("get_me"))["user"] == renamed
            assert renamed in (await again.ok("list_users"))["users"]
