"""Who gets which push: the notifications domain, without I/O."""

import ast
from datetime import UTC, datetime
from pathlib import Path

from contracts.events import ItemAdded, ItemChanged
from contracts.shapes import Attachment, RoomItem
from workers.notifications import domain
from workers.notifications.domain import Device, Level, Outcome, Target

NOW = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def appended(content="hi", sender="ann", kind="message", participants=("ann", "bob", "cid"), seq=7, **fields):
    item = RoomItem(
        id="i1",
        room_id="r1",
        seq=seq,
        kind=kind,
        sender_id=sender if kind != "announcement" else None,
        content=content,
        sent_at=NOW,
        **fields,
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
    pushes = domain.item_pushes(appended(), offline={"ann", "bob"}, levels={})
    assert [p.user_id for p in pushes] == ["bob"]
    push = pushes[0]
    assert (push.title, push.body) == ("Den", "Ann: hi")
    assert push.data == {"room_id": "r1", "seq": "7"}
    assert push.collapse_key == push.tag == "r1"


def test_an_announcement_body_is_its_content():
    pushes = domain.item_pushes(appended("Ann added Cid", kind="announcement"), offline={"ann", "bob"}, levels={})
    assert [(p.user_id, p.body) for p in pushes] == [("ann", "Ann added Cid"), ("bob", "Ann added Cid")]


def test_only_the_room_as_it_was_gets_pushes():
    """A user who left before the item is not in its participants: no push, even if offline."""
    pushes = domain.item_pushes(appended(participants=("ann", "bob")), offline={"bob", "cid"}, levels={})
    assert [p.user_id for p in pushes] == ["bob"]


def test_long_content_is_cut_with_an_ellipsis():
    body = domain.item_pushes(appended("x" * 4000), offline={"bob"}, levels={})[0].body
    assert len(body) == domain.BODY_LIMIT and body.endswith("\u2026") and body.startswith("Ann: xxx")


def test_short_content_is_kept_whole():
    assert domain.clip("a" * domain.BODY_LIMIT) == "a" * domain.BODY_LIMIT


def test_every_device_of_a_recipient_gets_the_push_once():
    pushes = domain.item_pushes(appended(), offline={"bob", "cid"}, levels={})
    devices = [device("bob", "b1"), device("bob", "b2"), device("cid", "c1"), device("ann", "a1")]
    planned = domain.deliveries(pushes, devices, done=set())
    assert sorted((d.push.user_id, d.target.value) for d in planned) == [("bob", "b1"), ("bob", "b2"), ("cid", "c1")]


def test_targets_already_done_are_skipped():
    """A redelivered event resumes where a crash left it."""
    pushes = domain.item_pushes(appended(), offline={"bob"}, levels={})
    devices = [device("bob", "b1"), device("bob", "b2")]
    planned = domain.deliveries(pushes, devices, done={Target("token", "b1").id})
    assert [d.target.value for d in planned] == ["b2"]


# Levels and mentions ---------------------------------------------------------------------------


def levels(*said: tuple[str, str]) -> dict:
    """Levels in room r1, by user: ``("bob", "none")``."""
    known: dict = {}
    domain.merge_levels(known, [Level("r1", user_id, level, 1) for user_id, level in said])
    return known


def pushed_to(added: ItemAdded, known: dict, offline=frozenset({"ann", "bob", "cid"})) -> list[str]:
    return [push.user_id for push in domain.item_pushes(added, set(offline), known)]


def test_a_muted_room_pushes_nothing_even_a_mention():
    muted = levels(("bob", "none"))
    assert pushed_to(appended(), muted) == ["cid"]
    assert pushed_to(appended(mentions=["bob"], mentions_room=True), muted) == ["cid"]


def test_at_mentions_only_what_mentions_the_user_or_the_room_is_pushed():
    only = levels(("bob", "mentions"), ("cid", "mentions"))
    assert pushed_to(appended(), only) == []
    assert pushed_to(appended(mentions=["bob"]), only) == ["bob"]
    assert pushed_to(appended(mentions_room=True), only) == ["bob", "cid"]
    assert pushed_to(appended("Ann added Dee", kind="announcement"), only) == ["ann"]  # no level: all


def test_a_mention_says_so_in_the_body_of_the_one_mentioned():
    pushes = domain.item_pushes(appended("are you in?", mentions=["bob"]), {"bob", "cid"}, {})
    assert [(p.user_id, p.body) for p in pushes] == [
        ("bob", "Ann mentioned you: are you in?"),
        ("cid", "Ann: are you in?"),
    ]
    everyone = domain.item_pushes(appended("lunch", mentions_room=True), {"bob"}, {})
    assert [p.body for p in everyone] == ["Ann: lunch"]


def attached(*kinds):
    return [
        Attachment(id=f"u{i}", name="f", content_type="x/y", kind=kind, size=1, thumbnails=[])
        for i, kind in enumerate(kinds)
    ]


def test_a_message_of_attachments_only_says_what_was_sent_and_carries_no_link():
    """Photos and files (v1.2): "Ann sent a photo", never a file's link."""
    cases = [
        (attached("image"), "Ann sent a photo"),
        (attached("image", "image"), "Ann sent 2 photos"),
        (attached("file"), "Ann sent a file"),
        (attached("image", "video"), "Ann sent 2 files"),
    ]
    for attachments, text in cases:
        [push] = domain.item_pushes(appended("", attachments=attachments), {"bob"}, {})
        assert push.body == text and push.data == {"room_id": "r1", "seq": "7"}
    [push] = domain.item_pushes(appended("look!", attachments=attached("image")), {"bob"}, {})
    assert push.body == "Ann: look!"


def test_the_default_level_is_all_and_another_rooms_level_does_not_count():
    elsewhere = {("r2", "bob"): Level("r2", "bob", "none", 3)}
    assert domain.level_of(elsewhere, "r1", "bob") == "all"
    assert pushed_to(appended(), elsewhere) == ["bob", "cid"]


def test_the_newest_level_wins_whatever_the_order():
    known: dict = {}
    domain.merge_levels(known, [Level("r1", "bob", "none", 5), Level("r1", "bob", "mentions", 4)])
    assert domain.level_of(known, "r1", "bob") == "none"
    domain.merge_levels(known, [Level("r1", "bob", "all", 6)])
    assert domain.level_of(known, "r1", "bob") == "all"
    assert domain.move_level(known[("r1", "bob")], Level("r1", "bob", "none", 6)) is None  # the same again


def test_change_entries_and_deleted_items_are_never_pushed():
    change = appended("", kind="reaction_added", target_seq=3, emoji="\U0001f44d")
    assert pushed_to(change, {}) == []
    assert pushed_to(appended(deleted_at=NOW), {}) == []


def changed(kind: str) -> ItemChanged:
    item = appended().item
    entry = RoomItem(id="c1", room_id="r1", seq=9, kind=kind, sender_id="ann", content="", sent_at=NOW, target_seq=7)
    return ItemChanged(item=item, change=entry, participant_ids=["ann", "bob"])


def test_only_a_delete_withdraws_the_pushes_of_its_item():
    assert domain.deleted_item(changed("delete")) == "i1"
    assert [domain.deleted_item(changed(kind)) for kind in ("edit", "reaction_added", "reaction_removed")] == [None] * 3
    pushes = domain.item_pushes(appended(), {"bob"}, {})
    assert domain.withdraw(pushes, {"i1"}) == [] and domain.withdraw(pushes, {"i2"}) == pushes


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
