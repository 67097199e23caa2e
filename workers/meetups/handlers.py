"""Everything the meetups worker consumes and answers: read these tables to know its interface."""

from __future__ import annotations

import secrets
import uuid

from contracts import internal, requests
from contracts.common import Shape
from contracts.envelope import AnyEvent
from contracts.events import (
    MeetupCancelled,
    MeetupCreated,
    MeetupMoved,
    MeetupUpdated,
    MemberJoined,
    MemberLeft,
    ParticipantRemoved,
    PollClosed,
    PollCreated,
    VoteCast,
)
from contracts.internal import CalendarText, MeetupAccessReply, OpenedRoom
from contracts.requests import CalendarFeed, Empty, MeetupList, MeetupReply
from contracts.shapes import User
from workers.meetups import domain, feeds, storage
from workers.meetups.storage import CalendarDoc, DueReminder, MeetupDoc
from workers.runtime.context import ATTEMPTS, Context, Kept, Runtime
from workers.runtime.dispatch import apply_now
from workers.runtime.outbox import Cause
from workers.runtime.store import ConcurrencyError, StateDocument
from workers.runtime.tables import Chore, CommandHandler, Projection, Reaction

MeetupEvent = MeetupCreated | MeetupUpdated | MeetupMoved | MeetupCancelled
REMINDER_SCAN = 5.0  # seconds between two looks for due reminders (one goes out within 60 s of its time)
STALE_CLAIM = 30.0  # seconds after which a claimed reminder is taken to be a stopped replica's
REMINDERS_PER_SCAN = 200
CLAIMER: Kept[str] = Kept("reminder_claimer", lambda: uuid.uuid4().hex)  # this process, in its claims


async def attendee(ctx: Context, meetup_id: str) -> tuple[StateDocument[domain.MeetupState], domain.MeetupState]:
    doc = await storage.load(meetup_id)
    state = domain.readable(doc.state() if doc else None, ctx.user_id or "")
    assert doc is not None
    return doc, state


async def create_meetup(data: requests.CreateMeetup, ctx: Context) -> MeetupReply:
    assert ctx.user_id and ctx.cause.command_key
    # Ids derive from the command, so a retried create_meetup can only ever make one meetup and room.
    meetup_id = uuid.uuid5(uuid.NAMESPACE_URL, ctx.cause.command_key).hex
    if (doc := await storage.load(meetup_id)) is not None:  # the same id, reused after 24 hours
        return MeetupReply(meetup=doc.state().view(ctx.user_id))
    known = await ctx.users([ctx.user_id, *data.attendee_ids])
    invited = domain.invitees(ctx.user_id, data.attendee_ids, known)
    opened = internal.OpenMeetupRoom(
        room_id=uuid.uuid5(uuid.NAMESPACE_URL, meetup_id).hex,
        meetup_id=meetup_id,
        name=data.name,
        image_url=data.image_url,
        participant_ids=invited,
    )
    room = OpenedRoom.model_validate(await ctx.ask("rooms", "open_meetup_room", opened)).room
    state, facts = domain.open_meetup(meetup_id, room, known[ctx.user_id], data, ctx.now())
    reply = MeetupReply(meetup=state.view(ctx.user_id))
    await ctx.commit(MeetupDoc.new(state), facts, reply)
    return reply


async def change_rsvp(data: requests.ChangeRsvp, ctx: Context) -> Empty:
    doc, state = await attendee(ctx, data.meetup_id)
    if facts := domain.change_rsvp(state, ctx.user_id or "", data.rsvp):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def change_meetup_image(data: requests.ChangeMeetupImage, ctx: Context) -> Empty:
    doc, state = await attendee(ctx, data.meetup_id)
    if facts := domain.change_image(state, ctx.user_id or "", data.image_url):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def cancel_meetup(data: requests.CancelMeetup, ctx: Context) -> Empty:
    doc, state = await attendee(ctx, data.meetup_id)
    organizer = (await ctx.users([ctx.user_id or ""])).get(ctx.user_id or "") or User(id=ctx.user_id or "", name="")
    facts = domain.cancel(state, organizer, ctx.now())
    await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def get_calendar_feed(data: Empty, ctx: Context) -> CalendarFeed:
    """A query, yet the first one stores the user's feed: asking again answers the same address."""
    doc = await storage.calendar_of(ctx.user_id or "")
    owner = doc.state() if doc else await storage.open_calendar(domain.CalendarOwner(ctx.user_id or "", new_token()))
    return feeds.addresses(ctx.runtime.settings.public_base, owner)


async def reset_calendar_feed(data: Empty, ctx: Context) -> CalendarFeed:
    doc, owner = await calendar(ctx)
    facts = domain.reset_feed(owner, new_token())
    reply = feeds.addresses(ctx.runtime.settings.public_base, owner)
    await ctx.commit(doc.with_state(owner), facts, reply)
    return reply


async def set_reminders(data: requests.SetReminders, ctx: Context) -> Empty:
    doc, owner = await calendar(ctx)
    if facts := domain.set_reminders(owner, data.enabled):
        await ctx.commit(doc.with_state(owner), facts, Empty())
    return Empty()


async def calendar(ctx: Context) -> tuple[StateDocument[domain.CalendarOwner], domain.CalendarOwner]:
    """The user's feed, a new one (not stored yet) if they never had one."""
    doc = await storage.calendar_of(ctx.user_id or "") or CalendarDoc.new(
        domain.CalendarOwner(ctx.user_id or "", new_token())
    )
    return doc, doc.state()


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 43 characters, 256 random bits


async def calendar_file(data: internal.CalendarFile, ctx: Context) -> CalendarText:
    """A calendar app asks the gateway for a feed, or a browser for one meetup's file."""
    owner = domain.feed_owner(await storage.calendar_by_token(data.token))
    listed = domain.in_file(await storage.listed_for(owner.id, data.meetup_id), data.meetup_id)
    users = await ctx.users([owner.id, *{item.meetup.organizer_id for item in listed}])
    audience = feeds.Audience(users.get(owner.id, User(id=owner.id, name="")), users, ctx.runtime.settings.public_base)
    single, rendered = data.meetup_id is not None, ctx.runtime.kept(feeds.RENDERED)
    made = feeds.answer(listed, audience, single, data.if_none_match, rendered)
    return CalendarText(etag=made.etag, body=made.body)


async def get_meetup(data: requests.GetMeetup, ctx: Context) -> MeetupReply:
    return MeetupReply(meetup=domain.seen_by(await storage.view(data.meetup_id), ctx.user_id or ""))


async def list_meetups(data: Empty, ctx: Context) -> MeetupList:
    user_id = ctx.user_id or ""
    return MeetupList(meetups=[domain.seen_by(m, user_id) for m in await storage.views_of(user_id)])


async def meetup_access(data: internal.MeetupAccess, ctx: Context) -> MeetupAccessReply:
    _, state = await attendee(ctx, data.meetup_id)
    return MeetupAccessReply(
        meetup_id=state.id,
        room_id=state.room_id,
        organizer_id=state.organizer_id,
        attendee_ids=state.attendee_ids,
    )


async def follow_room(payload: MemberJoined | MemberLeft, ctx: Context) -> None:
    assert ctx.event is not None
    if (doc := await storage.of_room(payload.room.id)) is None:  # not a meetup's room
        return
    state = doc.state()
    if (facts := domain.follow_room(state, payload.room, ctx.event.version)) is not None:
        await ctx.commit(doc.with_state(state), facts)


async def track_poll(payload: PollCreated | VoteCast | ParticipantRemoved | PollClosed, ctx: Context) -> None:
    assert ctx.event is not None
    if (doc := await storage.load(payload.poll.meetup_id)) is None:
        return
    state = doc.state()
    if (facts := domain.apply_poll(state, ctx.event.type, payload.poll, ctx.event.version)) is not None:
        await ctx.commit(doc.with_state(state), facts)


async def index_meetup(payload: MeetupEvent, event: AnyEvent) -> None:
    """meetup.created, .updated, .moved and .cancelled all carry the whole meetup and its creation time."""
    await storage.put_view(payload.meetup, payload.created_at, event.version, payload.sequence, event.occurred_at)


async def plan_reminders(payload: MeetupEvent, ctx: Context) -> None:
    """A meetup created, moved or cancelled changes its due reminders (other changes, nothing)."""
    assert ctx.event is not None
    found = await storage.planned(payload.meetup.id)
    planned = [doc.reminder() for doc in found if doc.status != "dropped"]
    wanted = domain.schedule(payload.meetup, ctx.runtime.settings.reminder_leads, planned, ctx.event.occurred_at)
    await storage.replan(found, wanted, ctx.event.version)


async def send_reminders(runtime: Runtime) -> None:
    """Each due reminder, claimed first (of replicas looking at once, one takes it), then settled."""
    now = runtime.now().timestamp()
    for _ in range(REMINDERS_PER_SCAN):
        if (due := await storage.claim_due(now, runtime.kept(CLAIMER), now - STALE_CLAIM)) is None:
            return
        await remind(runtime, due)
        await storage.settle(due)


async def remind(runtime: Runtime, due: DueReminder) -> None:
    """Commit the meetup's reminders of ``due`` (once: the meetup records it; see ``domain.remind``)."""
    ctx = Context(runtime, Cause(None, f"reminder-{due.id}", None))
    for _ in range(ATTEMPTS):
        try:
            if (doc := await storage.load(due.meetup_id)) is None:
                return
            state = doc.state()
            opted_out = await storage.opted_out(state.attendee_ids)
            leads = runtime.settings.reminder_leads
            if facts := domain.remind(state, due.reminder(), leads, opted_out, ctx.now()):
                await ctx.commit(doc.with_state(state), facts)
            return
        except ConcurrencyError:
            continue
    raise ConcurrencyError(due.id)  # left claimed: taken again once stale


async def follow_membership(data: internal.HandOver, ctx: Context) -> Empty:
    """Rooms hands a membership change over before it answers (its ``FOLLOWERS``): attendees follow
    it now, as ``follow_room`` does from its queue."""
    await apply_now(ctx.runtime, data.events, REACTIONS["follow_room"])
    return Empty()


MEETUP_EVENTS: dict[str, type[Shape]] = {
    "meetup.created": MeetupCreated,
    "meetup.updated": MeetupUpdated,
    "meetup.moved": MeetupMoved,
    "meetup.cancelled": MeetupCancelled,
}

COMMANDS: dict[str, CommandHandler] = {
    "create_meetup": create_meetup,
    "change_rsvp": change_rsvp,
    "change_meetup_image": change_meetup_image,
    "cancel_meetup": cancel_meetup,
    "get_calendar_feed": get_calendar_feed,
    "reset_calendar_feed": reset_calendar_feed,
    "set_reminders": set_reminders,
    "calendar_file": calendar_file,
    "get_meetup": get_meetup,
    "list_meetups": list_meetups,
    "meetup_access": meetup_access,
    "follow_membership": follow_membership,
}

REACTIONS = {
    "follow_room": Reaction(follow_room, {"room.member_joined": MemberJoined, "room.member_left": MemberLeft}),
    "track_poll": Reaction(
        track_poll,
        {
            "poll.created": PollCreated,
            "poll.vote_cast": VoteCast,
            "poll.participant_removed": ParticipantRemoved,
            "poll.closed": PollClosed,
        },
    ),
    "plan_reminders": Reaction(plan_reminders, MEETUP_EVENTS),
}

PROJECTIONS = {
    "index_meetups": Projection(index_meetup, MEETUP_EVENTS, (storage.MeetupView,)),
}

CHORES = {
    "send_reminders": Chore(lambda settings: REMINDER_SCAN, send_reminders),
}
