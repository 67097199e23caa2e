"""Users' rules, without I/O."""

import pytest

from contracts.routing import EVERYONE
from contracts.shapes import User
from workers.users import domain

LIMIT = 20


def test_profile_changes_only_when_it_differs():
    """A sign-in with the same profile changes nothing."""
    state, facts = domain.sign_in(None, User(id="p", name="Pat"), "")
    assert [f.type for f in facts] == ["user.profile_changed"]
    assert domain.sign_in(state, User(id="p", name="Pat"), "")[1] == []
    assert domain.sign_in(state, User(id="p", name="Patricia"), "")[1]


def test_everyone_learns_of_a_new_user_or_a_new_name_or_picture():
    """user.updated goes to everyone for a first sign-in or a changed name or picture, not for an email."""

    def sends(facts):
        return [(send.key, send.event, send.data.user) for fact in facts for send in fact.sends]

    state, facts = domain.sign_in(None, User(id="p", name="Pat"), "")
    assert sends(facts) == [(EVERYONE, "user.updated", User(id="p", name="Pat"))]
    pictured = User(id="p", name="Pat", image_url="https://x.org/p.png")
    state, facts = domain.sign_in(state, pictured, "")
    assert sends(facts) == [(EVERYONE, "user.updated", pictured)]
    state, facts = domain.sign_in(state, pictured, "pat@x.org")
    assert [f.type for f in facts] == ["user.profile_changed"] and sends(facts) == []
    assert state.email == "pat@x.org"
    assert domain.sign_in(state, User(id="p", name="Patricia"), "pat@x.org")[1][0].sends[0].data.user.name == "Patricia"


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
