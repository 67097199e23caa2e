"""Helpers of the web client tests: people in browser contexts, signing in through the page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from playwright.async_api import Browser, BrowserContext, Page, expect

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@dataclass
class Person:
    name: str
    id: str
    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)


class People:
    def __init__(self, browser: Browser, url: str) -> None:
        self.browser, self.url = browser, url
        self.opened: list[Person] = []

    async def open(self, name: str, phone: bool = False) -> Person:
        """A browser context at the client's sign-in page, for a user not signed in yet."""
        context = await self.browser.new_context(**(PHONE if phone else DESKTOP), locale="en-GB")
        page = await context.new_page()
        person = Person(name, f"{name.lower()}-{uuid.uuid4().hex[:10]}", page, context)
        page.on("pageerror", lambda error: person.errors.append(str(error)))
        self.opened.append(person)
        await page.goto(f"{self.url}/")
        return person

    async def sign_in(self, name: str, phone: bool = False) -> Person:
        person = await self.open(name, phone)
        await sign_in(person)
        return person


async def sign_in(person: Person) -> None:
    page = person.page
    await page.get_by_label("Your name").fill(person.name)
    await page.get_by_label("Sign-in id").fill(person.id)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#me")).to_contain_text(person.name)
