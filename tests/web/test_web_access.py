"""Invite links and devices in the web client: a link made with "Add friends" lets a newcomer pick a
name and join; "Devices" lists where one is signed in, revokes a device (signed out at once) and
signs out everywhere."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from support.client import Client

pytestmark = pytest.mark.web


async def test_invite_join_devices_and_sign_out_everywhere(people, stack) -> None:
    ann = await people.sign_in("Ann")
    page, dialog = ann.page, ann.page.locator("dialog")

    # Ann makes a link for one person; the list shows it, active.
    await page.get_by_role("button", name="Add friends").click()
    await dialog.get_by_label("How many people").fill("1")
    await dialog.get_by_role("button", name="Create link").click()
    link = await dialog.get_by_label("The new link").input_value()
    assert link.startswith(f"{stack.http_url}/invite/")
    code = link.rsplit("/", 1)[1]
    row = dialog.locator(f'.access-row[data-code="{code}"]')
    await expect(row).to_contain_text("0 of 1 used")
    await dialog.get_by_role("button", name="Close").click()

    # Cy opens it, picks a name and is in; Ann sees Cy arrive.
    cy = await people.open("Cy", phone=True)
    await cy.page.goto(link)
    await cy.page.get_by_label("Choose a name").fill("Cy")
    await cy.page.get_by_role("button", name="Join").click()
    await expect(cy.page.locator("#me")).to_contain_text("Cy")
    assert await cy.page.evaluate("location.pathname") == "/"
    token = await cy.page.evaluate("localStorage.getItem('boochat.token')")

    # The link is used up: the next newcomer is told so and stays out.
    dee = await people.open("Dee")
    await dee.page.goto(link)
    await dee.page.get_by_label("Choose a name").fill("Dee")
    await dee.page.get_by_role("button", name="Join").click()
    await expect(dee.page.locator("#signin-reason")).to_contain_text("used up")
    await page.get_by_role("button", name="Add friends").click()
    await expect(row).to_contain_text("1 of 1 used · used up")
    await dialog.get_by_role("button", name="Close").click()

    # Cy's Devices: this one, named by the page.
    await cy.page.get_by_role("button", name="Devices").click()
    cy_dialog = cy.page.locator("dialog")
    await expect(cy_dialog.locator(".access-row")).to_have_count(1)
    await expect(cy_dialog).to_contain_text("Chrome")
    await expect(cy_dialog).to_contain_text("(this device)")
    await cy_dialog.get_by_role("button", name="Close").click()
    assert token

    # Ann signs in on a second device, then revokes it from the first.
    async with await Client.connect(stack.ws_url, dev_user={"id": ann.id, "name": "Ann"}) as phone:
        await page.get_by_role("button", name="Devices").click()
        rows = dialog.locator(".access-row")
        await expect(rows).to_have_count(2)
        other = rows.filter(has_not_text="(this device)")
        await other.get_by_role("button").click()
        await phone.expect_event("session.revoked")
        assert await phone.wait_closed() == 4401
        await expect(rows).to_have_count(1)
        # Sign out everywhere: this page too.
        await dialog.get_by_role("button", name="Sign out everywhere").click()
        await expect(page.get_by_label("Your name")).to_be_visible()
        assert await page.evaluate("localStorage.getItem('boochat.token')") is None
