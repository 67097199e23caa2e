"""The users worker's collection: one document per known user."""

from __future__ import annotations

from dataclasses import fields

from pymongo import ASCENDING, IndexModel

from workers.runtime.store import Aggregate
from workers.users.domain import UserState

STATE_FIELDS = [f.name for f in fields(UserState)]


class UserDoc(Aggregate):
    name: str
    image_url: str | None = None
    email: str = ""
    connections: list[str] = []
    online: bool = False  # stored for the query: whether ``connections`` is non-empty

    class Settings:
        name = "users"
        indexes = [IndexModel([("online", ASCENDING)])]

    def state(self) -> UserState:
        return UserState(**{name: getattr(self, name) for name in STATE_FIELDS})

    def update(self, state: UserState) -> UserDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        self.online = bool(state.connections)
        return self

    @classmethod
    def new(cls, state: UserState) -> UserDoc:
        return cls(**vars(state), online=bool(state.connections))


async def load(user_id: str) -> UserDoc | None:
    return await UserDoc.get(user_id)


async def find(ids: list[str]) -> list[UserDoc]:
    return await UserDoc.find({"_id": {"$in": ids}}).to_list()


async def everyone() -> list[UserDoc]:
    return await UserDoc.find_all().to_list()


async def online() -> list[UserDoc]:
    return await UserDoc.find(UserDoc.online == True).to_list()  # noqa: E712 - a query expression


DOCUMENTS = [UserDoc]
