"""Who a connection belongs to: session tokens (JWT HS256), dev login, Google sign-in.

PROTOCOL.md, Authentication. Everything here is sans-I/O: Google ID tokens are checked by the
``google`` function passed to ``sign_in`` (``gateway.google.GoogleVerifier.verify`` in the gateway).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from boochat.settings import Settings
from contracts.requests import Authenticate
from contracts.shapes import User

ISSUER = "boochat"
AUDIENCE = "boochat"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "name", "iss", "aud", "iat", "exp"]
MIN_SECRET_BYTES = 32


class AuthError(Exception):
    """A credential was refused: the client gets ``unauthenticated`` with this message."""


class AuthUnavailableError(Exception):
    """A credential could not be checked right now (Google's certificates unreachable): the client
    gets ``unavailable`` and may try again; the credential itself was not judged."""


@dataclass(frozen=True)
class Identity:
    """An authenticated user, the session token they hold and when it expires."""

    user: User
    email: str
    token: str
    expires_at: datetime


def require_secret(settings: Settings) -> str:
    """The signing key, or a clear refusal to start without a usable one."""
    secret = settings.jwt_secret
    if not secret:
        raise SystemExit("BOOCHAT_JWT_SECRET is not set: the gateway cannot sign session tokens")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SystemExit(f"BOOCHAT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def issue_token(
    settings: Settings, user_id: str, name: str, email: str = "", picture: str | None = None
) -> tuple[str, datetime]:
    """A new session token for this user and the time it expires."""
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = now + timedelta(seconds=settings.token_ttl_seconds)
    claims: dict[str, object] = {
        "sub": user_id,
        "name": name,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if email:
        claims["email"] = email
    if picture:
        claims["picture"] = picture
    return jwt.encode(claims, require_secret(settings), algorithm=ALGORITHM), expires_at


def verify_token(settings: Settings, token: str) -> Identity:
    """The identity a session token carries; refuses any other algorithm, issuer, audience or key."""
    try:
        claims = jwt.decode(
            token,
            require_secret(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("session token expired") from None
    except jwt.PyJWTError:
        raise AuthError("invalid session token") from None
    user_id, name = claims["sub"], claims["name"]
    email, picture = claims.get("email", ""), claims.get("picture")
    if not (isinstance(user_id, str) and user_id and isinstance(name, str) and name):
        raise AuthError("invalid session token")
    if not isinstance(email, str) or not (picture is None or isinstance(picture, str)):
        raise AuthError("invalid session token")
    user = User(id=user_id, name=name, image_url=picture or None)
    return Identity(user, email, token, datetime.fromtimestamp(claims["exp"], UTC))


@dataclass(frozen=True)
class GoogleProfile:
    user_id: str
    name: str
    email: str
    picture: str | None


GoogleCheck = Callable[[str], Awaitable[GoogleProfile]]


async def refuse_google(id_token: str) -> GoogleProfile:
    """A Google check for places without one: every Google token is refused, never accepted."""
    raise AuthError("Google sign-in is not available on this server")


async def sign_in(settings: Settings, data: Authenticate, google: GoogleCheck = refuse_google) -> Identity:
    """The identity behind one ``authenticate`` request; a new token unless a token was presented.

    ``google`` checks a Google ID token and returns its profile, or raises AuthError (refused) or
    AuthUnavailableError (could not check).
    """
    if data.token is not None:
        return verify_token(settings, data.token)
    if data.dev_user is not None:
        if not settings.dev_login:
            raise AuthError("dev login is disabled")
        dev = data.dev_user
        return _issue(settings, User(id=dev.id, name=dev.name, image_url=dev.image_url), dev.email)
    assert data.google_id_token is not None  # Authenticate holds exactly one of the three
    profile = await google(data.google_id_token)
    user = User(id=profile.user_id, name=profile.name, image_url=profile.picture or None)
    return _issue(settings, user, profile.email)


def _issue(settings: Settings, user: User, email: str) -> Identity:
    token, expires_at = issue_token(settings, user.id, user.name, email, user.image_url)
    return Identity(user, email, token, expires_at)


def bearer(values: list[str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` handshake header, or AuthError."""
    if len(values) != 1:
        raise AuthError("one Authorization header is expected")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("expected Authorization: Bearer <session token>")
    return token
