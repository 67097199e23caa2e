"""The users worker's collections: one document per known user, per invite and per device session."""

from __future__ import annotations

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import User
from workers.runtime.store import StateDocument, state_document
from workers.users.domain import InviteState, SessionState, UserState

UserDoc = state_document(UserState, "users")
InviteDoc = state_document(InviteState, "invites", [IndexModel([("created_by", ASCENDING), ("created_at", ASCENDING)])])
SessionDoc = state_document(SessionState, "sessions", [IndexModel([("user_id", ASCENDING), ("expires_at", ASCENDING)])])
LISTED = 100  # invites a user is shown, newest first


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


async def anyone() -> bool:
    """Whether anybody has signed in yet."""
    return await UserDoc.find_one({}) is not None


async def invite(code: str) -> StateDocument[InviteState] | None:
    return await InviteDoc.get(code)


async def invites_by(user_id: str) -> list[StateDocument[InviteState]]:
    found = await InviteDoc.find({"created_by": user_id}).to_list()
    return sorted(found, key=lambda doc: doc.created_at, reverse=True)[:LISTED]


async def session(session_id: str) -> StateDocument[SessionState] | None:
    return await SessionDoc.get(session_id)


async def sessions_of(user_id: str) -> list[StateDocument[SessionState]]:
    return await SessionDoc.find({"user_id": user_id}).to_list()


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


DOCUMENTS = [UserDoc, InviteDoc, SessionDoc, Profile]
