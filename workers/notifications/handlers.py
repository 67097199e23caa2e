"""Everything the notifications worker consumes and answers: read ``COMMANDS``, ``reactions()``,
``PROJECTIONS`` and ``MIRRORS``.

The push port is passed in by ``app.py``: ``reactions(sender)`` builds the reaction table around it.

Presence is kept twice. The projection ``track_presence`` keeps it in MongoDB: the durable replica,
which replay rebuilds. The mirror ``presence`` keeps it in each process's memory (every replica gets
every ``user.presence_changed``), loaded from that collection at start and again every
``BOOCHAT_MIRROR_RELOAD_SECONDS``. ``push_to_offline_members`` runs for every chat message and
decides who is offline from the mirror: when every other participant is online it reads and writes
nothing.

Only room items are pushed. Invitations (``room.member_joined``), new meetups (``meetup.created``)
and moved meetups (``meetup.moved``) are announced in their room by messaging, and an announcement
is a room item: its push already reaches the invitee and every attendee who is offline, so a push
of their own would notify the same people twice about one thing.
"""

from __future__ import annotations

import asyncio
from functools import partial

import structlog

from contracts import events, requests
from contracts.envelope import AnyEvent
from contracts.requests import Empty
from workers.notifications import domain, storage
from workers.notifications.domain import Delivery, Presence, Target
from workers.notifications.sender import Sender
from workers.runtime.context import Context
from workers.runtime.tables import Mirror, Projection, Reaction, typed

log = structlog.get_logger()

TOKEN = "token"  # the kind of target register_device's ``token`` is: an FCM registration token
PRESENCE = "presence"  # the presence mirror's name, and its state's key in ``Runtime.memory``


async def register_device(data: requests.RegisterDevice, ctx: Context) -> Empty:
    await storage.save_device(domain.register(ctx.user_id or "", Target(TOKEN, data.token), data.platform, ctx.now()))
    return Empty()


async def unregister_device(data: requests.UnregisterDevice, ctx: Context) -> Empty:
    target = Target(TOKEN, data.token)
    if domain.owned_by(await storage.device(target), ctx.user_id or ""):
        await storage.delete_device(target, ctx.user_id or "")
    return Empty()


async def track_presence(moved: events.PresenceChanged, event: AnyEvent) -> None:
    current = await storage.presence(moved.user_id)
    if (new := domain.move_presence(current, moved.user_id, moved.online, event.version)) is not None:
        await storage.save_presence(new, current)


def mirror_presence(moved: events.PresenceChanged, event: AnyEvent, known: dict[str, Presence]) -> None:
    domain.merge_presence(known, [Presence(moved.user_id, moved.online, event.version)])


def merge_loaded_presence(known: dict[str, Presence], loaded: dict[str, Presence]) -> None:
    domain.merge_presence(known, loaded.values())


async def push_to_offline_members(added: events.ItemAdded, ctx: Context, sender: Sender) -> None:
    assert ctx.event is not None
    known = ctx.runtime.memory[PRESENCE]
    pushes = domain.item_pushes(added, domain.offline(domain.item_recipients(added), known))
    if not pushes:  # the common case: everyone else is online (no database call at all)
        return
    devices = await storage.devices_of([push.user_id for push in pushes])
    planned = domain.deliveries(pushes, devices, await storage.claimed(ctx.event.event_id))
    await asyncio.gather(*(deliver(sender, ctx.event.event_id, delivery) for delivery in planned))


async def deliver(sender: Sender, event_id: str, delivery: Delivery) -> None:
    """One push to one target, at most once per event (claimed first: a crash loses it rather than
    sending it twice); a target the service says is gone is forgotten."""
    if not await storage.claim(event_id, delivery.target):
        return
    outcome = await sender.send(delivery.push, delivery.target)
    if domain.forget_target(outcome):
        await storage.delete_device(delivery.target, delivery.push.user_id)
        log.info("device forgotten", user_id=delivery.push.user_id, target=delivery.target.short())


COMMANDS = {
    "register_device": register_device,
    "unregister_device": unregister_device,
}


def reactions(sender: Sender) -> dict[str, Reaction]:
    return {
        "push_to_offline_members": Reaction(
            partial(push_to_offline_members, sender=sender), typed(events.ItemAdded, "room.item_added")
        ),
    }


PROJECTIONS = {
    "track_presence": Projection(
        track_presence, typed(events.PresenceChanged, "user.presence_changed"), (storage.PresenceDoc,)
    ),
}


MIRRORS = {
    PRESENCE: Mirror(
        mirror_presence,
        typed(events.PresenceChanged, "user.presence_changed"),
        storage.all_presence,
        merge_loaded_presence,
    ),
}
