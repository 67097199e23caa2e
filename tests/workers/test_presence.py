"""The presence replica notifications and messaging keep (workers.presence), without I/O."""

from workers import presence
from workers.presence import Presence


def test_users_never_seen_online_are_offline():
    known = {"bob": Presence("bob", True, 3), "cid": Presence("cid", False, 4)}
    assert presence.offline(["ann", "bob", "cid"], known) == {"ann", "cid"}


def test_merging_presence_keeps_the_newest_of_each_user():
    known = {"bob": Presence("bob", False, 5), "cid": Presence("cid", True, 1)}
    presence.merge_presence(known, [Presence("bob", True, 4), Presence("cid", False, 2), Presence("dan", True, 1)])
    presence.merge_presence(known, [Presence("bob", True, 5)])  # the same version again: no change
    assert known == {
        "bob": Presence("bob", False, 5),
        "cid": Presence("cid", False, 2),
        "dan": Presence("dan", True, 1),
    }


def test_presence_applies_only_newer_versions():
    current = Presence("bob", True, 5)
    assert presence.move_presence(current, "bob", False, 4) is None
    assert presence.move_presence(current, "bob", False, 5) is None
    assert presence.move_presence(current, "bob", False, 6) == Presence("bob", False, 6)
    assert presence.move_presence(None, "bob", True, 1) == Presence("bob", True, 1)
