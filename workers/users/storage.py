"""The users worker's collection: one document per known user."""

from __future__ import annotations

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import User
from workers.runtime.store import StateDocument, state_document
from workers.users.domain import UserState

UserDoc = state_document(UserState, "users")


class Profile(Document):
    """The directory as queries read it: a projection of the users' events.

    Profile and presence come from different events, each applied only when newer than what is there.
    """

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    name: str = ""
    image_url: str | None = None
    profile_version: int = 0
    online: bool = False
    presence_version: int = 0

    class Settings:
        name = "directory"
        indexes = [IndexModel([("online", ASCENDING)])]

    def view(self) -> User:
        return User(id=self.id, name=self.name, image_url=self.image_url)


async def load(user_id: str) -> StateDocument[UserState] | None:
    return await UserDoc.get(user_id)


async def connected() -> list[StateDocument[UserState]]:
    """Users with connections open, as the directory knows them (online)."""
    return await UserDoc.find({"_id": {"$in": [p.id for p in await online()]}}).to_list()


async def profiles(ids: list[str]) -> list[Profile]:
    return await Profile.find({"_id": {"$in": ids}, "profile_version": {"$gt": 0}}).to_list()


async def everyone() -> list[Profile]:
    return await Profile.find(Profile.profile_version > 0).to_list()


async def online() -> list[Profile]:
    return await Profile.find(Profile.online == True).to_list()  # noqa: E712 - a query expression


async def set_profile(user: User, version: int) -> None:
    await _newer(user.id, "profile_version", version, {"name": user.name, "image_url": user.image_url})


async def set_presence(user_id: str, online: bool, version: int) -> None:
    await _newer(user_id, "presence_version", version, {"online": online})


async def _newer(user_id: str, guard: str, version: int, values: dict[str, object]) -> None:
    # A new document gets both guards, so the other kind of event finds its guard to compare.
    other = {"profile_version": 0, "presence_version": 0}
    del other[guard]
    try:
        await Profile.get_pymongo_collection().update_one(
            {"_id": user_id, guard: {"$lt": version}},
            {"$set": {**values, guard: version}, "$setOnInsert": other},
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # a newer event was applied already


DOCUMENTS = [UserDoc, Profile]
