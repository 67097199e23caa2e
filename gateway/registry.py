"""Who is connected to this gateway and which rooms they are in, and so who gets a delivery; sans-I/O.

The rooms workers decide membership; the gateway only mirrors it from deliveries to route room
events to the right local users (routing, not business rules). Methods return the routing keys
whose binding may have to change; the caller brings the queue's bindings in line with ``wanted``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from pydantic import ValidationError

from contracts.envelope import Delivery, Rider
from contracts.frames import MemberJoinedFrame, MemberLeftFrame, RoomCreatedFrame
from contracts.routing import EVERYONE, GATEWAYS, room_key, user_key

S = TypeVar("S", bound=Hashable)

Membership = RoomCreatedFrame | MemberJoinedFrame | MemberLeftFrame
# The client events that change who is in a room, and the contract of each one's data: only these
# deliveries are parsed here, every other one is relayed as it came.
MEMBERSHIP: dict[str, type[Membership]] = {
    "room.created": RoomCreatedFrame,
    "room.member_joined": MemberJoinedFrame,
    "room.member_left": MemberLeftFrame,
}


TYPING = "room.typing"


class Registry(Generic[S]):
    def __init__(self) -> None:
        self._sessions: dict[str, set[S]] = {}  # user id -> their open connections here
        self._users_by_key: dict[str, str] = {}  # user routing key -> user id
        self._members: dict[str, set[str]] = {}  # room id -> local users in it
        self._rooms_of: dict[str, set[str]] = {}  # user id -> rooms they are in

    # Connections --------------------------------------------------------------------------

    def add(self, user_id: str, session: S) -> list[str]:
        self._sessions.setdefault(user_id, set()).add(session)
        self._users_by_key[user_key(user_id)] = user_id
        self._rooms_of.setdefault(user_id, set())
        return [user_key(user_id)]

    def remove(self, user_id: str, session: S) -> list[str]:
        sessions = self._sessions.get(user_id)
        if sessions is None or session not in sessions:
            return []
        sessions.discard(session)
        if sessions:
            return []
        del self._sessions[user_id]
        del self._users_by_key[user_key(user_id)]
        changed = [user_key(user_id)]
        for room_id in list(self._rooms_of.pop(user_id, ())):
            changed += self._leave(user_id, room_id)
        return changed

    def sessions(self, user_id: str) -> set[S]:
        return self._sessions.get(user_id, set())

    def connections(self) -> list[S]:
        """Every connection registered here."""
        return [session for sessions in self._sessions.values() for session in sessions]

    def connected(self, user_id: str) -> bool:
        return user_id in self._sessions

    def in_room(self, user_id: str, room_id: str) -> bool:
        """Whether the user, connected here, is in the room as far as this gateway knows."""
        return room_id in self._rooms_of.get(user_id, ())

    # Rooms --------------------------------------------------------------------------------

    def join(self, user_id: str, room_ids: list[str]) -> list[str]:
        if not self.connected(user_id):
            return []
        for room_id in room_ids:
            self._members.setdefault(room_id, set()).add(user_id)
            self._rooms_of[user_id].add(room_id)
        return [room_key(room_id) for room_id in room_ids]

    def _leave(self, user_id: str, room_id: str) -> list[str]:
        members = self._members.get(room_id)
        if members is None:
            return []
        members.discard(user_id)
        self._rooms_of.get(user_id, set()).discard(room_id)
        if members:
            return []
        del self._members[room_id]
        return [room_key(room_id)]

    def wanted(self, key: str) -> bool:
        """Whether this gateway's queue should be bound to ``key`` now."""
        if key in (EVERYONE, GATEWAYS) or key in self._users_by_key:
            return True
        return key.startswith("room.") and key.removeprefix("room.") in self._members

    # Deliveries ---------------------------------------------------------------------------

    def route(self, key: str, delivery: Delivery | Rider) -> tuple[list[S], list[str]]:
        """The connections to send ``delivery`` to, and the keys whose binding it changed.

        A room-routed delivery goes to the local users in that room; a user-routed one to that
        user. A user named as joining a room is added first; one leaving it gets the delivery and
        is removed after, so nothing more of the room reaches them.
        """
        if key == EVERYONE:
            users = set(self._sessions)
        elif key in self._users_by_key:
            users = {self._users_by_key[key]}
        elif key.startswith("room."):
            users = set(self._members.get(key.removeprefix("room."), ()))
        else:
            users = set()
        if delivery.event == TYPING:  # to the room's other members: not back to the typist
            users.discard(delivery.data.get("user_id"))
        changed: list[str] = []
        change = None  # only joins and leaves are parsed: this runs for every delivery
        if key != EVERYONE and (contract := MEMBERSHIP.get(delivery.event)) is not None:
            change = _parsed(contract, delivery)
        if change is not None and not isinstance(change, MemberLeftFrame):
            room_id, named = _joining(change)
            newcomers = [uid for uid in named if self.connected(uid)]
            if not key.startswith("room."):
                newcomers = [uid for uid in newcomers if uid in users]
            for uid in newcomers:
                changed += self.join(uid, [room_id])
            users.update(newcomers)
        recipients = [session for uid in users for session in self.sessions(uid)]
        if isinstance(change, MemberLeftFrame) and self.connected(change.user_id):
            changed += self._leave(change.user_id, change.room_id)
        return recipients, changed


def _parsed(contract: type[Membership], delivery: Delivery | Rider) -> Membership | None:
    """What a join or leave says; None when it breaks its contract (nobody's membership changes
    then, and the delivery is relayed all the same)."""
    try:
        return contract.model_validate(delivery.data)
    except ValidationError:
        return None


def _joining(change: RoomCreatedFrame | MemberJoinedFrame) -> tuple[str, list[str]]:
    """The room and the users a ``room.created`` / ``room.member_joined`` names as its members."""
    if isinstance(change, MemberJoinedFrame):
        return change.room_id, [change.user_id]
    return change.room.id, change.room.participant_ids
