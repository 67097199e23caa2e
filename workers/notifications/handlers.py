"""Everything the notifications worker consumes and answers: read ``COMMANDS``, ``reactions()``,
``PROJECTIONS`` and ``MIRRORS``.

The push port is passed in by ``app.py``: ``reactions(sender)`` builds the reaction table around it.

Who is online comes from the worker's presence replica (``workers.presence``: a projection, and a
mirror in each process's memory). ``push_to_offline_members`` takes the items messaging also routed under
``ITEMS_FOR_OFFLINE`` (a recipient was offline by messaging's own replica), and decides from the
mirror whom to push. So a chat where everyone is online never reaches this worker at all. Messaging's
replica lags a moment behind, so when a user goes offline ``push_missed_items`` asks it for what it
routed meanwhile.

Whom an item is pushed to also depends on each recipient's notification level in its room (``all``,
``mentions`` or ``none``: PROTOCOL.md, Push notifications), set with messaging's
``set_room_notifications``. The worker keeps them as it keeps presence: the projection
``track_levels`` in its database (replay rebuilds it), the mirror ``levels`` in each process's
memory, so deciding costs no database call. A message deleted before its push went out is not
pushed: ``track_deletions`` records each delete (``room.item_changed``), and both paths, and each
retry of a push (``sender.Retrying``), leave out what it recorded.

Only room items are pushed. Invitations (``room.member_joined``), new meetups (``meetup.created``)
and moved meetups (``meetup.moved``) are announced in their room by messaging, and an announcement
is a room item: its push already reaches the invitee and every attendee who is offline, so a push
of their own would notify the same people twice about one thing. The exception is a meetup's
reminder (``meetup.reminder_due``, from the meetups worker): ``push_meetup_reminder`` pushes it to
every device of its users, online or not.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import structlog

from contracts import events, internal, requests
from contracts.envelope import AnyEvent
from contracts.requests import Empty
from contracts.routing import ITEMS_FOR_OFFLINE
from workers import presence
from workers.notifications import domain, storage
from workers.notifications.domain import Delivery, Level, Levels, Target
from workers.notifications.sender import Sender
from workers.presence import PRESENCE
from workers.runtime.context import Context, Kept
from workers.runtime.tables import CommandHandler, Mirror, Projection, Reaction, Replica, typed

log = structlog.get_logger()

TOKEN = "token"  # the kind of target register_device's ``token`` is: an FCM registration token
# In a room none of the user's connections had sent an item of (the offline event's ``delivered``
# names the others, and what came after is pushed there), items stored this long before the users
# worker said a user went offline count as sent after: the gateway closed the connection (and
# stopped delivering to it) that much earlier at most, and the clocks of the two hosts may differ.
MISSED_MARGIN = timedelta(seconds=2)


async def register_device(data: requests.RegisterDevice, ctx: Context) -> Empty:
    await storage.save_device(domain.register(ctx.user_id or "", Target(TOKEN, data.token), data.platform, ctx.now()))
    return Empty()


async def unregister_device(data: requests.UnregisterDevice, ctx: Context) -> Empty:
    target = Target(TOKEN, data.token)
    if domain.owned_by(await storage.device(target), ctx.user_id or ""):
        await storage.delete_device(target, ctx.user_id or "")
    return Empty()


async def push_to_offline_members(added: events.ItemAdded, ctx: Context, sender: Sender) -> None:
    assert ctx.event is not None
    offline = presence.offline(added.recipients, PRESENCE.state(ctx.runtime))
    pushes = domain.item_pushes(added, offline, LEVELS.state(ctx.runtime))
    if not pushes:  # the common case: everyone else is online, or muted the room (no database call at all)
        return
    pushes = domain.withdraw(pushes, await storage.deleted([added.item.id]))  # deleted while it waited here
    devices = await storage.devices_of([push.user_id for push in pushes])
    planned = domain.deliveries(pushes, devices, await storage.claimed(ctx.event.event_id))
    await asyncio.gather(*(deliver(sender, ctx.event.event_id, delivery) for delivery in planned))


async def push_missed_items(moved: events.PresenceChanged, ctx: Context, sender: Sender) -> None:
    """A user who went offline gets the pushes of what no connection of theirs sent them (after
    what the gateways said they had sent, per room, or since ``MISSED_MARGIN`` before the users
    worker said so), which messaging routed before its replica of presence knew and so never sent
    here. Messaging lists them, unread ones only (a request on a rare path: once per user going
    offline, and only for a user with a device). Each push goes once however the two paths race:
    both claim it per event and target."""
    assert ctx.event is not None
    if moved.online:
        return
    known = PRESENCE.state(ctx.runtime).get(moved.user_id)
    if known is not None and known.online and known.version > ctx.event.version:
        return  # back online since: they see it in the app
    devices = await storage.devices_of([moved.user_id])
    if not devices:
        return
    since = internal.MissedItems(since=ctx.event.occurred_at - MISSED_MARGIN, delivered=moved.delivered)
    missed = internal.Missed.model_validate(await ctx.ask("messaging", "missed_items", since, moved.user_id))
    deleted = await storage.deleted([item.added.item.id for item in missed.items])  # since messaging answered
    for item in missed.items:
        pushes = domain.withdraw(domain.item_pushes(item.added, {moved.user_id}, LEVELS.state(ctx.runtime)), deleted)
        planned = domain.deliveries(pushes, devices, await storage.claimed(item.event_id))
        await asyncio.gather(*(deliver(sender, item.event_id, delivery) for delivery in planned))


async def push_meetup_reminder(due: events.MeetupReminderDue, ctx: Context, sender: Sender) -> None:
    """Meetups published a reminder: each of its users' devices gets it once (claimed per target)."""
    assert ctx.event is not None
    pushes = domain.reminder_pushes(due, ctx.event.event_id)
    devices = await storage.devices_of(due.user_ids)
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


# Projections and mirrors ----------------------------------------------------------------------


async def track_levels(set_to: events.NotificationsSet, event: AnyEvent) -> None:
    said = Level(set_to.room_id, set_to.user_id, set_to.level, event.version)
    current = await storage.level(set_to.room_id, set_to.user_id)
    if domain.move_level(current, said) is not None:
        await storage.save_level(said, current)


def mirror_levels(set_to: events.NotificationsSet, event: AnyEvent, known: Levels) -> None:
    domain.merge_levels(known, [Level(set_to.room_id, set_to.user_id, set_to.level, event.version)])


def merge_loaded_levels(known: Levels, loaded: Levels) -> None:
    domain.merge_levels(known, loaded.values())


async def track_deletions(changed: events.ItemChanged, event: AnyEvent) -> None:
    """Each delete, by item id; edits and reactions change nothing here."""
    if (item_id := domain.deleted_item(changed)) is not None:
        await storage.save_deletion(item_id, changed.item.room_id, event.occurred_at)


COMMANDS: dict[str, CommandHandler] = {
    "register_device": register_device,
    "unregister_device": unregister_device,
}


def reactions(sender: Sender) -> dict[str, Reaction]:
    return {
        "push_to_offline_members": Reaction(
            partial(push_to_offline_members, sender=sender),
            typed(events.ItemAdded, "room.item_added"),
            keys=(ITEMS_FOR_OFFLINE,),  # only items messaging saw a recipient of offline
        ),
        "push_missed_items": Reaction(partial(push_missed_items, sender=sender), presence.PRESENCE_CHANGED),
        "push_meetup_reminder": Reaction(
            partial(push_meetup_reminder, sender=sender), typed(events.MeetupReminderDue, "meetup.reminder_due")
        ),
    }


NOTIFICATIONS_SET = typed(events.NotificationsSet, "room.notifications_set")

PROJECTIONS = presence.PROJECTIONS | {
    "track_levels": Projection(track_levels, NOTIFICATIONS_SET, (storage.LevelDoc,)),
    # Bound to every change of an item (edits and reactions too): RabbitMQ routes by type only.
    "track_deletions": Projection(
        track_deletions, typed(events.ItemChanged, "room.item_changed"), (storage.DeletionDoc,)
    ),
}

LEVELS: Mirror[Levels] = Mirror(
    mirror_levels,
    NOTIFICATIONS_SET,
    storage.stored_levels,
    merge_loaded_levels,
    Kept("levels", lambda: Replica[Levels]({})),
)

MIRRORS = presence.MIRRORS | {"levels": LEVELS}
