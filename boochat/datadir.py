"""The data folder (``BOOCHAT_DATA_DIR``): what a local stack keeps across restarts.

    data/
      boochat.lock     flock-ed by the ``boochat up`` running on the folder: a second one refuses
      session-secret   the session-token key made at the first start (mode 0600), used while
                       BOOCHAT_JWT_SECRET is unset
      mongo/           the Mongo stand-in's databases, one SQLite file each
      run/             ``mongo-url`` while the stack runs (how the other boochat commands find its
                       database), the stand-in's log and pid file

The lock is an flock on an open file, so the OS lets it go when its holder dies, even by SIGKILL;
the stand-in inherits it and holds it until it too has stopped writing the databases.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOCK = "boochat.lock"
SECRET = "session-secret"
DATABASES = "mongo"
RUN = "run"
MONGO_URL = "mongo-url"
SECRET_BYTES = 48  # token_urlsafe(48): 64 characters, twice the gateway's 32-byte minimum
MIN_SECRET_BYTES = 32


class DataDirError(Exception):
    """The folder cannot serve: in use, not running, a secret others can read. One line, for the user."""


@dataclass(frozen=True)
class DataDir:
    path: Path  # absolute, so every process of the stack means the same folder

    @classmethod
    def at(cls, path: Path) -> DataDir:
        return cls(Path(os.path.abspath(path.expanduser())))

    @property
    def databases(self) -> Path:
        return self.path / DATABASES

    @property
    def run(self) -> Path:
        return self.path / RUN

    def claim(self) -> Claim:
        """Create the folder if needed and hold its lock; DataDirError if a stack runs on it."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise DataDirError(f"cannot use {self.path} as the data folder (BOOCHAT_DATA_DIR): {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirError(
                f"{self.path} is in use by another boochat up (BOOCHAT_DATA_DIR): stop it, "
                "or give this one another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious operator
        self.run.mkdir(mode=0o700, exist_ok=True)
        (self.run / MONGO_URL).unlink(missing_ok=True)  # a run that died left it
        return Claim(self, fd)

    def in_use(self) -> bool:
        """Whether a ``boochat up`` holds the folder right now."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing also releases the shared lock, if we got it
        return False

    def mongo_url(self) -> str:
        """The URL of the stand-in of the stack running on this folder; DataDirError if none runs."""
        if not self.in_use():
            raise DataDirError(f"no boochat up is running on {self.path} (BOOCHAT_DATA_DIR)")
        try:
            return (self.run / MONGO_URL).read_text().strip()
        except FileNotFoundError:
            raise DataDirError(
                f"the boochat up running on {self.path} has no Mongo stand-in to offer (still starting, or "
                "it uses BOOCHAT_MONGO_URL: set that here too)"
            ) from None

    def session_secret(self) -> str | None:
        """The generated session secret, None before the first start."""
        path = self.path / SECRET
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as file:
            mode = os.fstat(file.fileno()).st_mode & 0o777
            if mode & 0o077:
                raise DataDirError(f"{path} can be read by others (mode {mode:04o}): chmod 600 it")
            secret = file.read().strip()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise DataDirError(f"{path} holds fewer than {MIN_SECRET_BYTES} bytes: delete it to make a new one")
        return secret


class Claim:
    """The running ``boochat up``'s hold on its data folder (``DataDir.claim()``); ``release()`` or
    the end of the process lets it go."""

    def __init__(self, folder: DataDir, fd: int) -> None:
        self.folder = folder
        self.fd = fd  # the lock: whoever inherits it (the stand-in) holds the folder as long as we do

    def session_secret(self) -> tuple[str, bool]:
        """The folder's session secret, made now if it has none; and whether it was made now."""
        existing = self.folder.session_secret()
        if existing is not None:
            return existing, False
        secret = secrets.token_urlsafe(SECRET_BYTES)
        _write_private(self.folder.path / SECRET, secret + "\n")
        return secret, True

    def advertise(self, mongo_url: str) -> None:
        """Tell the boochat commands run on this folder where the stack's database is."""
        _write_private(self.folder.run / MONGO_URL, mongo_url + "\n")

    def withdraw(self) -> None:
        (self.folder.run / MONGO_URL).unlink(missing_ok=True)

    def release(self) -> None:
        self.withdraw()
        os.close(self.fd)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, mode 0600, whole or not at all (a crash leaves no half file)."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
