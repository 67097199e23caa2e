"""The notifications worker's composition root: the push port is chosen here, from settings, unless
a test passes its own; its retries ask storage whether a push was withdrawn meanwhile."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.notifications.handlers import COMMANDS, MIRRORS, PROJECTIONS, reactions
from workers.notifications.sender import LogSender, Sender, create_sender
from workers.notifications.storage import DOCUMENTS, withdrawn
from workers.runtime.service import create
from workers.runtime.tables import Worker


def worker(sender: Sender) -> Worker:
    return Worker("notifications", COMMANDS, reactions(sender), DOCUMENTS, PROJECTIONS, mirrors=MIRRORS)


WORKER = worker(LogSender())  # the worker's shape, for replay; create_app builds one with the real sender


def default_sender(settings: Settings) -> Sender:
    """firebase-admin when BOOCHAT_FCM_CREDENTIALS is set (its retries skip the pushes of items
    deleted meanwhile), else the log. Raises ``CredentialsError`` (a ``SystemExit``) for a bad file."""
    return create_sender(settings.fcm_credentials, settings.fcm_endpoint, withdrawn)


def create_app(settings: Settings, sender: Sender | None = None) -> FastStream:
    """Raises ``CredentialsError`` (a ``SystemExit`` naming BOOCHAT_FCM_CREDENTIALS) for a bad file."""
    sender = sender or default_sender(settings)
    app = create(worker(sender), settings)
    app.after_shutdown(sender.close)  # after in-flight pushes have finished
    return app
