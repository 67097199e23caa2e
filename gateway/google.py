"""Google sign-in: check a Google ID token with google-auth, then turn its claims into a profile.

google-auth's ``verify_token`` checks the signature against the certificates at
``BOOCHAT_GOOGLE_CERTS_URL``, ``iat``/``exp`` and the audience; ``verify_oauth2_token`` would also
check the issuer but always fetches Google's own URL, so the issuer is checked here. Fetching is
blocking: it runs in a worker thread, and certificates are kept as long as Google's
``Cache-Control: max-age`` says, so most sign-ins fetch nothing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import google.auth.transport.requests
import jwt
import structlog
from google.auth import exceptions, transport
from google.oauth2 import id_token

from boochat.settings import Settings
from gateway.auth import AuthError, AuthUnavailableError, GoogleProfile

log = structlog.get_logger("gateway.google")

ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 10  # our clock and Google's may differ a little: iat and exp get this leeway
FETCH_TIMEOUT_SECONDS = 5.0
MAX_CACHE_SECONDS = 24 * 3600
MAX_NAME_CHARS = 100  # as dev user names (PROTOCOL.md, Limits)


class GoogleVerifier:
    """Checks Google ID tokens for one gateway against ``settings``.

    A token is accepted only when Google signed it, for our client id (``BOOCHAT_GOOGLE_CLIENT_ID``;
    unset: Google sign-in is off), by Google's issuer, not expired, with ``email_verified`` true and
    an email in ``BOOCHAT_ALLOWED_EMAILS`` (case-insensitive). An empty or unset list allows nobody:
    each address has to be let in on purpose.
    """

    def __init__(self, settings: Settings, request: transport.Request | None = None) -> None:
        self._settings = settings
        self._request = request or CachedCerts(google.auth.transport.requests.Request())

    async def verify(self, token: str) -> GoogleProfile:
        client_id = self._settings.google_client_id
        if not client_id:
            raise AuthError("Google sign-in is not configured on this server")
        claims = await asyncio.to_thread(self._verified_claims, token, client_id)
        return profile(claims, self._settings.emails)

    def _verified_claims(self, token: str, client_id: str) -> Mapping[str, Any]:
        try:
            return id_token.verify_token(
                token,
                self._request,
                audience=client_id,  # never None: google-auth would then skip the audience check
                certs_url=self._settings.google_certs_url,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except exceptions.TransportError as exc:
            log.warning("google_certs_unavailable", error=str(exc))
            raise AuthUnavailableError("Google sign-in is unavailable, try again later") from None
        # ValueError, TypeError: malformed tokens (bad segments, claims of the wrong type); PyJWTError:
        # google-auth's JWK-set path, taken when the certs URL serves {"keys": [...]}.
        except (exceptions.GoogleAuthError, ValueError, TypeError, jwt.PyJWTError) as exc:
            log.info("google_token_refused", reason=without_token(str(exc), token))
            raise AuthError("invalid Google ID token") from None


def without_token(reason: str, token: str) -> str:
    """google-auth's reason with the token and each of its segments cut out: some of its messages
    quote the token they refuse ("Wrong number of segments in token: ...")."""
    for part in sorted({token, *token.split(".")}, key=len, reverse=True):
        if len(part) >= 8:  # shorter pieces are not secrets, and would cut words out of the reason
            reason = reason.replace(part, "<token>")
    return reason[:300]


def profile(claims: Mapping[str, Any], allowed_emails: frozenset[str]) -> GoogleProfile:
    """The profile of a token whose signature, audience and times google-auth has checked."""
    if claims.get("iss") not in ISSUERS:
        raise AuthError("invalid Google ID token")
    user_id, email = claims.get("sub"), claims.get("email")
    if not (isinstance(user_id, str) and user_id and isinstance(email, str) and email):
        raise AuthError("invalid Google ID token")
    if claims.get("email_verified") is not True:
        raise AuthError("this Google account's email is not verified")
    if email.lower() not in allowed_emails:
        log.info("google_email_not_allowed", email=email)
        raise AuthError("this email is not allowed on this server")
    name, picture = claims.get("name"), claims.get("picture")
    name = name.strip() if isinstance(name, str) else ""
    name = (name or email.partition("@")[0])[:MAX_NAME_CHARS]
    return GoogleProfile(user_id, name, email, picture if isinstance(picture, str) and picture else None)


@dataclass(frozen=True)
class _Response(transport.Response):
    _status: int
    _headers: Mapping[str, str]
    _data: bytes

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class CachedCerts(transport.Request):
    """A google-auth transport for certificate GETs that keeps each answer for its ``max-age``.

    Without ``max-age`` (or with ``no-store``/``no-cache``) nothing is kept. Only successful JSON
    answers are kept; anything else is a TransportError. One fetch at a time: sign-ins arriving
    together when the cache is cold wait for it instead of each fetching.
    """

    def __init__(self, inner: transport.Request, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, _Response]] = {}

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> transport.Response:
        if method != "GET" or body is not None:
            raise _transport_error("CachedCerts only fetches certificates (GET)")
        with self._lock:
            kept = self._kept.get(url)
            if kept is not None and self._clock() < kept[0]:
                return kept[1]
            response = self._fetch(url, headers)
            seconds = max_age(response.headers)
            if seconds > 0:
                self._kept[url] = (self._clock() + seconds, response)
            else:
                self._kept.pop(url, None)
            return response

    def _fetch(self, url: str, headers: Any) -> _Response:
        response = self._inner(url, method="GET", headers=headers, timeout=FETCH_TIMEOUT_SECONDS)
        if response.status != HTTPStatus.OK:
            raise _transport_error(f"certificates at {url}: HTTP {response.status}")
        try:
            if not isinstance(json.loads(response.data), dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise _transport_error(f"certificates at {url}: {exc}") from None
        return _Response(response.status, dict(response.headers), bytes(response.data))


def _transport_error(message: str) -> exceptions.TransportError:
    """The error google-auth expects of a transport (and passes on as it is), made in one place."""
    return exceptions.TransportError(message)  # type: ignore[no-untyped-call]  # google-auth has no annotations


def max_age(headers: Mapping[str, str]) -> int:
    """Seconds a response may be kept: its ``Cache-Control: max-age`` (capped), else 0."""
    value = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    seconds = 0
    for directive in value.lower().split(","):
        name, _, argument = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age" and argument.strip().isdigit():
            seconds = int(argument)
    return min(seconds, MAX_CACHE_SECONDS)
