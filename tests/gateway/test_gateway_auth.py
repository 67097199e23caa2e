"""gateway.auth: session tokens, dev login, the Google check and the Bearer header."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from boochat.settings import Settings
from contracts.requests import Authenticate
from gateway import auth
from gateway.auth import AuthError

SECRET = "s" * 32


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=SECRET, dev_login=True)


def claims(**changes: object) -> dict[str, object]:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "sub": "u1",
        "name": "Ann",
        "iss": "boochat",
        "aud": "boochat",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def hs512() -> str:
    with warnings.catch_warnings():  # pyjwt warns that 32 bytes are short for HS512: beside the point
        warnings.simplefilter("ignore")
        return jwt.encode(claims(), SECRET, algorithm="HS512")


def test_issued_tokens_verify(settings: Settings) -> None:
    """A token round-trips the user, email and picture, and expires after the TTL."""
    token, expires_at = auth.issue_token(settings, "u1", "Ann", "ann@example.com", "https://x.org/a.png")
    identity = auth.verify_token(settings, token)
    assert identity.user.model_dump() == {"id": "u1", "name": "Ann", "image_url": "https://x.org/a.png"}
    assert identity.email == "ann@example.com"
    assert identity.expires_at == expires_at
    assert abs((expires_at - datetime.now(UTC)).total_seconds() - settings.token_ttl_seconds) < 5
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_an_empty_picture_gives_no_image(settings: Settings) -> None:
    token = jwt.encode(claims(picture=""), SECRET, algorithm="HS256")
    assert auth.verify_token(settings, token).user.image_url is None


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), "t" * 32, algorithm="HS256"),
        hs512(),
        jwt.encode(claims(), None, algorithm="none"),
        jwt.encode(claims(iss="someone"), SECRET, algorithm="HS256"),
        jwt.encode(claims(aud="someone"), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=int(datetime.now(UTC).timestamp()) - 1), SECRET, algorithm="HS256"),
        jwt.encode(claims(name=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(iat=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(iss=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(aud=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(name=7), SECRET, algorithm="HS256"),
        "not.a.token",
    ],
    ids=[
        "bad-signature",
        "hs512",
        "none",
        "issuer",
        "audience",
        "expired",
        "no-name",
        "no-sub",
        "no-iat",
        "no-exp",
        "no-iss",
        "no-aud",
        "name-not-string",
        "garbage",
    ],
)
def test_refused_tokens(settings: Settings, token: str) -> None:
    with pytest.raises(AuthError):
        auth.verify_token(settings, token)


async def sign_in(
    settings: Settings, data: Authenticate, google: auth.GoogleCheck = auth.refuse_google
) -> auth.Identity:
    """What the gateway does, the users worker confirming whatever it is asked."""
    return auth.issue(settings, await auth.check(settings, data, google, device="pytest"))


async def test_a_token_without_a_session_comes_back_as_it_is(settings: Settings) -> None:
    token, _ = auth.issue_token(settings, "u1", "Ann")
    attempt = await auth.check(settings, Authenticate(token=token))
    assert attempt.request().session is None
    assert auth.issue(settings, attempt).token == token


async def test_a_session_token_is_renewed(settings: Settings) -> None:
    """Signing in with a device session's token asks the users worker to renew that session, and
    a fresh token of the same session comes back, expiring a whole lifetime from now."""
    first = await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": "u2", "name": "Bo"}}))
    attempt = await auth.check(settings, Authenticate(token=first.token))
    request = attempt.request()
    assert request.renew and request.session is not None and request.session.id == first.session_id
    renewed = auth.issue(settings, attempt)
    assert renewed.session_id == first.session_id and renewed.via == "dev"
    assert auth.verify_token(settings, renewed.token).session_id == first.session_id


async def test_a_bearer_header_keeps_its_token_and_checks_its_session(settings: Settings) -> None:
    first = await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": "u2", "name": "Bo"}}))
    attempt = auth.presented(settings, auth.verify_token(settings, first.token))
    assert attempt.request().renew and auth.issue(settings, attempt).token == first.token


async def test_dev_login_issues_a_token_of_a_new_session(settings: Settings) -> None:
    identity = await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": "u2", "name": "Bo"}}))
    assert identity.user.id == "u2" and auth.verify_token(settings, identity.token).user.name == "Bo"
    assert identity.session_id and identity.via == "dev"


async def test_dev_login_can_be_disabled() -> None:
    settings = Settings(jwt_secret=SECRET, dev_login=False)
    with pytest.raises(AuthError, match="dev login"):
        await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": "u2", "name": "Bo"}}))


async def test_dev_tokens_end_with_dev_login(settings: Settings) -> None:
    """A token from a dev sign-in is refused once dev login is off."""
    identity = await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": "u2", "name": "Bo"}}))
    with pytest.raises(AuthError, match="dev login"):
        auth.verify_token(Settings(jwt_secret=SECRET, dev_login=False), identity.token)


@pytest.mark.parametrize("user_id", ["google:1234", "invite:abc"])
async def test_dev_users_cannot_take_namespaced_ids(settings: Settings, user_id: str) -> None:
    """Google accounts are google:<sub>, invited users invite:<...>: no dev user can be one of them."""
    with pytest.raises(AuthError, match="may not begin"):
        await sign_in(settings, Authenticate.model_validate({"dev_user": {"id": user_id, "name": "Bo"}}))


async def test_google_is_refused_without_a_google_check(settings: Settings) -> None:
    """The default check never fakes success."""
    with pytest.raises(AuthError):
        await sign_in(settings, Authenticate(google_id_token="eyJ..."))


async def google_ann(id_token: str) -> auth.GoogleProfile:
    assert id_token == "eyJ..."
    return auth.GoogleProfile("1234", "Ann", "ann@example.com", None)


async def test_a_google_profile_issues_a_token(settings: Settings) -> None:
    """The profile of the Google check becomes the user (google:<sub>, the bare sub kept as the id
    it may have had before) and the session token's claims."""
    settings = settings.model_copy(update={"allowed_emails": "ann@example.com"})
    attempt = await auth.check(settings, Authenticate(google_id_token="eyJ..."), google_ann)
    assert attempt.request().legacy_id == "1234"
    identity = auth.issue(settings, attempt)
    assert identity.user.model_dump() == {"id": "google:1234", "name": "Ann", "image_url": None}
    assert auth.verify_token(settings, identity.token).email == "ann@example.com"
    assert auth.issue(settings, attempt, known_as="1234").user.id == "1234"


async def test_google_tokens_are_checked_against_the_allowed_emails_again(settings: Settings) -> None:
    """An email taken off BOOCHAT_ALLOWED_EMAILS cannot connect with the token it got before."""
    allowed = settings.model_copy(update={"allowed_emails": "ann@example.com"})
    identity = await sign_in(allowed, Authenticate(google_id_token="eyJ..."), google_ann)
    assert auth.verify_token(allowed, identity.token).user.id == "google:1234"
    with pytest.raises(AuthError, match="not allowed"):
        auth.verify_token(settings.model_copy(update={"allowed_emails": "bo@example.com"}), identity.token)


async def test_an_invite_makes_a_new_user(settings: Settings) -> None:
    attempt = await auth.check(settings, Authenticate.model_validate({"invite": "c0de", "name": " Cy "}))
    request = attempt.request()
    assert request.invite == "c0de" and request.user.name == "Cy" and request.user.id.startswith("invite:")
    assert request.session is not None and not request.renew and request.session.device == "unnamed device"


@pytest.mark.parametrize("secret", [None, "", "short"])
def test_a_usable_secret_is_required(secret: str | None) -> None:
    with pytest.raises(SystemExit, match="BOOCHAT_JWT_SECRET"):
        auth.require_secret(Settings(jwt_secret=secret))


def test_bearer_header() -> None:
    assert auth.bearer(["Bearer abc"]) == "abc"
    assert auth.bearer(["bearer  abc "]) == "abc"
    for values in (["Basic abc"], ["Bearer"], ["Bearer "], ["abc"], ["Bearer a", "Bearer b"]):
        with pytest.raises(AuthError):
            auth.bearer(values)
