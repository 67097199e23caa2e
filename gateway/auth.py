"""Who a connection belongs to: session tokens (JWT HS256), dev login, Google sign-in.

PROTOCOL.md, Authentication. Everything here is sans-I/O: Google ID tokens are checked by the
``google`` function passed to ``check`` (``gateway.google.GoogleVerifier.verify`` in the gateway),
and the users worker has the last word on device sessions and invites (``Attempt.request``, sent
by the hub), after which ``issue`` makes the token.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from boochat.settings import Settings
from contracts.internal import SessionGrant, SignIn
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


Via = Literal["google", "dev", "invite"]
VIAS: tuple[Via, ...] = ("google", "dev", "invite")
GOOGLE_PREFIX = "google:"  # Google accounts' user ids: google:<sub>
INVITE_PREFIX = "invite:"  # users who joined by an invite: invite:<random>
RESERVED_PREFIXES = (GOOGLE_PREFIX, INVITE_PREFIX)  # never a dev user's id: no dev user is a Google account
MAX_DEVICE_CHARS = 200


@dataclass(frozen=True)
class Identity:
    """An authenticated user, the session token they hold and when it expires; ``session_id`` its
    device session (None: a token without one, from ``boochat token`` or older), ``via`` how the
    session began."""

    user: User
    email: str
    token: str
    expires_at: datetime
    session_id: str | None = None
    via: Via | None = None


@dataclass(frozen=True)
class Attempt:
    """A credential the gateway has checked, for the users worker to have the last word on
    (``request``: the session is live, the invite usable); ``issue`` then gives the identity.

    ``token`` is kept as it is (a token without a session, or one sent in a handshake header);
    without it a fresh token is issued, valid until ``expires_at``."""

    user: User
    email: str
    expires_at: datetime
    via: Via | None = None
    session_id: str | None = None
    renew: bool = False
    token: str | None = None
    device: str = ""
    invite: str | None = None
    legacy_id: str | None = None

    def request(self) -> SignIn:
        grant = None
        if self.session_id is not None:
            grant = SessionGrant(id=self.session_id, device=self.device, expires_at=self.expires_at)
        return SignIn(
            user=self.user,
            email=self.email,
            session=grant,
            renew=self.renew,
            invite=self.invite,
            legacy_id=self.legacy_id,
        )


def require_secret(settings: Settings) -> str:
    """The signing key, or a clear refusal to start without a usable one."""
    secret = settings.jwt_secret
    if not secret:
        raise SystemExit("BOOCHAT_JWT_SECRET is not set: the gateway cannot sign session tokens")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SystemExit(f"BOOCHAT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def lifetime(settings: Settings) -> datetime:
    """When a token issued now expires (whole seconds, as JWT times are)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=settings.token_ttl_seconds)


def issue_token(
    settings: Settings,
    user_id: str,
    name: str,
    email: str = "",
    picture: str | None = None,
    session_id: str | None = None,
    via: Via | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, datetime]:
    """A new session token for this user (of the device session ``session_id``, begun ``via``)
    and the time it expires."""
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = (expires_at or lifetime(settings)).replace(microsecond=0)
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
    if session_id is not None:
        claims["sid"] = session_id
    if via is not None:
        claims["via"] = via
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
    session_id, via = claims.get("sid"), claims.get("via")
    if not (isinstance(user_id, str) and user_id and isinstance(name, str) and name):
        raise AuthError("invalid session token")
    if not isinstance(email, str) or not (picture is None or isinstance(picture, str)):
        raise AuthError("invalid session token")
    if not (session_id is None or (isinstance(session_id, str) and session_id)) or not (via is None or via in VIAS):
        raise AuthError("invalid session token")
    # What let the user in is checked again at every connect: the allowed emails, dev login.
    if via == "google" and email.lower() not in settings.emails:
        raise AuthError("this email is not allowed on this server")
    if via == "dev" and not settings.dev_login:
        raise AuthError("dev login is disabled")
    user = User(id=user_id, name=name, image_url=picture or None)
    return Identity(user, email, token, datetime.fromtimestamp(claims["exp"], UTC), session_id, via)


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


async def check(
    settings: Settings, data: Authenticate, google: GoogleCheck = refuse_google, device: str = ""
) -> Attempt:
    """What one ``authenticate`` request proves, for the users worker to confirm (``Attempt``).

    ``google`` checks a Google ID token and returns its profile, or raises AuthError (refused) or
    AuthUnavailableError (could not check). ``device`` names the device when the request does not.
    """
    device = (data.device or device or "unnamed device")[:MAX_DEVICE_CHARS]
    if data.token is not None:
        return presented(settings, verify_token(settings, data.token), renewing=True)
    if data.dev_user is not None:
        if not settings.dev_login:
            raise AuthError("dev login is disabled")
        dev = data.dev_user
        if dev.id.startswith(RESERVED_PREFIXES):
            raise AuthError(f"dev user ids may not begin with {' or '.join(RESERVED_PREFIXES)}")
        user = User(id=dev.id, name=dev.name, image_url=dev.image_url)
        return Attempt(user, dev.email, lifetime(settings), "dev", new_session(), device=device)
    if data.invite is not None:
        assert data.name is not None  # Authenticate: name goes with invite
        user = User(id=INVITE_PREFIX + uuid.uuid4().hex, name=data.name)
        return Attempt(user, "", lifetime(settings), "invite", new_session(), device=device, invite=data.invite)
    assert data.google_id_token is not None  # Authenticate holds exactly one of the four
    profile = await google(data.google_id_token)
    user = User(id=GOOGLE_PREFIX + profile.user_id, name=profile.name, image_url=profile.picture or None)
    return Attempt(
        user, profile.email, lifetime(settings), "google", new_session(), device=device, legacy_id=profile.user_id
    )


def presented(settings: Settings, identity: Identity, renewing: bool = False) -> Attempt:
    """A session token presented: its device session must be live. ``renewing`` (an ``authenticate``
    with it), a fresh token comes back and the session lives on; otherwise (a handshake header) the
    token is kept. A token without a session comes back as it is."""
    renew = renewing and identity.session_id is not None
    return Attempt(
        identity.user,
        identity.email,
        lifetime(settings) if renew else identity.expires_at,
        identity.via,
        identity.session_id,
        renew=identity.session_id is not None,
        token=None if renew else identity.token,
    )


def issue(settings: Settings, attempt: Attempt, known_as: str | None = None) -> Identity:
    """The identity of a sign-in the users worker confirmed (``known_as``: the id it knows the user
    by, when not the one asked), with its token."""
    user = attempt.user if known_as is None else attempt.user.model_copy(update={"id": known_as})
    if attempt.token is not None:
        return Identity(user, attempt.email, attempt.token, attempt.expires_at, attempt.session_id, attempt.via)
    token, expires_at = issue_token(
        settings, user.id, user.name, attempt.email, user.image_url, attempt.session_id, attempt.via, attempt.expires_at
    )
    return Identity(user, attempt.email, token, expires_at, attempt.session_id, attempt.via)


def new_session() -> str:
    return uuid.uuid4().hex


def bearer(values: list[str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` handshake header, or AuthError."""
    if len(values) != 1:
        raise AuthError("one Authorization header is expected")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("expected Authorization: Bearer <session token>")
    return token
