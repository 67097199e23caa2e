"""The push port (``Sender``) and its adapters: firebase-admin, a log for runs without credentials,
and bounded retries with exponential backoff around either.

firebase-admin is synchronous (requests): each send runs in a thread.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import firebase_admin
import google.auth.exceptions
import requests.adapters
import structlog
from firebase_admin import credentials, exceptions, messaging
from urllib3.util.retry import Retry

from workers.notifications.domain import Outcome, Push, Target, retry_delay

log = structlog.get_logger()

HTTP_TIMEOUT = 10.0  # seconds per FCM call (firebase-admin's default is 120)
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the second attempt; doubles after each


class Sender(Protocol):
    async def send(self, push: Push, target: Target) -> Outcome: ...

    async def close(self) -> None: ...


class CredentialsError(SystemExit):
    """The service-account file cannot be used: the worker must not start."""

    def __init__(self, path: str, problem: object) -> None:
        super().__init__(f"BOOCHAT_FCM_CREDENTIALS={path}: not a usable Firebase service-account file ({problem})")


class LogSender:
    """Without BOOCHAT_FCM_CREDENTIALS: say what would be pushed, and push nothing."""

    async def send(self, push: Push, target: Target) -> Outcome:
        log.info(
            "push not sent: no BOOCHAT_FCM_CREDENTIALS",
            user_id=push.user_id,
            target=target.short(),
            title=push.title,
            body=push.body,
            data=push.data,
        )
        return Outcome.SENT

    async def close(self) -> None:
        pass


# Whether a push was withdrawn since it was planned (its item deleted): a storage query, passed in.
Withdrawn = Callable[[Push], Awaitable[bool]]


class Retrying:
    """Another sender, tried again while it answers ``RETRY``, up to ``attempts`` times in all. With
    ``withdrawn``, a push whose item was deleted while it waited for its next attempt is not tried
    again (``WITHDRAWN``)."""

    def __init__(
        self, sender: Sender, attempts: int = ATTEMPTS, backoff: float = BACKOFF, withdrawn: Withdrawn | None = None
    ) -> None:
        self.sender = sender
        self.attempts = attempts
        self.backoff = backoff
        self.withdrawn = withdrawn

    async def send(self, push: Push, target: Target) -> Outcome:
        for attempt in range(1, self.attempts + 1):
            outcome = await self.sender.send(push, target)
            if outcome is not Outcome.RETRY:
                return outcome
            if attempt < self.attempts:
                await asyncio.sleep(retry_delay(attempt, self.backoff))  # backoff, not synchronisation
                if self.withdrawn is not None and await self.withdrawn(push):
                    log.info("push withdrawn: its item was deleted", user_id=push.user_id, item_id=push.item_id)
                    return Outcome.WITHDRAWN
        log.warning("push given up", user_id=push.user_id, target=target.short(), attempts=self.attempts)
        return Outcome.RETRY

    async def close(self) -> None:
        await self.sender.close()


class FirebaseSender:
    """Pushes through firebase-admin's ``messaging.send``, with an App of its own."""

    def __init__(self, credentials_path: str, endpoint: str) -> None:
        try:
            certificate = credentials.Certificate(credentials_path)
            self.app = firebase_admin.initialize_app(
                certificate, {"httpTimeout": HTTP_TIMEOUT}, name=f"boochat-{uuid.uuid4().hex}"
            )
        except (OSError, ValueError) as error:  # missing, not JSON, not a service account, bad key
            raise CredentialsError(credentials_path, error) from None
        try:
            self.url = route(self.app, endpoint)
        except (ValueError, KeyError) as error:  # no project_id, or a bad endpoint template
            firebase_admin.delete_app(self.app)
            raise CredentialsError(credentials_path, error) from None

    async def send(self, push: Push, target: Target) -> Outcome:
        message = build_message(push, target)
        try:
            await asyncio.to_thread(messaging.send, message, app=self.app)
        except messaging.UnregisteredError:
            return Outcome.GONE
        except exceptions.InvalidArgumentError as error:
            return Outcome.GONE if about_target(error) else self._failed(push, target, error)
        except exceptions.FirebaseError as error:
            status = error.http_response.status_code if error.http_response is not None else None
            if status is None or status == 429 or status >= 500:  # no answer, rate limited, unavailable
                return Outcome.RETRY
            return self._failed(push, target, error)
        except google.auth.exceptions.TransportError:  # the token endpoint did not answer
            return Outcome.RETRY
        except google.auth.exceptions.RefreshError as error:  # the token endpoint refused
            return Outcome.RETRY if getattr(error, "retryable", False) else self._failed(push, target, error)
        return Outcome.SENT

    def _failed(self, push: Push, target: Target, error: Exception) -> Outcome:
        log.error("push refused", user_id=push.user_id, target=target.short(), error=str(error)[:300])
        return Outcome.FAILED

    async def close(self) -> None:
        await asyncio.to_thread(firebase_admin.delete_app, self.app)


def route(app: firebase_admin.App, endpoint: str) -> str:
    """Point ``app``'s messaging at ``endpoint`` (BOOCHAT_FCM_ENDPOINT); the URL it now posts to.

    firebase-admin has no option for the FCM URL: ``_MessagingService.__init__`` formats its
    ``FCM_URL`` constant into the instance attribute ``_fcm_url``, and the service is created once
    per App and cached. So the service ``messaging.send(..., app=app)`` will use is created here and
    its ``_fcm_url`` replaced: the one place that knows firebase-admin's insides (checked against
    7.7). Its HTTP session also retries 500/503 by itself; an adapter mounted for the endpoint's
    origin turns that off, so retries happen in ``Retrying`` only (the OAuth token request, to the
    credentials' ``token_uri``, is google-auth's and is left alone).
    """
    service = messaging._get_messaging_service(app)
    if not hasattr(service, "_fcm_url"):
        raise RuntimeError("firebase-admin changed: _MessagingService._fcm_url is gone; see route()")
    url = endpoint.format(project_id=app.project_id)
    service._fcm_url = url
    parts = urlsplit(url)
    no_status_retries = Retry(total=None, connect=1, read=0, status=0, respect_retry_after_header=False)
    service._client.session.mount(
        f"{parts.scheme}://{parts.netloc}", requests.adapters.HTTPAdapter(max_retries=no_status_retries)
    )
    return url


def build_message(push: Push, target: Target) -> messaging.Message:
    addressed: dict[str, Any] = {"fid": target.value} if target.kind == "fid" else {"token": target.value}
    with warnings.catch_warnings():
        # firebase-admin 7.7 deprecates ``token`` for ``fid``; registration tokens remain what
        # clients send today (PROTOCOL.md register_device).
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            notification=messaging.Notification(title=push.title, body=push.body),
            data=dict(push.data),
            android=messaging.AndroidConfig(
                collapse_key=push.collapse_key,
                priority="high",
                notification=messaging.AndroidNotification(tag=push.tag),
            ),
            **addressed,
        )


def about_target(error: exceptions.FirebaseError) -> bool:
    """Whether an INVALID_ARGUMENT names the token (``message.token``/``message.fid``), not the message."""
    response = error.http_response
    try:
        details = response.json()["error"].get("details", []) if response is not None else []
    except (ValueError, KeyError, TypeError, AttributeError):
        details = []
    fields = [v.get("field", "") for d in details if isinstance(d, dict) for v in d.get("fieldViolations", [])]
    if fields:
        return any(field in ("message.token", "message.fid") for field in fields)
    return "registration token" in str(error).lower()


def create_sender(credentials_path: str | None, endpoint: str, withdrawn: Withdrawn | None = None) -> Sender:
    """The sender settings ask for: firebase-admin with retries (none of a push ``withdrawn`` says
    is withdrawn), or the log without credentials."""
    if not credentials_path:
        return LogSender()
    return Retrying(FirebaseSender(credentials_path, endpoint), withdrawn=withdrawn)
