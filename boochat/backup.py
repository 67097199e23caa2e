"""``boochat backup DIR`` and ``boochat restore DIR``: a copy of what a stack keeps, taken while it
runs, and put back into an empty data folder and namespace.

    DIR/
      manifest.json    written last: when, which namespace, what is in, what is not (``Manifest``)
      mongo/<db>.db    each database of the Mongo stand-in (one SQLite file each), self-contained
      events.jsonl     the event log ``<ns>.events.log``, one ``Entry`` a line, oldest first
      session-secret   the data folder's session secret (mode 0600), when it has one

The databases are copied first, each with SQLite's online backup API: one read transaction per
file, which in WAL mode does not block the stand-in's writes, so each copy is that database at one
moment. Then a marker goes into the log and the log is read from its first entry up to the marker:
the copy of the log holds every event the copied databases had published. (Databases are copied one
after the other, not at one instant; each worker owns its database, and what one had not yet
taken from another's events is in the log, for ``boochat replay``.)

A restore refuses a data folder that holds data, and a namespace whose queues exist. The log's
entries go back through an exchange of the restore's own bound to the log alone, with their
routing keys (replay reads an event's type there) and properties, so no worker queue gets them.

With ``BOOCHAT_MONGO_URL`` set the databases are that server's: they are not copied (``mongodump``
is the tool), and the manifest says so.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pydantic import BaseModel, ConfigDict

from boochat import topology
from boochat.datadir import DATABASES, LOCK, RUN, SECRET, DataDir, DataDirError
from boochat.settings import Settings
from contracts.common import format_time
from workers.runtime.replay import write_marker  # replay takes a MARKER entry for a marker, not an event

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
PREFETCH = 500
IDLE_TIMEOUT = 30.0  # seconds without a delivery before the log is taken to have stopped delivering
PUBLISH_BATCH = 256  # log entries published at once, their confirmations awaited together
MONGODUMP = (
    "the databases: BOOCHAT_MONGO_URL is set, so they are that MongoDB's; back them up with "
    "mongodump --oplog (and restore with mongorestore --oplogReplay)"
)
JWT_SECRET = "the session secret: BOOCHAT_JWT_SECRET is set; keep it with your settings"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why in one line."""


# What a backup holds --------------------------------------------------------------------------


class Database(BaseModel):
    """One database copied: its file under ``mongo/`` and the documents of each collection."""

    model_config = ConfigDict(frozen=True)

    name: str
    collections: dict[str, int]

    @property
    def documents(self) -> int:
        return sum(self.collections.values())


class Log(BaseModel):
    """The copy of the event log: ``entries`` lines of ``events.jsonl``, the stream offsets they
    had, and the backup's marker (the first entry not copied)."""

    model_config = ConfigDict(frozen=True)

    entries: int
    first_offset: int | None
    last_offset: int | None
    marker: str


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: Literal[1] = 1
    boochat: str
    created_at: str
    namespace: str
    databases: list[Database] | None  # None: not copied (BOOCHAT_MONGO_URL is set)
    log: Log
    session_secret: bool
    not_covered: list[str]  # what a restore of this backup does not bring back, one sentence each


class Entry(BaseModel):
    """One log entry as ``events.jsonl`` keeps it: where it was published, its body, its properties.
    Headers keep JSON's types; bytes, times and decimals in them become strings. Not kept: a
    per-message ``expiration`` (a stream ignores it)."""

    model_config = ConfigDict(frozen=True)

    offset: int
    exchange: str
    routing_key: str
    body: str | None = None  # the body, when it is UTF-8 (every event is JSON)
    body_base64: str | None = None  # otherwise
    headers: dict[str, Any] = {}
    content_type: str | None = None
    content_encoding: str | None = None
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    message_id: str | None = None
    timestamp: datetime | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    @classmethod
    def of(cls, message: AbstractIncomingMessage, offset: int) -> Entry:
        try:
            text: dict[str, str] = {"body": message.body.decode()}
        except UnicodeDecodeError:
            text = {"body_base64": base64.b64encode(message.body).decode()}
        headers = {k: _json(v) for k, v in (message.headers or {}).items() if k != "x-stream-offset"}
        return cls(
            offset=offset,
            exchange=message.exchange or "",
            routing_key=message.routing_key or "",
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=int(message.delivery_mode) if message.delivery_mode is not None else None,
            priority=message.priority,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=message.message_id,
            timestamp=message.timestamp,
            type=message.type,
            user_id=message.user_id,
            app_id=message.app_id,
            **text,
        )

    def message(self) -> aio_pika.Message:
        body = self.body.encode() if self.body is not None else base64.b64decode(self.body_base64 or "")
        return aio_pika.Message(
            body,
            headers=self.headers or None,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            delivery_mode=self.delivery_mode,
            priority=self.priority,
            correlation_id=self.correlation_id,
            reply_to=self.reply_to,
            message_id=self.message_id,
            timestamp=self.timestamp,
            type=self.type,
            user_id=self.user_id,
            app_id=self.app_id,
        )


def _json(value: Any) -> Any:
    """A header value as JSON can keep it."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def read_manifest(folder: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{folder} holds no complete backup (no {MANIFEST})") from None
    except ValueError as error:
        raise BackupError(f"{folder / MANIFEST} is not a Boochat backup manifest: {error}") from None


# Backup ---------------------------------------------------------------------------------------


async def backup(settings: Settings, target: Path) -> Manifest:
    """Copy the data folder's databases (unless BOOCHAT_MONGO_URL is set), its session secret and
    the event log into ``target`` (a new or empty folder); the manifest last."""
    folder = DataDir.at(settings.data_dir)
    _make_empty(target)
    not_covered = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        if not await topology.queue_exists(connection, settings.names.log):
            raise BackupError(f"there is no event log {settings.names.log} (which BOOCHAT_NAMESPACE?)")
        databases: list[Database] | None = None
        if settings.mongo_url:
            not_covered.append(MONGODUMP)
        else:
            # In a thread: the broker's heartbeats go on meanwhile.
            databases = await asyncio.to_thread(copy_databases, folder.databases, target / DATABASES)
        log = await _copy_log(connection, settings, target / EVENTS)
    secret = _copy_secret(folder, target)
    if not secret:
        not_covered.append(
            JWT_SECRET if settings.jwt_secret else f"the session secret: {folder.path} holds none (BOOCHAT_DATA_DIR)"
        )
    manifest = Manifest(
        boochat=version("boochat"),
        created_at=format_time(datetime.now(UTC)),
        namespace=settings.namespace,
        databases=databases,
        log=log,
        session_secret=secret,
        not_covered=not_covered,
    )
    _write(target / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    _sync(target)
    return manifest


def _make_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty folder: back up into a new one")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)


def copy_databases(source: Path, target: Path) -> list[Database]:
    """Each ``*.db`` under ``source`` into ``target``: SQLite's online backup of the whole file in
    one step (one read transaction: that file at one moment, however it is written meanwhile), then
    checked, as one file without a journal."""
    target.mkdir(mode=0o700, exist_ok=True)
    copied = []
    for path in sorted(source.glob("*.db")) if source.is_dir() else []:
        copied.append(Database(name=path.stem, collections=_copy_sqlite(path, target / path.name, "DELETE")))
    _sync(target)
    return copied


def _copy_sqlite(source: Path, target: Path, journal: str) -> dict[str, int]:
    """Copy one SQLite database file (``source`` opened read-only); the documents per collection."""
    try:
        reading = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        try:
            writing = sqlite3.connect(target)
            try:
                reading.backup(writing)  # pages=-1: all at once
                writing.execute(f"PRAGMA journal_mode={journal}")
                [(verdict,)] = writing.execute("PRAGMA quick_check").fetchall()
                if verdict != "ok":
                    raise BackupError(f"the copy of {source} fails SQLite's check: {verdict}")
                collections = _collections(writing)
            finally:
                writing.close()
        finally:
            reading.close()
    except sqlite3.Error as error:
        raise BackupError(f"copying {source} failed: {error}") from None
    with target.open("rb") as file:
        os.fsync(file.fileno())
    return collections


def _collections(database: sqlite3.Connection) -> dict[str, int]:
    """The stand-in's collections (a table each, with ``_id`` and ``data`` columns) and their sizes."""
    tables = [name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    counts = {}
    for table in tables:
        columns = {row[1] for row in database.execute(f'PRAGMA table_info("{table}")')}
        if {"_id", "data"} <= columns:
            [(count,)] = database.execute(f'SELECT count(*) FROM "{table}"').fetchall()
            counts[table] = count
    return counts


def _copy_secret(folder: DataDir, target: Path) -> bool:
    try:
        secret = folder.session_secret()
    except DataDirError as error:
        raise BackupError(str(error)) from None
    if secret is None:
        return False
    _write(target / SECRET, secret + "\n")
    return True


async def _copy_log(connection: AbstractConnection, settings: Settings, target: Path) -> Log:
    """Every entry of the log up to a marker written now, into ``target`` (JSON lines)."""
    marker = await _mark(connection, settings)
    partial = target.with_name(target.name + ".partial")
    entries, first, last = 0, None, None
    with partial.open("w") as file:
        async for message, offset in _read(connection, settings, marker):
            file.write(Entry.of(message, offset).model_dump_json(exclude_defaults=True) + "\n")
            entries += 1
            first = offset if first is None else first
            last = offset
        file.flush()
        os.fsync(file.fileno())
    partial.replace(target)
    return Log(entries=entries, first_offset=first, last_offset=last, marker=marker)


async def _mark(connection: AbstractConnection, settings: Settings) -> str:
    """A marker in the log: what is before it is copied."""
    return await write_marker(connection, settings, "backup", {"backup": True})


async def _read(
    connection: AbstractConnection, settings: Settings, marker: str
) -> AsyncIterator[tuple[AbstractIncomingMessage, int]]:
    """``(message, offset)`` for every log entry from the first up to the marker (not yielded)."""
    channel = await connection.channel()  # a stream consumer needs a prefetch and its own channel
    try:
        await channel.set_qos(prefetch_count=PREFETCH)
        log = await channel.declare_queue(settings.names.log, passive=True)
        async with log.iterator(arguments={"x-stream-offset": "first"}, timeout=IDLE_TIMEOUT) as messages:
            async for message in messages:
                await message.ack()
                if message.message_id == marker:
                    return
                offset = message.headers["x-stream-offset"]  # set by RabbitMQ on every stream delivery
                assert isinstance(offset, int)
                yield message, offset
    finally:
        await channel.close()


# Restore --------------------------------------------------------------------------------------


async def restore(settings: Settings, source: Path) -> Manifest:
    """Put the backup in ``source`` back: the databases and the session secret into the (empty) data
    folder, the log's entries into the (empty) namespace's log. Refuses before writing anything
    when either holds data."""
    manifest = read_manifest(source)
    if manifest.namespace != settings.namespace:
        raise BackupError(
            f"{source} is a backup of namespace {manifest.namespace!r}, and its databases are named after "
            f"it: set BOOCHAT_NAMESPACE={manifest.namespace}"
        )
    if manifest.databases is not None and settings.mongo_url:
        raise BackupError(
            "BOOCHAT_MONGO_URL is set, and this backup holds the Mongo stand-in's databases, which go into "
            "the data folder: unset it to restore them there"
        )
    entries = _entries(source / EVENTS)  # read (and checked) before anything is written
    folder = DataDir.at(settings.data_dir)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        await _refuse_used_namespace(connection, settings)
        try:
            claim = folder.claim()  # no boochat up starts on the folder while we fill it
        except DataDirError as error:
            raise BackupError(str(error)) from None
        with claim:
            _refuse_used_folder(folder)
            if manifest.databases is not None:
                names = [database.name for database in manifest.databases]
                await asyncio.to_thread(restore_databases, source / DATABASES, folder.databases, names)
            if manifest.session_secret:
                _write((folder.path / SECRET), (source / SECRET).read_text(), exclusive=True)
            _sync(folder.path)
        await _publish(connection, settings, entries)
    return manifest


def _entries(path: Path) -> list[Entry]:
    try:
        with path.open() as file:
            return [Entry.model_validate_json(line) for line in file if line.strip()]
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: the backup is incomplete") from None
    except ValueError as error:
        raise BackupError(f"{path} holds a line that is no log entry: {error}") from None


async def _refuse_used_namespace(connection: AbstractConnection, settings: Settings) -> None:
    names = topology.queue_names(settings.names, settings.retry_delays).names
    present = [name for name in names if await topology.queue_exists(connection, name)]
    if present:
        raise BackupError(
            f"namespace {settings.namespace!r} is in use ({', '.join(present[:3])}{', ...' if len(present) > 3 else ''}"
            f" exist): restore goes into an empty one (stop its stack, then boochat drop {settings.namespace})"
        )


def _refuse_used_folder(folder: DataDir) -> None:
    """Only what a ``boochat up`` that kept nothing leaves is allowed: the lock, ``run/``, an empty ``mongo/``."""
    held = [
        path.name
        for path in sorted(folder.path.iterdir())
        if path.name not in {LOCK, RUN} and not (path.name == DATABASES and path.is_dir() and not any(path.iterdir()))
    ]
    if held:
        raise BackupError(
            f"{folder.path} (BOOCHAT_DATA_DIR) is not empty ({', '.join(held)}): restore goes into an empty data folder"
        )


def restore_databases(source: Path, target: Path, names: Iterable[str]) -> None:
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in names:
        _copy_sqlite(source / f"{name}.db", target / f"{name}.db", "WAL")  # the stand-in's journal
    _sync(target)


async def _publish(connection: AbstractConnection, settings: Settings, entries: list[Entry]) -> None:
    """The entries into the namespace's log, in order, through an exchange bound to the log alone
    (each keeps its routing key: replay reads the event's type there; the events exchange would
    hand them to any worker queue bound meanwhile too)."""
    channel = await connection.channel(on_return_raises=True)  # publisher confirms; unroutable raises
    own = f"{settings.names.namespace}.restore.{uuid.uuid4().hex[:8]}"
    try:
        await topology.declare_exchanges(channel, settings)  # as boochat up's processes do: the log is one
        exchange = await channel.declare_exchange(own, aio_pika.ExchangeType.FANOUT, durable=False)
        log = await channel.declare_queue(settings.names.log, passive=True)
        await log.bind(exchange)
        try:
            for start in range(0, len(entries), PUBLISH_BATCH):
                batch = entries[start : start + PUBLISH_BATCH]
                # Written in the order the tasks were made (aiormq's channel lock is FIFO).
                await asyncio.gather(
                    *(exchange.publish(e.message(), routing_key=e.routing_key, mandatory=True) for e in batch)
                )
        finally:
            await _remove(channel, own)
    finally:
        if not channel.is_closed:
            await channel.close()


async def _remove(channel: AbstractChannel, exchange: str) -> None:
    if not channel.is_closed:
        await channel.exchange_delete(exchange)  # its binding to the log goes with it


# Files ----------------------------------------------------------------------------------------


def _write(path: Path, text: str, exclusive: bool = False) -> None:
    """``text`` into ``path``, mode 0600 whatever the umask, synced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
