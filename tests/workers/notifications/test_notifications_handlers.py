"""The notifications handlers through the runtime (``support.handlers``: mirrors loaded as in a
worker process), with an in-memory push port and the Mongo stand-in."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs
from support.fcm import FakeSender, event, item_added, presence, write_service_account
from support.handlers import READS, WRITES, Harness, database_calls, harness, replica

from boochat.settings import Settings
from contracts.envelope import AnyEvent, Command, Failure
from contracts.events import ItemAdded, ItemChanged, NotificationsSet
from contracts.shapes import RoomItem
from workers.notifications import app
from workers.notifications import storage as store
from workers.notifications.domain import Level, Outcome, Push, Target
from workers.notifications.handlers import LEVELS, MISSED_MARGIN
from workers.notifications.sender import LogSender, Retrying, create_sender
from workers.presence import PRESENCE, Presence, PresenceDoc
from workers.presence import presence as stored_presence
from workers.runtime.context import Forwarded, Runtime
from workers.runtime.dispatch import run_command
from workers.runtime.tables import RELOAD_OVERLAP, Worker


@pytest.fixture
def worker(sender: FakeSender) -> Worker:
    return app.worker(sender)


@pytest.fixture
async def notifications(worker: Worker, mongo_url: str) -> Harness:
    """Messaging, scripted, has no missed items unless a test says so (``answer_missed``)."""
    notifications = await harness(worker, mongo_url)
    answer_missed(notifications)
    return notifications


def answer_missed(notifications: Harness, *items: AnyEvent) -> None:
    """Messaging, scripted: ``missed_items`` lists these ``room.item_added`` events, whoever asks."""
    listed = [{"event_id": item.event_id, "added": item.payload} for item in items]
    notifications.rpc.answer("messaging", "missed_items", lambda command: {"items": listed})


@pytest.fixture
def runtime(notifications: Harness) -> Runtime:
    return notifications.runtime


def user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


async def command(worker, runtime, user_id, type, data, id=None):
    answer = await run_command(
        worker, runtime, Command(type=type, id=id or uuid.uuid4().hex, user_id=user_id, data=data)
    )
    reply = answer.reply
    assert reply.error is None, reply.error
    return reply.ok


async def register(worker, runtime, user_id, value, platform="android", id=None):
    return await command(worker, runtime, user_id, "register_device", {"token": value, "platform": platform}, id)


async def react(notifications: Harness, event) -> None:
    """As a worker process takes it: a presence or level event from the projection's queue and from
    the mirror's (each process has its own), a change from its projection's, an item from the reaction's."""
    if event.type == "user.presence_changed":
        await notifications.react("track_presence", event)
        await notifications.react("presence", event)
        await notifications.react("push_missed_items", event)
    elif event.type == "room.notifications_set":
        await notifications.react("track_levels", event)
        await notifications.react("levels", event)
    elif event.type == "room.item_changed":
        await notifications.react("track_deletions", event)
    else:
        await notifications.react("push_to_offline_members", event)


def level_set(room_id: str, user_id: str, level: str, version: int) -> AnyEvent:
    """``room.notifications_set`` as messaging publishes it (its aggregate: the user's place in the room)."""
    return event("room.notifications_set", NotificationsSet(room_id=room_id, user_id=user_id, level=level), version)


def mentioning(added: AnyEvent, *user_ids: str, room: bool = False) -> AnyEvent:
    """``added`` with its item mentioning ``user_ids`` (and the room, with ``room``)."""
    payload = ItemAdded.model_validate(added.payload)
    item = payload.item.model_copy(update={"mentions": list(user_ids), "mentions_room": room})
    return added.model_copy(update={"payload": payload.model_copy(update={"item": item}).model_dump(mode="json")})


def changed(added: AnyEvent, kind: str) -> AnyEvent:
    """``room.item_changed``: ``added``'s item changed by its sender (``delete``, ``edit``, ``reaction_added``)."""
    payload = ItemAdded.model_validate(added.payload)
    item, now = payload.item, datetime.now(UTC)
    entry = RoomItem(
        id=uuid.uuid4().hex,
        room_id=item.room_id,
        seq=item.seq + 1,
        kind=kind,
        sender_id=item.sender_id,
        content="edited" if kind == "edit" else "",
        sent_at=now,
        target_seq=item.seq,
        emoji="\U0001f44d" if kind.startswith("reaction") else None,
    )
    after = item.model_copy(update={"content": "", "deleted_at": now} if kind == "delete" else {})
    return event(
        "room.item_changed",
        ItemChanged(item=after, change=entry, participant_ids=payload.participant_ids),
        entry.seq,
        item.room_id,
    )


async def owner(value: str) -> str | None:
    device = await store.device(Target("token", value))
    return device.user_id if device else None


# Devices --------------------------------------------------------------------------------------


async def test_a_user_may_have_several_devices(worker, runtime):
    bob, one, two = user(), token(), token()
    assert await register(worker, runtime, bob, one) == {}
    await register(worker, runtime, bob, two, platform="ios")
    assert sorted(d.target.value for d in await store.devices_of([bob])) == sorted([one, two])


async def test_a_token_registered_by_another_user_moves_to_them(worker, runtime):
    bob, cid, shared = user(), user(), token()
    await register(worker, runtime, bob, shared)
    await register(worker, runtime, cid, shared)
    assert await owner(shared) == cid
    assert await store.devices_of([bob]) == []


async def test_unregister_removes_only_ones_own_token(worker, runtime):
    bob, cid, mine, theirs = user(), user(), token(), token()
    await register(worker, runtime, bob, mine)
    await register(worker, runtime, cid, theirs)
    assert await command(worker, runtime, bob, "unregister_device", {"token": mine}) == {}
    assert await command(worker, runtime, bob, "unregister_device", {"token": theirs}) == {}
    assert await command(worker, runtime, bob, "unregister_device", {"token": token()}) == {}  # unknown: fine
    assert (await owner(mine), await owner(theirs)) == (None, cid)


async def test_a_repeated_command_acts_once(worker, runtime):
    """The same id again gets the first reply and changes nothing, even after an unregister."""
    bob, value = user(), token()
    await register(worker, runtime, bob, value, id="same")
    await command(worker, runtime, bob, "unregister_device", {"token": value})
    await register(worker, runtime, bob, value, id="same")
    assert await owner(value) is None


async def test_bad_data_is_refused(worker, runtime):
    command = Command(type="register_device", id="x", user_id=user(), data={"token": "", "platform": "nokia"})
    reply = (await run_command(worker, runtime, command)).reply
    assert reply.error is not None and reply.error.code == "bad_request"
    assert set(reply.error.details or {}) == {"data.token", "data.platform"}


# Pushes ---------------------------------------------------------------------------------------


async def test_offline_participants_get_one_push_per_device(worker, runtime, notifications, sender):
    ann, bob, cid = user(), user(), user()
    b1, b2, a1 = token(), token(), token()
    for who, value in ((bob, b1), (bob, b2), (ann, a1)):
        await register(worker, runtime, who, value)
    await react(notifications, item_added("r1", [ann, bob, cid], sender_id=ann, content="hi", seq=4))
    assert sorted(t.value for _, t in sender.sent) == sorted([b1, b2])  # not the sender; cid has no device
    push = sender.to(b1)[0]
    assert (push.user_id, push.title, push.body, push.data) == (bob, "Den", "Ann: hi", {"room_id": "r1", "seq": "4"})
    assert push.collapse_key == push.tag == "r1"


async def test_online_users_get_no_push_until_they_go_offline(worker, runtime, notifications, sender):
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await react(notifications, presence(bob, True, 2))
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=1))
    assert sender.sent == []
    await react(notifications, presence(bob, False, 3))
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=2))
    assert [p.data["seq"] for p in sender.to(value)] == ["2"]


async def test_an_older_presence_event_arriving_late_is_ignored(worker, runtime, notifications, sender):
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await react(notifications, presence(bob, False, 5))
    await react(notifications, presence(bob, True, 4))  # older: bob stays offline
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann))
    assert len(sender.to(value)) == 1
    assert (await stored_presence(bob)).version == 5  # type: ignore[union-attr]


async def test_the_push_decision_follows_the_mirror_not_the_database(worker, runtime, notifications, sender):
    """Online in this process's mirror only: no push. Online in the database only (an event this
    process has not received yet): a push."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await notifications.react("presence", presence(bob, True, 2))
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=1))
    assert sender.sent == []
    await notifications.react("presence", presence(bob, False, 3))
    await notifications.react("track_presence", presence(bob, True, 4))
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=2))
    assert [p.data["seq"] for p in sender.to(value)] == ["2"]


async def test_the_mirror_merges_by_version_and_a_reload_never_goes_back(worker, runtime, notifications, sender):
    """An older event does not bring someone back online, nor does an older stored presence on a
    reload; a newer stored one (an event this process missed) does."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await notifications.react("presence", presence(bob, False, 5))
    await notifications.react("presence", presence(bob, True, 4))  # older: bob stays offline
    await notifications.react("track_presence", presence(bob, True, 3))  # stored, older still
    await notifications.reload()
    assert PRESENCE.state(runtime)[bob] == Presence(bob, False, 5)
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=1))
    await notifications.react("track_presence", presence(bob, True, 6))  # missed by this process
    await notifications.reload()
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=2))
    assert [p.data["seq"] for p in sender.to(value)] == ["1"]


async def test_a_new_process_loads_the_stored_presence(notifications):
    """What the projection stored is in the mirror of a process started afterwards, before any event."""
    bob, cid = user(), user()
    await notifications.react("track_presence", presence(bob, True, 2))
    await notifications.react("track_presence", presence(cid, False, 3))
    later = replica(notifications)
    await later.reload()  # what a process does before its subscribers start
    assert PRESENCE.state(later.runtime) == {bob: Presence(bob, True, 2), cid: Presence(cid, False, 3)}


async def test_a_reload_reads_only_what_changed_since_shortly_before_the_previous_one(notifications):
    """After the first load (everyone), a reload reads the presence stored since RELOAD_OVERLAP before
    the previous load began, as a missed event's, not every user's: a process restarted reads all."""
    old, bob = user(), user()
    await notifications.react("track_presence", presence(old, True, 2))
    await notifications.reload()
    stored_long_ago = {"stored_at": time.time() - RELOAD_OVERLAP - 3600, "online": False, "version": 3}
    await PresenceDoc.get_pymongo_collection().update_one({"_id": old}, {"$set": stored_long_ago})
    await notifications.react("track_presence", presence(bob, True, 4))  # missed by this process
    await notifications.reload()
    known = PRESENCE.state(notifications.runtime)
    assert known[bob] == Presence(bob, True, 4)
    assert known[old] == Presence(old, True, 2), "stored before the previous load: not read again"
    later = replica(notifications)
    await later.reload()
    assert PRESENCE.state(later.runtime)[old] == Presence(old, False, 3)


async def test_no_database_call_when_everyone_is_online(worker, runtime, notifications, sender, monkeypatch):
    """The common case, every chat message: the mirror decides, nothing is read or written. One
    offline participant costs reads (devices, claims) and a claim: the spy sees them."""
    ann, bob, cid = user(), user(), user()
    for who in (bob, cid):
        await register(worker, runtime, who, token())
        await react(notifications, presence(who, True, 2))
    calls = database_calls(monkeypatch, READS + WRITES)
    await react(notifications, item_added("r1", [ann, bob, cid], sender_id=ann, seq=1))
    assert calls == []
    await notifications.react("presence", presence(cid, False, 3))
    await react(notifications, item_added("r1", [ann, bob, cid], sender_id=ann, seq=2))
    assert sorted(set(calls)) == ["deletions.find", "devices.find", "pushes.find", "pushes.insert_one"]
    assert len(sender.sent) == 1


async def test_going_offline_pushes_what_messaging_routed_before_it_knew(worker, runtime, notifications, sender):
    """Items messaging stored after Bob went offline but routed as if he were online never came
    here: his going offline asks messaging for them (as of MISSED_MARGIN before), and each is pushed
    once, however often the event comes and whether or not the item comes this way too."""
    ann, bob, b1, b2 = user(), user(), token(), token()
    for value in (b1, b2):
        await register(worker, runtime, bob, value)
    await react(notifications, presence(bob, True, 2))
    hi = item_added("r1", [ann, bob], sender_id=ann, content="hi", seq=3)
    yo = item_added("r1", [ann, bob], sender_id=ann, content="yo", seq=4)
    answer_missed(notifications, hi, yo)
    went = presence(bob, False, 3)
    await react(notifications, went)
    assert sorted((t.value, p.data["seq"]) for p, t in sender.sent) == sorted(
        (value, seq) for value in (b1, b2) for seq in ("3", "4")
    )
    assert [p.body for p in sender.to(b1)] == ["Ann: hi", "Ann: yo"]
    [(asked, command)] = notifications.rpc.calls
    assert (asked, command.type, command.user_id) == ("messaging", "missed_items", bob)
    since = datetime.fromisoformat(command.data["since"])  # to the millisecond, as Boochat sends times
    assert abs(since - (went.occurred_at - MISSED_MARGIN)) < timedelta(milliseconds=1)
    await react(notifications, went)  # the event again
    await react(notifications, yo)  # the item the usual way too
    assert len(sender.sent) == 4


async def test_going_offline_asks_nothing_for_a_user_without_devices_or_back_online(
    worker, runtime, notifications, sender
):
    ann, bob, cid = user(), user(), user()
    answer_missed(notifications, item_added("r1", [ann, bob, cid], sender_id=ann))
    await react(notifications, presence(bob, False, 3))  # no device
    await register(worker, runtime, cid, token())
    await notifications.react("presence", presence(cid, True, 5))  # back online before the reaction ran
    await notifications.react("push_missed_items", presence(cid, False, 4))
    await react(notifications, presence(cid, True, 6))  # coming online asks nothing
    assert notifications.rpc.calls == [] and sender.sent == []


async def test_going_offline_while_messaging_does_not_answer_fails_to_be_tried_again(worker, runtime, notifications):
    bob = user()
    await register(worker, runtime, bob, token())
    notifications.rpc.answer("messaging", "missed_items", lambda command: Failure(code="timeout", message="late"))
    with pytest.raises(Forwarded):
        await react(notifications, presence(bob, False, 3))


async def test_announcements_go_to_every_offline_participant(worker, runtime, notifications, sender):
    ann, bob, a1, b1 = user(), user(), token(), token()
    await register(worker, runtime, ann, a1)
    await register(worker, runtime, bob, b1)
    await react(notifications, item_added("r1", [ann, bob], sender_id=None, content="Ann added Bob"))
    assert [p.body for p in sender.to(a1)] == [p.body for p in sender.to(b1)] == ["Ann added Bob"]


async def test_a_redelivered_event_pushes_once(worker, runtime, notifications, sender):
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    added = item_added("r1", [ann, bob], sender_id=ann)
    await react(notifications, added)
    await react(notifications, added)
    assert len(sender.to(value)) == 1


async def test_a_crash_midway_resends_to_none_already_done(worker, runtime, notifications, sender):
    """A send blows up midway and the event is redelivered: no device is pushed twice (the one that blew up
    is not tried again either: pushes are at most once)."""
    ann, bob = user(), user()
    values = [token() for _ in range(3)]
    for value in values:
        await register(worker, runtime, bob, value)
    sender.answer(values[1], ConnectionError("worker lost its network"))
    added = item_added("r1", [ann, bob], sender_id=ann)
    with pytest.raises(ConnectionError):
        await react(notifications, added)
    await react(notifications, added)  # the redelivery
    assert sorted(len(sender.to(value)) for value in values) == [1, 1, 1]


async def test_gone_tokens_are_forgotten_and_others_kept(worker, runtime, notifications, sender):
    ann, bob, gone, refused, busy = user(), user(), token(), token(), token()
    for value in (gone, refused, busy):
        await register(worker, runtime, bob, value)
    sender.answer(gone, Outcome.GONE)
    sender.answer(refused, Outcome.FAILED)
    sender.answer(busy, Outcome.RETRY)
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann))
    assert (await owner(gone), await owner(refused), await owner(busy)) == (None, bob, bob)


async def test_a_gone_token_that_moved_meanwhile_is_kept(worker, runtime):
    bob, cid, value = user(), user(), token()
    await register(worker, runtime, cid, value)
    await store.delete_device(Target("token", value), bob)  # bob's push found it gone, but it is cid's now
    assert await owner(value) == cid


# Notification levels --------------------------------------------------------------------------


async def test_a_muted_room_pushes_nothing_and_mentions_push_only_mentions(worker, runtime, notifications, sender):
    """Bob muted the room, Cid asked for mentions only, Dee left it at ``all``: a plain message pushes
    Dee; one mentioning Bob and Cid pushes Cid (saying so) and Dee; ``@room`` pushes Cid and Dee."""
    ann, bob, cid, dee = user(), user(), user(), user()
    for who in (bob, cid, dee):
        await register(worker, runtime, who, f"tok-{who}")
    await react(notifications, level_set("r1", bob, "none", 1))
    await react(notifications, level_set("r1", cid, "mentions", 1))
    room = [ann, bob, cid, dee]
    await react(notifications, item_added("r1", room, sender_id=ann, content="plain", seq=1))
    await react(notifications, mentioning(item_added("r1", room, sender_id=ann, content="you two", seq=2), bob, cid))
    await react(notifications, mentioning(item_added("r1", room, sender_id=ann, content="all", seq=3), room=True))
    assert sender.to(f"tok-{bob}") == []
    assert [p.body for p in sender.to(f"tok-{cid}")] == ["Ann mentioned you: you two", "Ann: all"]
    assert [p.body for p in sender.to(f"tok-{dee}")] == ["Ann: plain", "Ann: you two", "Ann: all"]


async def test_a_level_holds_in_its_room_only_and_the_newest_setting_wins(worker, runtime, notifications, sender):
    """Bob muted r1, then (version 3) chose all again; the older ``none`` arriving late changes nothing.
    His level in r1 never affects r2."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await react(notifications, level_set("r1", bob, "none", 2))
    await react(notifications, item_added("r2", [ann, bob], sender_id=ann, seq=1))
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=1))
    await react(notifications, level_set("r1", bob, "all", 3))
    await react(notifications, level_set("r1", bob, "none", 2))  # a copy, late
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=2))
    assert [(p.data["room_id"], p.data["seq"]) for p in sender.to(value)] == [("r2", "1"), ("r1", "2")]
    assert await store.level("r1", bob) == Level("r1", bob, "all", 3)


async def test_the_level_decision_follows_the_mirror_and_costs_no_database_call(
    worker, runtime, notifications, sender, monkeypatch
):
    """Muted in this process's mirror: nothing is read or written, not even devices. A level stored by
    another process (not yet in this one's mirror) counts from the next reload."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await notifications.react("levels", level_set("r1", bob, "none", 1))
    calls = database_calls(monkeypatch, READS + WRITES)
    await react(notifications, item_added("r1", [ann, bob], sender_id=ann, seq=1))
    assert calls == [] and sender.sent == []
    await notifications.react("track_levels", level_set("r2", bob, "none", 1))  # another process's
    await react(notifications, item_added("r2", [ann, bob], sender_id=ann, seq=1))
    await notifications.reload()
    await react(notifications, item_added("r2", [ann, bob], sender_id=ann, seq=2))
    assert [(p.data["room_id"], p.data["seq"]) for p in sender.to(value)] == [("r2", "1")]


async def test_a_new_process_loads_the_stored_levels(notifications):
    bob, cid = user(), user()
    await notifications.react("track_levels", level_set("r1", bob, "mentions", 2))
    await notifications.react("track_levels", level_set("r1", cid, "none", 1))
    later = replica(notifications)
    await later.reload()  # what a process does before its subscribers start
    assert LEVELS.state(later.runtime) == {
        ("r1", bob): Level("r1", bob, "mentions", 2),
        ("r1", cid): Level("r1", cid, "none", 1),
    }


async def test_going_offline_pushes_the_missed_items_the_level_asks_for(worker, runtime, notifications, sender):
    """Bob asked for mentions in r1: of what messaging says he missed there, only the mention is pushed."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    await react(notifications, level_set("r1", bob, "mentions", 1))
    plain = item_added("r1", [ann, bob], sender_id=ann, content="plain", seq=3)
    mention = mentioning(item_added("r1", [ann, bob], sender_id=ann, content="bob?", seq=4), bob)
    answer_missed(notifications, plain, mention)
    await react(notifications, presence(bob, False, 3))
    assert [p.body for p in sender.to(value)] == ["Ann mentioned you: bob?"]


# Deleted items --------------------------------------------------------------------------------


async def test_an_item_deleted_before_its_push_went_out_is_not_pushed(worker, runtime, notifications, sender):
    """The delete reached this worker before the item's event did (it waited in its queue): no push.
    An edit or a reaction withdraws nothing."""
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    gone = item_added("r1", [ann, bob], sender_id=ann, content="oops", seq=1)
    kept = item_added("r1", [ann, bob], sender_id=ann, content="fine", seq=3)
    await react(notifications, changed(gone, "delete"))
    await react(notifications, changed(kept, "edit"))
    await react(notifications, changed(kept, "reaction_added"))
    await react(notifications, gone)
    await react(notifications, kept)
    assert [p.body for p in sender.to(value)] == ["Ann: fine"]
    await react(notifications, changed(gone, "delete"))  # a copy: still recorded once
    assert await store.deleted([ItemAdded.model_validate(gone.payload).item.id, "other"]) == {
        ItemAdded.model_validate(gone.payload).item.id
    }


async def test_an_item_deleted_after_messaging_listed_it_as_missed_is_not_pushed(
    worker, runtime, notifications, sender
):
    ann, bob, value = user(), user(), token()
    await register(worker, runtime, bob, value)
    gone = item_added("r1", [ann, bob], sender_id=ann, content="oops", seq=3)
    kept = item_added("r1", [ann, bob], sender_id=ann, content="fine", seq=4)
    answer_missed(notifications, gone, kept)
    await react(notifications, changed(gone, "delete"))
    await react(notifications, presence(bob, False, 3))
    assert [p.body for p in sender.to(value)] == ["Ann: fine"]


class DeletedMeanwhile:
    """The push service answers RETRY to the first attempt; while the push waits for its next one,
    its item is deleted (the delete reaches this worker's projection)."""

    def __init__(self, notifications: Harness, delete: AnyEvent) -> None:
        self.notifications, self.delete = notifications, delete
        self.attempts = 0

    async def send(self, push: Push, target: Target) -> Outcome:
        self.attempts += 1
        await react(self.notifications, self.delete)
        return Outcome.RETRY

    async def close(self) -> None:
        pass


async def test_a_push_waiting_for_a_retry_is_withdrawn_when_its_item_is_deleted(notifications):
    """Retrying asks storage before each new attempt: the deleted item's push is not tried again."""
    gone = item_added("r1", ["ann", "bob"], sender_id="ann", seq=1)
    service = DeletedMeanwhile(notifications, changed(gone, "delete"))
    item_id = ItemAdded.model_validate(gone.payload).item.id
    push = Push("bob", "Den", "Ann: hi", {"room_id": "r1", "seq": "1"}, "r1", "r1", item_id)
    retrying = Retrying(service, attempts=4, backoff=0, withdrawn=store.withdrawn)
    with capture_logs() as logs:
        assert await retrying.send(push, Target("token", "t1")) is Outcome.WITHDRAWN
    assert service.attempts == 1
    assert [entry["event"] for entry in logs] == ["push withdrawn: its item was deleted"]


async def test_the_worker_s_firebase_sender_withdraws_the_pushes_of_deleted_items(tmp_path):
    """With credentials, the app's sender retries through Retrying, which asks storage (``withdrawn``)."""
    account = write_service_account(tmp_path, "http://127.0.0.1:9/token")
    settings = Settings(fcm_credentials=str(account), fcm_endpoint="http://127.0.0.1:9/{project_id}")
    sender = app.default_sender(settings)
    try:
        assert isinstance(sender, Retrying) and sender.withdrawn is store.withdrawn
    finally:
        await sender.close()


# The port's adapters --------------------------------------------------------------------------


async def test_retrying_tries_again_then_stops():
    fake = FakeSender()
    push = Push("bob", "Den", "hi", {}, "r1", "r1", "i1")
    fake.answer("t1", Outcome.RETRY, Outcome.RETRY)
    assert await Retrying(fake, attempts=4, backoff=0).send(push, Target("token", "t1")) is Outcome.SENT
    fake.answer("t2", *[Outcome.RETRY] * 10)
    assert await Retrying(fake, attempts=4, backoff=0).send(push, Target("token", "t2")) is Outcome.RETRY
    assert (len(fake.to("t1")), len(fake.to("t2"))) == (3, 4)
    fake.answer("t3", Outcome.GONE)
    assert await Retrying(fake, attempts=4, backoff=0).send(push, Target("token", "t3")) is Outcome.GONE
    assert len(fake.to("t3")) == 1


async def test_without_credentials_pushes_are_logged_with_tokens_shortened():
    value = "secret-" + "x" * 150
    sender = create_sender(None, "https://unused/{project_id}")
    assert isinstance(sender, LogSender)
    with capture_logs() as logs:
        outcome = await sender.send(
            Push("bob", "Den", "Ann: hi", {"room_id": "r1", "seq": "1"}, "r1", "r1", "i1"), Target("token", value)
        )
    assert outcome is Outcome.SENT
    [entry] = logs
    assert entry["log_level"] == "info" and entry["user_id"] == "bob" and entry["body"] == "Ann: hi"
    assert value not in repr(entry) and entry["target"].startswith("token:secret-x")
