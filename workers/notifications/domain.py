"""Notifications: who gets which push, sans-I/O.

Devices are push targets (kind + value: FCM registration tokens today, installation ids tomorrow),
each owned by one user. The worker's replica of presence (``workers.presence``) says who has no
open connection. A new room item is pushed to every participant but its sender who is offline, on
each of their devices, unless the participant's notification level for the room (``Level``, kept
from ``room.notifications_set``) says otherwise: ``mentions`` pushes only the items that mention
them or the room, ``none`` nothing. A target the push service reports gone is forgotten. A deleted
message is not pushed any more (``deleted_item``): its push is withdrawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from contracts.events import ItemAdded, ItemChanged, MeetupReminderDue
from contracts.shapes import SHOWN_KINDS, Attachment, NotificationLevel, RoomItem

BODY_LIMIT = 200  # characters of a push body; longer content is cut, with an ellipsis
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Target:
    """Where a push goes: ``kind`` is ``token`` (an FCM registration token) or ``fid`` (an installation id)."""

    kind: str
    value: str

    @property
    def id(self) -> str:
        """A fixed-size key: tokens may be 4096 characters, too long to index comfortably."""
        return hashlib.sha256(f"{self.kind}:{self.value}".encode()).hexdigest()

    def short(self) -> str:
        """For logs: enough to tell targets apart, never the whole secret."""
        keep = 8 if len(self.value) > 16 else 3
        return f"{self.kind}:{self.value[:keep]}{ELLIPSIS}"


@dataclass(frozen=True)
class Device:
    target: Target
    user_id: str
    platform: str
    registered_at: datetime


def register(user_id: str, target: Target, platform: str, now: datetime) -> Device:
    """A target belongs to whoever registered it last: one registered by another user moves."""
    return Device(target=target, user_id=user_id, platform=platform, registered_at=now)


def owned_by(device: Device | None, user_id: str) -> bool:
    """Whether ``user_id`` may unregister ``device`` (unknown or foreign targets are left alone)."""
    return device is not None and device.user_id == user_id


# Notification levels --------------------------------------------------------------------------

DEFAULT_LEVEL: NotificationLevel = "all"
LevelKey = tuple[str, str]  # (room_id, user_id)


@dataclass(frozen=True)
class Level:
    """A user's notification level in a room, as of ``version``: the version of messaging's event
    that set it (its aggregate is the user's read mark in the room, one per user and room, so its
    versions order every setting of one user in one room)."""

    room_id: str
    user_id: str
    level: NotificationLevel
    version: int

    @property
    def key(self) -> LevelKey:
        return (self.room_id, self.user_id)


Levels = dict[LevelKey, Level]  # what a process knows, by (room_id, user_id)


def move_level(current: Level | None, said: Level) -> Level | None:
    """The new level, or None when ``said`` is not newer than what is known (events of different
    queues and replicas arrive out of order, or twice; only the newest one counts)."""
    if current is not None and current.version >= said.version:
        return None
    return said


def merge_levels(known: Levels, said: Iterable[Level]) -> None:
    """Merge ``said`` into ``known``, each one only if newer (``move_level``): merging again, late or
    out of order never brings back an older level."""
    for level in said:
        if move_level(known.get(level.key), level) is not None:
            known[level.key] = level


def level_of(levels: Mapping[LevelKey, Level], room_id: str, user_id: str) -> NotificationLevel:
    known = levels.get((room_id, user_id))
    return known.level if known is not None else DEFAULT_LEVEL


def mentioned(item: RoomItem, user_id: str) -> bool:
    """Whether ``item`` mentions ``user_id``, by name or through the room (``@room``)."""
    return item.mentions_room or user_id in item.mentions


def pushes_at(level: NotificationLevel, item: RoomItem, user_id: str) -> bool:
    """Whether ``user_id``, at ``level`` in the item's room, is pushed ``item`` (PROTOCOL.md, Push
    notifications): ``all`` everything, ``mentions`` what mentions them or the room, ``none`` nothing."""
    if level == "none":
        return False
    return level == "all" or mentioned(item, user_id)


# Pushes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """What a user's devices show. ``data`` values are strings, as FCM requires. ``item_id``: the
    room item it is about (a push is withdrawn when that item is deleted before it went out)."""

    user_id: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str  # per room: a device offline for a while gets the room's latest push only
    tag: str  # per room: a newer notification replaces the room's older one in the tray
    item_id: str


@dataclass(frozen=True)
class Delivery:
    push: Push
    target: Target


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def item_pushes(event: ItemAdded, offline: set[str], levels: Mapping[LevelKey, Level]) -> list[Push]:
    """The pushes of a new item: to each recipient who is ``offline`` and whose level in the room
    (``levels``, by room and user; ``all`` when unknown) asks for it. Change entries and deleted
    items are never pushed."""
    item = event.item
    if item.kind not in SHOWN_KINDS or item.deleted_at is not None:
        return []
    return [
        Push(
            user_id=user_id,
            title=event.room_name,
            body=clip(body(event, user_id)),
            data={"room_id": item.room_id, "seq": str(item.seq)},
            collapse_key=item.room_id,
            tag=item.room_id,
            item_id=item.id,
        )
        for user_id in event.recipients
        if user_id in offline and pushes_at(level_of(levels, item.room_id, user_id), item, user_id)
    ]


def body(event: ItemAdded, user_id: str) -> str:
    """An announcement's content; a message's sender and content, saying so when it names the user."""
    item = event.item
    if item.kind == "announcement":
        return item.content
    sender = event.sender_name or "Someone"
    if not item.content and item.attachments:  # what it holds, never a link to it
        return f"{sender} sent {sent_files(item.attachments)}"
    return f"{sender} mentioned you: {item.content}" if user_id in item.mentions else f"{sender}: {item.content}"


def sent_files(attachments: list[Attachment]) -> str:
    """``a photo``, ``3 photos``, ``a file``, ``2 files`` (photos only when every one is an image)."""
    noun = "photo" if all(a.kind == "image" for a in attachments) else "file"
    return f"a {noun}" if len(attachments) == 1 else f"{len(attachments)} {noun}s"


def reminder_pushes(due: MeetupReminderDue, event_id: str) -> list[Push]:
    """A meetup's reminder (or nudge), to each of its users, online or not (PROTOCOL.md, Calendars
    and reminders). It is no room item: ``item_id`` is the event's own, which is never deleted."""
    meetup = due.meetup
    data = {"meetup_id": meetup.id, "room_id": meetup.room_id, "kind": due.kind}
    tag = f"meetup-{meetup.id}"
    return [Push(user_id, meetup.name, clip(due.text), data, tag, tag, event_id) for user_id in due.user_ids]


def withdraw(pushes: list[Push], deleted: set[str]) -> list[Push]:
    """``pushes`` but those of items ``deleted`` (by id) before they went out."""
    return [push for push in pushes if push.item_id not in deleted]


def deleted_item(changed: ItemChanged) -> str | None:
    """The id of the item a ``room.item_changed`` deleted (None for an edit or a reaction)."""
    return changed.item.id if changed.change.kind == "delete" else None


def deliveries(pushes: list[Push], devices: list[Device], done: set[str]) -> list[Delivery]:
    """Each push on each device of its user, except targets ``done`` already (by ``Target.id``):
    a redelivered event resumes where a crash left it."""
    by_user: dict[str, list[Target]] = {}
    for device in devices:
        by_user.setdefault(device.user_id, []).append(device.target)
    return [
        Delivery(push, target) for push in pushes for target in by_user.get(push.user_id, []) if target.id not in done
    ]


# Outcomes -------------------------------------------------------------------------------------


class Outcome(Enum):
    SENT = "sent"
    GONE = "gone"  # the service says the target no longer exists (UNREGISTERED, invalid token)
    RETRY = "retry"  # rate limited, or the service is unavailable: try again later
    FAILED = "failed"  # refused for another reason: trying again would not help
    WITHDRAWN = "withdrawn"  # its item was deleted while the push waited to be tried again: not sent


def forget_target(outcome: Outcome) -> bool:
    return outcome is Outcome.GONE


def retry_delay(attempt: int, base: float, cap: float = 30.0) -> float:
    """Exponential backoff before attempt ``attempt + 1`` (attempts count from 1)."""
    return min(cap, base * 2.0 ** (attempt - 1))
