"""gateway.google: Google sign-in through the gateway, against a loopback certificate endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gwclient import closed, request
from support.google import FakeGoogle, new_key
from websockets.asyncio.client import ClientConnection, connect

from contracts.internal import SignIn
from gateway.google import CachedCerts, max_age

pytestmark = pytest.mark.integration

ALLOWED = "ann@example.com, Bo@Example.ORG"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as google:
        yield google


@pytest.fixture
def overrides(google: FakeGoogle, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Google sign-in set up against ``google``; ``indirect`` parameters change it."""
    values = {"google_client_id": google.client_id, "allowed_emails": ALLOWED, "google_certs_url": google.certs_url}
    values.update(getattr(request, "param", {}))
    return values


async def authenticate(ws: ClientConnection, id_token: str) -> dict[str, Any]:
    return await request(ws, "authenticate", {"google_id_token": id_token})


async def refused(url: str, id_token: str) -> str:
    """The message of the ``unauthenticated`` error; the connection is closed with 4401."""
    async with connect(url) as ws:
        answer = await authenticate(ws, id_token)
        assert answer["type"] == "error" and answer["error"]["code"] == "unauthenticated", answer
        assert (await closed(ws))[0] == 4401
    return answer["error"]["message"]


@pytest.mark.parametrize("issuer", ["https://accounts.google.com", "accounts.google.com"])
async def test_a_google_token_signs_in(url: str, google: FakeGoogle, workers, issuer: str) -> None:
    """The user is google:<sub> with its name and picture (the bare sub offered as the id it may have
    had before); the users worker keeps the email and starts a device session."""
    sub = "109876543210987654321"
    async with connect(url) as ws:
        answer = await authenticate(ws, google.token(sub=sub, iss=issuer))
        assert answer["type"] == "ok", answer
        user = {"id": f"google:{sub}", "name": "Ann Example", "image_url": "https://lh3.googleusercontent.com/a/ann"}
        assert answer["data"]["user"] == user
        signed_in = await workers["users"].next("sign_in")
        assert signed_in.user_id == f"google:{sub}"
        asked = SignIn.model_validate(signed_in.data)
        assert (asked.user.model_dump(), asked.email, asked.legacy_id) == (user, "ann@example.com", sub)
        assert asked.session is not None and asked.session.id == answer["data"]["session_id"] and not asked.renew
        token = answer["data"]["token"]
    async with connect(url) as ws:
        again = await request(ws, "authenticate", {"token": token})
        assert again["type"] == "ok" and again["data"]["session_id"] == answer["data"]["session_id"]
        assert again["data"]["user"] == user
        assert (await request(ws, "ping"))["type"] == "ok"


async def test_without_name_or_picture(url: str, google: FakeGoogle, workers) -> None:
    """No name: the email's local part; an empty picture: no image."""
    async with connect(url) as ws:
        answer = await authenticate(ws, google.token(name=None, picture=""))
        assert answer["data"]["user"]["name"] == "ann"
        assert answer["data"]["user"]["image_url"] is None


async def test_allowed_emails_match_in_any_case(url: str, google: FakeGoogle, workers) -> None:
    async with connect(url) as ws:
        assert (await authenticate(ws, google.token(email="BO@example.org")))["type"] == "ok"


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else.apps.googleusercontent.com"},
        {"iss": "https://evil.example.com"},
        {"iss": None},
        {"exp": 1_700_000_000, "iat": 1_699_996_400},
        {"email_verified": False},
        {"email_verified": "true"},
        {"email_verified": None},
        {"email": "eve@example.com"},
        {"email": None},
        {"sub": None},
    ],
    ids=[
        "audience",
        "issuer",
        "no-issuer",
        "expired",
        "unverified-email",
        "email-verified-as-string",
        "no-email-verified",
        "email-not-allowed",
        "no-email",
        "no-sub",
    ],
)
async def test_refused_tokens(url: str, google: FakeGoogle, workers, changes: dict[str, Any]) -> None:
    await refused(url, google.token(**changes))
    assert not [c for c in workers["users"].seen if c.type == "sign_in"]


async def test_a_token_signed_by_another_key_is_refused(url: str, google: FakeGoogle, workers) -> None:
    """Same kid, another key: the signature does not verify."""
    assert await refused(url, google.token(key=new_key())) == "invalid Google ID token"


async def test_garbage_is_refused(url: str, workers) -> None:
    await refused(url, "not.a.token")


@pytest.mark.parametrize("overrides", [{"allowed_emails": None}, {"allowed_emails": " , "}], indirect=True)
async def test_no_allowed_emails_allow_nobody(url: str, google: FakeGoogle, workers) -> None:
    await refused(url, google.token())


@pytest.mark.parametrize("overrides", [{"google_client_id": None}, {"google_client_id": ""}], indirect=True)
async def test_without_a_client_id_google_sign_in_is_off(url: str, google: FakeGoogle, workers) -> None:
    """Refused before anything is fetched."""
    assert "not configured" in await refused(url, google.token())
    assert google.fetches == 0


async def test_certificates_are_fetched_once_while_fresh(url: str, google: FakeGoogle, workers) -> None:
    for email in ("ann@example.com", "bo@example.org"):
        async with connect(url) as ws:
            assert (await authenticate(ws, google.token(email=email)))["type"] == "ok"
    assert google.fetches == 1


@pytest.mark.parametrize("overrides", [{"google_certs_url": "http://127.0.0.1:9/oauth2/v1/certs"}], indirect=True)
async def test_unreachable_certificates_are_unavailable(url: str, google: FakeGoogle, workers) -> None:
    """Not the client's fault: ``unavailable`` and 1013 (try again later), not 4401."""
    async with connect(url) as ws:
        answer = await authenticate(ws, google.token())
        assert answer["type"] == "error" and answer["error"]["code"] == "unavailable"
        assert (await closed(ws))[0] == 1013


# The certificate cache on its own -----------------------------------------------------------


class Answer:
    status = 200

    def __init__(self, cache_control: str | None) -> None:
        self.headers = {} if cache_control is None else {"Cache-Control": cache_control}
        self.data = b'{"kid": "PEM"}'


class Upstream:
    def __init__(self, cache_control: str | None) -> None:
        self.cache_control, self.calls = cache_control, 0

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Answer:
        self.calls += 1
        return Answer(self.cache_control)


def test_cached_certificates_expire_after_max_age() -> None:
    now = [0.0]
    upstream = Upstream("public, max-age=100, must-revalidate")
    certs = CachedCerts(upstream, clock=lambda: now[0])  # type: ignore[arg-type]
    for moment in (0.0, 99.0, 100.0, 150.0):
        now[0] = moment
        assert certs("http://certs").data == b'{"kid": "PEM"}'
    assert upstream.calls == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=19845, must-revalidate, no-transform", 19845),
        ("MAX-AGE=5", 5),
        ("max-age=999999999", 24 * 3600),
        ("no-store, max-age=60", 0),
        ("no-cache", 0),
        ("max-age=soon", 0),
        (None, 0),
    ],
)
def test_max_age(header: str | None, seconds: int) -> None:
    assert max_age({} if header is None else {"cache-control": header}) == seconds
