"""A replica of presence (who has an open connection), for any worker that decides by it.

The users worker owns presence and says every change with ``user.presence_changed``. A worker that
keeps this replica adds ``PROJECTIONS`` and ``MIRRORS`` to its tables and ``PresenceDoc`` to its
documents, and then holds it twice. The projection ``track_presence`` keeps it in the worker's own
MongoDB database: the durable replica, which replay rebuilds. The mirror ``presence`` keeps it in
each process's memory (``PRESENCE.state(runtime)``: every replica gets every change), loaded from
that collection at start, then what changed in it every ``BOOCHAT_MIRROR_RELOAD_SECONDS``. The
newest version wins (``move_presence``, ``merge_presence``), so events applied late, twice or out of
order change nothing they should not.

Notifications decides from it whom to push; messaging whether a new item may need a push at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts import events
from contracts.envelope import AnyEvent
from workers.runtime.context import Kept
from workers.runtime.store import ConcurrencyError
from workers.runtime.tables import Mirror, Projection, Replica, typed


@dataclass(frozen=True)
class Presence:
    user_id: str
    online: bool
    version: int  # the users aggregate's version of the event that said so


def move_presence(current: Presence | None, user_id: str, online: bool, version: int) -> Presence | None:
    """The new presence, or None when the event is older than what is known (events of different
    queues and replicas arrive out of order; only the newest one counts)."""
    if current is not None and current.version >= version:
        return None
    return Presence(user_id=user_id, online=online, version=version)


def merge_presence(known: dict[str, Presence], said: Iterable[Presence]) -> None:
    """Merge ``said`` into ``known`` (user id -> presence): each one only if newer than what is known
    (``move_presence``), so merging again, late or out of order never brings back an older state."""
    for presence in said:
        new = move_presence(known.get(presence.user_id), presence.user_id, presence.online, presence.version)
        if new is not None:
            known[presence.user_id] = new


def offline(candidates: Iterable[str], known: Mapping[str, Presence]) -> set[str]:
    """Users with no open connection; one the replica has never seen online is offline."""
    return {user_id for user_id in candidates if user_id not in known or not known[user_id].online}


# Storage --------------------------------------------------------------------------------------


class PresenceDoc(Document):
    """One per user, written whole (insert, or replace at the version read); ``stored_at``: when
    (epoch seconds), so a mirror's reload reads only what changed since its last one."""

    id: str  # type: ignore[assignment]  # the user id (Beanie declares an ObjectId)
    online: bool
    version: int
    stored_at: float = 0.0

    class Settings:
        name = "presence"
        indexes = [IndexModel([("stored_at", ASCENDING)])]

    def state(self) -> Presence:
        return Presence(user_id=self.id, online=self.online, version=self.version)


async def presence(user_id: str) -> Presence | None:
    doc = await PresenceDoc.get(user_id)
    return doc.state() if doc else None


async def stored_presence(since: float | None) -> dict[str, Presence]:
    """The presence stored at or after ``since`` (epoch seconds; None: everyone's), by user id."""
    query = {} if since is None else {"stored_at": {"$gte": since}}
    return {doc.id: doc.state() for doc in await PresenceDoc.find(query).to_list()}


async def save_presence(new: Presence, read: Presence | None) -> None:
    """Write ``new`` if the stored presence is still ``read``; else ``ConcurrencyError`` (decide again)."""
    body = {"_id": new.user_id, "online": new.online, "version": new.version, "stored_at": time.time()}
    collection = PresenceDoc.get_pymongo_collection()
    try:
        if read is None:
            await collection.insert_one(body)
            return
    except DuplicateKeyError:
        raise ConcurrencyError(new.user_id) from None
    result = await collection.replace_one({"_id": new.user_id, "version": read.version}, body)
    if result.matched_count == 0:
        raise ConcurrencyError(new.user_id)


# The tables -----------------------------------------------------------------------------------


async def track_presence(moved: events.PresenceChanged, event: AnyEvent) -> None:
    current = await presence(moved.user_id)
    if (new := move_presence(current, moved.user_id, moved.online, event.version)) is not None:
        await save_presence(new, current)


def mirror_presence(moved: events.PresenceChanged, event: AnyEvent, known: dict[str, Presence]) -> None:
    merge_presence(known, [Presence(moved.user_id, moved.online, event.version)])


def merge_loaded_presence(known: dict[str, Presence], loaded: dict[str, Presence]) -> None:
    merge_presence(known, loaded.values())


PRESENCE_CHANGED = typed(events.PresenceChanged, "user.presence_changed")

PROJECTIONS = {"track_presence": Projection(track_presence, PRESENCE_CHANGED, (PresenceDoc,))}

Known = dict[str, Presence]  # by user id

PRESENCE: Mirror[Known] = Mirror(
    mirror_presence,
    PRESENCE_CHANGED,
    stored_presence,
    merge_loaded_presence,
    Kept("presence", lambda: Replica[Known]({})),
)

MIRRORS = {"presence": PRESENCE}
