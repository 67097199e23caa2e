"""boochat.backup without a stack: a database copied while it is written is that database at one
moment; log entries keep what replay reads; with BOOCHAT_MONGO_URL set the backup says what it
leaves out; restore refuses before writing anything."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import aio_pika
import pytest

from boochat import backup, topology
from boochat.settings import Settings

pytestmark = pytest.mark.timeout(120)


def test_a_database_copied_while_written_is_one_moment_of_it(tmp_path: Path) -> None:
    """A writer adds rows two at a time, in one transaction each, in WAL mode as the stand-in does;
    each of several copies taken meanwhile holds an even count (never half a transaction) and
    passes SQLite's check."""
    source = tmp_path / "mongo"
    source.mkdir()
    database = sqlite3.connect(source / "ns_rooms.db")
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("CREATE TABLE rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, _id TEXT, data TEXT NOT NULL)")
    database.commit()
    database.close()
    stop = threading.Event()
    written = threading.Event()

    def write() -> None:
        writer = sqlite3.connect(source / "ns_rooms.db")
        n = 0
        while not stop.is_set():
            with writer:  # one transaction
                writer.execute("INSERT INTO rooms (_id, data) VALUES (?, '{}')", (f"a{n}",))
                writer.execute("INSERT INTO rooms (_id, data) VALUES (?, '{}')", (f"b{n}",))
            n += 1
            if n == 200:
                written.set()
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert written.wait(30)
        counts = []
        for attempt in range(5):
            [copy] = backup.copy_databases(source, tmp_path / f"copy-{attempt}")
            counts.append(copy.collections["rooms"])
            check = sqlite3.connect(tmp_path / f"copy-{attempt}" / "ns_rooms.db")
            assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal beside it
            assert check.execute("SELECT count(*) FROM rooms").fetchone() == (counts[-1],)
            check.close()
    finally:
        stop.set()
        thread.join()
    assert all(count % 2 == 0 and count >= 400 for count in counts), counts
    assert counts == sorted(counts)


def test_an_entry_keeps_routing_key_properties_and_headers() -> None:
    """What replay reads (routing key, body) and what the outbox set (ids, CC header) come back."""
    entry = backup.Entry(
        offset=7,
        exchange="ns.events",
        routing_key="room.item_added",
        body='{"event_id": "e1"}',
        headers={"CC": ["room.item_added.offline"]},
        content_type="application/json",
        delivery_mode=2,
        message_id="e1",
        correlation_id="r1",
    )
    again = backup.Entry.model_validate_json(entry.model_dump_json(exclude_defaults=True))
    assert again == entry
    message = again.message()
    assert (message.body, message.message_id, message.correlation_id) == (b'{"event_id": "e1"}', "e1", "r1")
    assert message.headers == {"CC": ["room.item_added.offline"]} and message.delivery_mode == 2


async def test_with_a_mongo_url_the_backup_says_the_databases_are_not_in_it(
    settings: Settings, amqp_url: str, tmp_path: Path
) -> None:
    """BOOCHAT_MONGO_URL set (and BOOCHAT_JWT_SECRET): the log is copied, the databases and the secret
    are named as left out; its restore into the namespace, which still holds data, is refused."""
    settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await topology.declare_exchanges(await connection.channel(), settings)
    manifest = await backup.backup(settings, tmp_path / "copy")
    assert manifest.databases is None and not manifest.session_secret
    assert manifest.log.entries == 0
    assert manifest.not_covered == [backup.MONGODUMP, backup.JWT_SECRET]
    assert "mongodump" in backup.MONGODUMP
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["events.jsonl", "manifest.json"]

    with pytest.raises(backup.BackupError, match=r"namespace '.*' is in use .*boochat drop"):
        await backup.restore(settings, tmp_path / "copy")
    assert not (tmp_path / "data").exists()


async def test_a_backup_goes_into_a_new_or_empty_folder_and_restore_needs_a_manifest(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("")
    with pytest.raises(backup.BackupError, match="is not an empty folder"):
        await backup.backup(settings, tmp_path / "full")
    with pytest.raises(backup.BackupError, match="holds no complete backup"):
        await backup.restore(settings, tmp_path / "full")
