"""Users: profiles and presence, sans-I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import ConnectionClosed, ConnectionOpened, PresenceChanged, ProfileChanged
from contracts.frames import PresenceChangedFrame, UserUpdatedFrame
from contracts.routing import EVERYONE
from contracts.shapes import User


class UsersError(Rejected):
    pass


class UnknownUserError(UsersError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("unknown user")


class TooManyConnectionsError(UsersError):
    code = "rate_limited"

    def __init__(self) -> None:
        super().__init__("too many connections")


@dataclass
class UserState:
    id: str
    name: str
    image_url: str | None
    email: str = ""
    connections: list[str] = field(default_factory=list)  # "<gateway_id>/<connection_id>"

    def view(self) -> User:
        return User(id=self.id, name=self.name, image_url=self.image_url)


def sign_in(state: UserState | None, profile: User, email: str) -> tuple[UserState, list[Fact]]:
    """The profile comes from the last sign-in or token presented; everyone connected learns of a
    new user or a changed name or picture (not of a changed email: nobody else sees it)."""
    if state is None:
        state = UserState(id=profile.id, name=profile.name, image_url=profile.image_url, email=email)
    elif (state.name, state.image_url, state.email) == (profile.name, profile.image_url, email):
        return state, []
    elif state.view() == profile:
        state.email = email
        return state, [Fact("user.profile_changed", state.id, ProfileChanged(user=profile))]
    else:
        state.name, state.image_url, state.email = profile.name, profile.image_url, email
    updated = Send(EVERYONE, "user.updated", UserUpdatedFrame(user=state.view()))
    return state, [Fact("user.profile_changed", state.id, ProfileChanged(user=state.view()), (updated,))]


def connect(state: UserState, connection: str, limit: int) -> list[Fact]:
    """A connection opened on some gateway; the first one makes the user online. A user has at most
    ``limit`` connections open, over every gateway."""
    if connection in state.connections:
        return []
    if len(state.connections) >= limit:
        raise TooManyConnectionsError()
    state.connections.append(connection)
    opened = Fact("user.connection_opened", state.id, ConnectionOpened(connection=connection))
    return [opened, *(_presence(state, online=True) if len(state.connections) == 1 else [])]


def disconnect(state: UserState, connection: str) -> list[Fact]:
    """A connection closed; the last one makes the user offline."""
    if connection not in state.connections:
        return []
    state.connections.remove(connection)
    closed = Fact("user.connection_closed", state.id, ConnectionClosed(connection=connection))
    return [closed, *([] if state.connections else _presence(state, online=False))]


def gateways(states: list[UserState]) -> set[str]:
    """The gateways holding these users' connections."""
    return {connection.split("/", 1)[0] for state in states for connection in state.connections}


def gateway_gone(state: UserState, gateway_id: str) -> list[Fact]:
    """A gateway died with connections open: they are closed now (the last one makes the user offline)."""
    facts: list[Fact] = []
    for connection in [c for c in state.connections if c.split("/", 1)[0] == gateway_id]:
        facts += disconnect(state, connection)
    return facts


def _presence(state: UserState, online: bool) -> list[Fact]:
    payload = PresenceChanged(user_id=state.id, online=online)
    frame = PresenceChangedFrame(user_id=state.id, online=online)
    return [Fact("user.presence_changed", state.id, payload, (Send(EVERYONE, "presence.changed", frame),))]


def existing(state: UserState | None) -> UserState:
    if state is None:
        raise UnknownUserError()
    return state
