"""Notifications: who gets which push, sans-I/O.

Devices are push targets (kind + value: FCM registration tokens today, installation ids tomorrow),
each owned by one user. The worker's replica of presence (``workers.presence``) says who has no
open connection. A new room item is pushed to every participant but its sender who is offline, on
each of their devices; a target the push service reports gone is forgotten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from contracts.events import ItemAdded

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


# Pushes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """What a user's devices show. ``data`` values are strings, as FCM requires."""

    user_id: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str  # per room: a device offline for a while gets the room's latest push only
    tag: str  # per room: a newer notification replaces the room's older one in the tray


@dataclass(frozen=True)
class Delivery:
    push: Push
    target: Target


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def item_pushes(event: ItemAdded, offline: set[str]) -> list[Push]:
    item = event.item
    text = item.content if item.kind == "announcement" else f"{event.sender_name or 'Someone'}: {item.content}"
    return [
        Push(
            user_id=user_id,
            title=event.room_name,
            body=clip(text),
            data={"room_id": item.room_id, "seq": str(item.seq)},
            collapse_key=item.room_id,
            tag=item.room_id,
        )
        for user_id in event.recipients
        if user_id in offline
    ]


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


def forget_target(outcome: Outcome) -> bool:
    return outcome is Outcome.GONE


def retry_delay(attempt: int, base: float, cap: float = 30.0) -> float:
    """Exponential backoff before attempt ``attempt + 1`` (attempts count from 1)."""
    return min(cap, base * 2.0 ** (attempt - 1))
