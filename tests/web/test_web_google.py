"""Google sign-in in the web client: the button appears when the server names a client id, its
credential signs in through the gateway's real verification, and an expired session sends the
person back to the sign-in page with the reason."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import BrowserContext, expect
from support.google import FakeGoogle

pytestmark = pytest.mark.web

GSI = "https://accounts.google.com/gsi/client"


def fake_gsi(credential: str) -> str:
    """Google Identity Services' script as far as the client uses it (``initialize``, ``renderButton``):
    the button hands the callback ``credential``, as Google's does after the person picks an account."""
    return f"""
window.google = {{ accounts: {{ id: {{
  initialize(options) {{ this.options = options; }},
  renderButton(parent) {{
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Sign in with Google";
    button.onclick = () => this.options.callback({{ credential: {json.dumps(credential)} }});
    parent.append(button);
  }},
}} }} }};
"""


async def test_google_button_signs_in_until_the_session_ends(people, start_stack) -> None:
    with FakeGoogle() as google:
        stack = await start_stack(
            google_client_id=google.client_id,
            allowed_emails="ann@example.com",
            google_certs_url=google.certs_url,
            dev_login=False,
            token_ttl_seconds=8,
        )
        credential = google.token(name="Ann Example", picture=None)

        async def serve_fake_gsi(context: BrowserContext) -> None:
            await context.route(
                GSI, lambda route: route.fulfill(content_type="text/javascript", body=fake_gsi(credential))
            )

        ann = await people.open("Ann", prepare=serve_fake_gsi, url=stack.http_url)
        page = ann.page
        await expect(page.locator("#dev-login")).to_be_hidden()
        await page.get_by_role("button", name="Sign in with Google").click()
        await expect(page.locator("#me")).to_contain_text("Ann Example")
        assert await page.evaluate("localStorage.getItem('boochat.token')")

        # The session token lives 8 seconds here: the gateway closes with 4401 and the page says why.
        await expect(page.locator("#signin-reason")).to_have_text("Your session has ended: please sign in again.")
        await expect(page.get_by_role("button", name="Sign in with Google")).to_be_visible()
        assert await page.evaluate("localStorage.getItem('boochat.token')") is None
