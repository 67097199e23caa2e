"""Who gets which push: the notifications domain, without I/O."""

import ast
from datetime import UTC, datetime
from pathlib import Path

from contracts.events import ItemAdded
from contracts.shapes import RoomItem
from workers.notifications import domain
from workers.notifications.domain import Device, Outcome, Target

NOW = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def appended(content="hi", sender="ann", kind="message", participants=("ann", "bob", "cid"), seq=7):
    item = RoomItem(
        id="i1",
        room_id="r1",
        seq=seq,
        kind=kind,
        sender_id=sender if kind == "message" else None,
        content=content,
        sent_at=NOW,
    )
    return ItemAdded(
        item=item,
        room_name="Den",
        sender_name="Ann" if kind == "message" else None,
        participant_ids=list(participants),
    )


def device(user_id, value, kind="token"):
    return Device(Target(kind, value), user_id, "android", NOW)


def test_a_message_is_pushed_to_offline_participants_but_its_sender():
    """Title is the room name, body is sender and content, data carries room and seq as strings."""
    pushes = domain.item_pushes(appended(), offline={"ann", "bob"})
    assert [p.user_id for p in pushes] == ["bob"]
    push = pushes[0]
    assert (push.title, push.body) == ("Den", "Ann: hi")
    assert push.data == {"room_id": "r1", "seq": "7"}
    assert push.collapse_key == push.tag == "r1"


def test_an_announcement_body_is_its_content():
    pushes = domain.item_pushes(appended("Ann added Cid", kind="announcement"), offline={"ann", "bob"})
    assert [(p.user_id, p.body) for p in pushes] == [("ann", "Ann added Cid"), ("bob", "Ann added Cid")]


def test_only_the_room_as_it_was_gets_pushes():
    """A user who left before the item is not in its participants: no push, even if offline."""
    pushes = domain.item_pushes(appended(participants=("ann", "bob")), offline={"bob", "cid"})
    assert [p.user_id for p in pushes] == ["bob"]


def test_long_content_is_cut_with_an_ellipsis():
    body = domain.item_pushes(appended("x" * 4000), offline={"bob"})[0].body
    assert len(body) == domain.BODY_LIMIT and body.endswith("\u2026") and body.startswith("Ann: xxx")


def test_short_content_is_kept_whole():
    assert domain.clip("a" * domain.BODY_LIMIT) == "a" * domain.BODY_LIMIT


def test_every_device_of_a_recipient_gets_the_push_once():
    pushes = domain.item_pushes(appended(), offline={"bob", "cid"})
    devices = [device("bob", "b1"), device("bob", "b2"), device("cid", "c1"), device("ann", "a1")]
    planned = domain.deliveries(pushes, devices, done=set())
    assert sorted((d.push.user_id, d.target.value) for d in planned) == [("bob", "b1"), ("bob", "b2"), ("cid", "c1")]


def test_targets_already_done_are_skipped():
    """A redelivered event resumes where a crash left it."""
    pushes = domain.item_pushes(appended(), offline={"bob"})
    devices = [device("bob", "b1"), device("bob", "b2")]
    planned = domain.deliveries(pushes, devices, done={Target("token", "b1").id})
    assert [d.target.value for d in planned] == ["b2"]


def test_a_target_is_registered_to_its_latest_user():
    moved = domain.register("cid", Target("token", "t"), "android", NOW)
    assert moved.user_id == "cid"
    assert domain.owned_by(moved, "cid") and not domain.owned_by(moved, "bob") and not domain.owned_by(None, "bob")


def test_targets_of_different_kinds_differ_and_logs_never_show_them_whole():
    token = "f" * 160
    assert Target("token", token).id != Target("fid", token).id
    assert token not in Target("token", token).short()


def test_only_gone_targets_are_forgotten():
    assert [o for o in Outcome if domain.forget_target(o)] == [Outcome.GONE]


def test_backoff_doubles_up_to_a_cap():
    assert [domain.retry_delay(n, 0.5) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert domain.retry_delay(20, 0.5, cap=30) == 30


def test_the_domain_does_no_io():
    """sans-I/O: it imports the standard library and contracts only."""
    tree = ast.parse(Path(domain.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= {
        "__future__",
        "collections",
        "hashlib",
        "dataclasses",
        "datetime",
        "enum",
        "contracts",
    }
