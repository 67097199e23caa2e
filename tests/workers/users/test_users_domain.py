"""Users' rules, without I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts.routing import room_key, user_key
from contracts.shapes import User
from workers.users import domain

LIMIT = 20


def test_profile_changes_only_when_it_differs():
    """A sign-in with the same profile changes nothing."""
    state, facts = domain.sign_in(None, User(id="p", name="Pat"), "")
    assert [f.type for f in facts] == ["user.profile_changed"]
    assert domain.sign_in(state, User(id="p", name="Pat"), "")[1] == []
    assert domain.sign_in(state, User(id="p", name="Patricia"), "")[1]


def test_those_sharing_a_room_learn_of_a_new_user_or_a_new_name_or_picture():
    """user.updated goes to the user's rooms (the user riding along) for a first sign-in or a changed
    name or picture, not for an email."""

    def sends(facts):
        return [(send.key, send.event, send.data.user) for fact in facts for send in fact.sends]

    state, facts = domain.sign_in(None, User(id="p", name="Pat"), "")
    assert sends(facts) == [(user_key("p"), "user.updated", User(id="p", name="Pat"))]  # in no room yet
    pictured = User(id="p", name="Pat", image_url="https://x.org/p.png")
    state, facts = domain.sign_in(state, pictured, "", ["r1", "r2"])
    assert sends(facts) == [(room_key("r1"), "user.updated", pictured), (room_key("r2"), "user.updated", pictured)]
    assert [r.key for send in facts[0].sends for r in send.riders] == [user_key("p"), user_key("p")]
    state, facts = domain.sign_in(state, pictured, "pat@x.org", ["r1"])
    assert [f.type for f in facts] == ["user.profile_changed"] and sends(facts) == []
    assert state.email == "pat@x.org"
    assert domain.sign_in(state, User(id="p", name="Patricia"), "pat@x.org")[1][0].sends[0].data.user.name == "Patricia"


def test_presence_goes_to_the_users_rooms_and_the_user():
    """One send per room, each carrying the user's own key; with no room, the user's key alone."""
    state = domain.UserState(id="p", name="Pat", image_url=None)
    [_, online] = domain.connect(state, "g1/a", LIMIT, ["r1", "r2"])
    assert [(s.key, s.event, s.data.online) for s in online.sends] == [
        (room_key("r1"), "presence.changed", True),
        (room_key("r2"), "presence.changed", True),
    ]
    assert {(r.key, r.data.online) for s in online.sends for r in s.riders} == {(user_key("p"), True)}
    [_, offline] = domain.disconnect(state, "g1/a")
    assert [(s.key, s.data.online, s.riders) for s in offline.sends] == [(user_key("p"), False, ())]


def test_a_newcomer_is_introduced_to_the_room():
    """Its members learn the newcomer's profile and presence."""
    state = domain.UserState(id="p", name="Pat", image_url=None, connections=["g1/a"])
    sends = domain.introduce(state, "r1")
    assert [(s.key, s.event) for s in sends] == [(room_key("r1"), "user.updated"), (room_key("r1"), "presence.changed")]
    assert sends[0].data.user == User(id="p", name="Pat") and sends[1].data.online is True
    assert domain.introduce(domain.UserState(id="q", name="Q", image_url=None), "r1")[1].data.online is False


def members(room_id, version, *user_ids):
    return domain.RoomMembers(room_id, frozenset(user_ids), version)


def test_memberships_keep_the_newest_version_of_each_room():
    """Late, repeated or out-of-order room events change nothing they should not."""
    known = domain.Memberships()
    known.merge([members("r1", 1, "ann", "bob"), members("r2", 1, "ann", "cy")])
    known.merge([members("r1", 3, "ann")])  # bob left
    known.merge([members("r1", 2, "ann", "bob", "dee")])  # late
    assert known.rooms_of("ann") == ["r1", "r2"] and known.rooms_of("bob") == [] and known.rooms_of("dee") == []
    assert known.sharing("ann") == {"ann", "cy"}
    assert known.sharing("cy") == {"ann", "cy"}
    assert known.sharing("bob") == {"bob"}  # in no room: only themselves
    known.merge([members("r2", 2, "cy")])
    assert known.sharing("ann") == {"ann"} and known.rooms_of("ann") == ["r1"]


def test_a_page_says_where_the_next_one_starts():
    """One more than the limit was read: the cursor names the last user shown."""
    users = [User(id=f"u{n}", name=name) for n, name in enumerate(["Al", "Bo", "Cy"])]
    page = domain.page(users, 2)
    assert [u.name for u in page.users] == ["Al", "Bo"]
    assert page.next_cursor is not None and domain.place_of(page.next_cursor) == "Bo\x01u1"
    assert domain.page(users, 3).next_cursor is None
    for bad in ["!!", domain.cursor_after("no separator"), domain.cursor_after("Bo\x01u1") + "=="]:
        with pytest.raises(domain.BadCursorError) as refused:
            domain.place_of(bad)
        assert refused.value.code == "bad_request"


def test_the_directory_order_is_name_then_id():
    """The place a user is listed at sorts as (name, id) does, in code point order."""
    users = [User(id=i, name=n) for i, n in [("b", "a"), ("a", "ab"), ("c", "a"), ("d", "B"), ("e", "é"), ("f", "")]]
    assert sorted(users, key=domain.listed_as) == domain.by_name(users)
    assert [u.id for u in domain.by_name(users)] == ["f", "d", "b", "c", "a", "e"]


def test_a_search_matches_its_text_literally_whatever_the_case():
    """Regular expression characters in a query stand for themselves; case is folded."""
    assert domain.holding("A.b*") == "a\\.b\\*"
    assert domain.holding("STRASSE") == domain.folded("straße")


def test_a_gone_gateway_closes_only_its_connections():
    """Presence goes offline when the last gateway holding the user's connections is gone."""
    state = domain.UserState(id="p", name="Pat", image_url=None)
    domain.connect(state, "g1/a", LIMIT)
    domain.connect(state, "g1/b", LIMIT)
    domain.connect(state, "g2/c", LIMIT)
    assert domain.gateways([state]) == {"g1", "g2"}
    facts = domain.gateway_gone(state, "g1")
    assert [f.type for f in facts] == ["user.connection_closed", "user.connection_closed"]
    assert state.connections == ["g2/c"]
    facts = domain.gateway_gone(state, "g2")
    assert [f.type for f in facts] == ["user.connection_closed", "user.presence_changed"]
    assert facts[-1].payload.online is False
    assert domain.gateway_gone(state, "g2") == []


def test_going_offline_says_what_every_connection_had_been_sent():
    """Per room, the latest seq any connection closed since the user came online had sent on; the
    next time online starts afresh."""
    state = domain.UserState(id="p", name="Pat", image_url=None)
    domain.connect(state, "g1/a", LIMIT)
    domain.connect(state, "g2/b", LIMIT)
    assert [f.type for f in domain.disconnect(state, "g1/a", {"r1": 7, "r2": 3})] == ["user.connection_closed"]
    facts = domain.disconnect(state, "g2/b", {"r1": 5, "r3": 1})
    assert facts[-1].payload.online is False
    assert facts[-1].payload.delivered == {"r1": 7, "r2": 3, "r3": 1}
    domain.connect(state, "g1/c", LIMIT)
    assert domain.disconnect(state, "g1/c")[-1].payload.delivered == {}


def test_connections_are_capped_over_every_gateway():
    """One connection past the limit, wherever it opens, is refused and changes nothing."""
    state = domain.UserState(id="p", name="Pat", image_url=None)
    domain.connect(state, "g1/a", 2)
    domain.connect(state, "g2/b", 2)
    assert domain.connect(state, "g2/b", 2) == []  # the same connection again is fine
    with pytest.raises(domain.TooManyConnectionsError) as refused:
        domain.connect(state, "g1/c", 2)
    assert refused.value.code == "rate_limited"
    assert state.connections == ["g1/a", "g2/b"]
    domain.disconnect(state, "g1/a")
    assert [f.type for f in domain.connect(state, "g1/c", 2)] == ["user.connection_opened"]


# Invites and device sessions ---------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_an_invite_is_used_up_by_its_last_newcomer():
    """Each newcomer takes one use; the same one again takes none; one past the last is conflict."""
    invite, facts = domain.create_invite("c0de", "ann", NOW, max_uses=2, expires_in=3600)
    assert [f.type for f in facts] == ["user.invite_created"]
    assert invite.view(NOW, "https://chat.example").link == "https://chat.example/invite/c0de"
    assert [f.type for f in domain.redeem(invite, "invite:a", NOW)] == ["user.invite_redeemed"]
    assert domain.redeem(invite, "invite:a", NOW) == []
    domain.redeem(invite, "invite:b", NOW)
    assert invite.status(NOW) == "used_up"
    with pytest.raises(domain.InviteUsedUpError) as refused:
        domain.redeem(invite, "invite:c", NOW)
    assert refused.value.code == "conflict" and invite.uses == 2


def test_expired_revoked_and_unknown_invites_are_refused():
    """Expired or revoked: forbidden; unknown: not_found; only its maker revokes it."""
    invite, _ = domain.create_invite("c0de", "ann", NOW, max_uses=5, expires_in=60)
    with pytest.raises(domain.InviteEndedError, match="expired") as expired:
        domain.redeem(invite, "invite:a", NOW + timedelta(seconds=60))
    assert expired.value.code == "forbidden"
    with pytest.raises(domain.InviteNotFoundError):
        domain.revoke_invite(invite, "bob")
    assert [f.type for f in domain.revoke_invite(invite, "ann")] == ["user.invite_revoked"]
    assert domain.revoke_invite(invite, "ann") == []
    with pytest.raises(domain.InviteEndedError, match="revoked"):
        domain.redeem(invite, "invite:a", NOW)
    with pytest.raises(domain.InviteNotFoundError) as unknown:
        domain.redeem(None, "invite:a", NOW)
    assert unknown.value.code == "not_found"


def test_a_session_slides_until_it_is_revoked():
    """Renewed by its own user while live (the later expiry wins); revoked, it is refused and its
    connections are told on the user's key."""
    later = NOW + timedelta(days=90)
    session, facts = domain.start_session(None, "s1", "ann", "Firefox", NOW, later)
    assert [f.type for f in facts] == ["user.session_started"]
    assert domain.start_session(session, "s1", "ann", "Firefox", NOW, later)[1] == []
    domain.renew_session(session, "ann", NOW + timedelta(days=1), later + timedelta(days=1))
    assert session.expires_at == later + timedelta(days=1) and session.last_used_at == NOW + timedelta(days=1)
    with pytest.raises(domain.SessionEndedError) as other:
        domain.renew_session(session, "bob", NOW, later)
    assert other.value.code == "unauthenticated"
    [revoked] = domain.revoke_session(session, "ann", NOW)
    assert [(s.key, s.event, s.data.session_id) for s in revoked.sends] == [(user_key("ann"), "session.revoked", "s1")]
    assert domain.revoke_session(session, "ann", NOW) == []
    with pytest.raises(domain.SessionEndedError):
        domain.renew_session(session, "ann", NOW, later)
    with pytest.raises(domain.UnknownSessionError):
        domain.revoke_session(session, "bob", NOW)


def test_a_session_is_renewed_at_most_once_an_hour():
    """Reconnecting often writes nothing: use and expiry move once they would move by an hour."""
    session, _ = domain.start_session(None, "s1", "ann", "Phone", NOW, NOW + timedelta(days=90))
    soon = NOW + timedelta(minutes=59)
    assert domain.renew_session(session, "ann", soon, soon + timedelta(days=90)) == []
    assert session.last_used_at == NOW and session.expires_at == NOW + timedelta(days=90)
    later = NOW + timedelta(hours=1)
    [renewed] = domain.renew_session(session, "ann", later, later + timedelta(days=90))
    assert renewed.type == "user.session_renewed" and session.expires_at == later + timedelta(days=90)
    domain.revoke_session(session, "ann", later)
    with pytest.raises(domain.SessionEndedError):  # an ended session is refused however recent its use
        domain.renew_session(session, "ann", later, later + timedelta(days=90))


def test_an_expired_session_is_not_renewed_nor_listed():
    session, _ = domain.start_session(None, "s1", "ann", "Phone", NOW, NOW + timedelta(days=1))
    recent, _ = domain.start_session(None, "s2", "ann", "Laptop", NOW + timedelta(hours=1), NOW + timedelta(days=2))
    assert [s.id for s in domain.signed_in([session, recent], NOW + timedelta(hours=2))] == ["s2", "s1"]
    assert [s.id for s in domain.signed_in([session, recent], NOW + timedelta(days=1))] == ["s2"]
    with pytest.raises(domain.SessionEndedError):
        domain.renew_session(session, "ann", NOW + timedelta(days=1), NOW + timedelta(days=91))


def test_a_google_account_keeps_the_id_it_had_before_namespacing():
    """Its bare sub, when that user holds the same email; else google:<sub>."""
    legacy = domain.UserState(id="1234", name="Ann", image_url=None, email="Ann@Example.com")
    assert domain.known_as("google:1234", legacy, "ann@example.com") == "1234"
    assert domain.known_as("google:1234", legacy, "eve@example.com") == "google:1234"
    assert domain.known_as("google:1234", None, "ann@example.com") == "google:1234"
