"""The users worker's collections: one document per known user, per invite and per device session,
the directory (a projection of the users' events) and the members of every room (a projection of
the rooms worker's events)."""

from __future__ import annotations

import time

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import User
from workers.runtime.store import StateDocument, state_document
from workers.users.domain import InviteState, Memberships, RoomMembers, SessionState, UserState, folded, listed_as

UserDoc = state_document(UserState, "users")
InviteDoc = state_document(InviteState, "invites", [IndexModel([("created_by", ASCENDING), ("created_at", ASCENDING)])])
SessionDoc = state_document(SessionState, "sessions", [IndexModel([("user_id", ASCENDING), ("expires_at", ASCENDING)])])
LISTED = 100  # invites a user is shown, newest first
BATCH = 500  # ids one query asks for; directory entries one pass of ``list_unlisted`` fixes


class Profile(Document):
    """The directory as queries read it: a projection of the users' events.

    Profile and presence come from different events, each applied only when newer than what is there.
    ``order`` is the user's place in the directory (``domain.listed_as``), whose index serves a page
    of ``list_users``; ``folded`` the name its search reads. Both came in v1.2: an entry written
    before has none until ``list_unlisted`` gives it them.
    """

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    name: str = ""
    image_url: str | None = None
    profile_version: int = 0
    online: bool = False
    presence_version: int = 0
    order: str | None = None
    folded: str | None = None

    class Settings:
        name = "directory"
        indexes = [IndexModel([("online", ASCENDING)]), IndexModel([("order", ASCENDING)])]

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


async def online_among(ids: list[str]) -> list[str]:
    """Those of ``ids`` who are online."""
    found: list[str] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        found += [p.id for p in await Profile.find({"_id": {"$in": batch}, "online": True}).to_list()]
    return found


async def directory_page(after: str | None, pattern: str | None, limit: int) -> list[Profile]:
    """The first ``limit`` users listed after the place ``after`` (None: from the start) whose
    folded name matches ``pattern``, in directory order (one range of the ``order`` index)."""
    query: dict[str, object] = {"order": {"$gt": after or ""}, "profile_version": {"$gt": 0}}
    if pattern is not None:
        query["folded"] = {"$regex": pattern}
    return await Profile.find(query).sort("+order").limit(limit).to_list()


async def list_unlisted() -> int:
    """Give directory entries written before v1.2 their place and folded name (a pass does a batch;
    each entry only while its name is still the one read). Returns how many it found."""
    found = await Profile.find({"order": None, "profile_version": {"$gt": 0}}).limit(BATCH).to_list()
    for profile in found:
        await Profile.get_pymongo_collection().update_one(
            {"_id": profile.id, "name": profile.name},
            {"$set": {"order": listed_as(profile.view()), "folded": folded(profile.name)}},
        )
    return len(found)


async def set_profile(user: User, version: int) -> None:
    listing = {"order": listed_as(user), "folded": folded(user.name)}
    await _newer(user.id, "profile_version", version, {"name": user.name, "image_url": user.image_url, **listing})


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


class MembersDoc(Document):
    """A room's members, as the newest event of the rooms worker applied said: one per room, written
    whole; ``stored_at`` (epoch seconds) lets the ``memberships`` mirror read only what changed."""

    id: str  # type: ignore[assignment]  # the room id (Beanie declares an ObjectId)
    member_ids: list[str]
    version: int
    stored_at: float = 0.0

    class Settings:
        name = "memberships"
        indexes = [IndexModel([("stored_at", ASCENDING)])]

    def state(self) -> RoomMembers:
        return RoomMembers(room_id=self.id, member_ids=frozenset(self.member_ids), version=self.version)


async def save_members(room: RoomMembers) -> None:
    """Keep ``room`` unless a newer version of it is kept already."""
    # The body names its _id: an upsert's insert must not depend on the filter's (the stand-in's does not).
    body = {
        "_id": room.room_id,
        "member_ids": sorted(room.member_ids),
        "version": room.version,
        "stored_at": time.time(),
    }
    try:
        await MembersDoc.get_pymongo_collection().replace_one(
            {"_id": room.room_id, "version": {"$lt": room.version}}, body, upsert=True
        )
    except DuplicateKeyError:
        pass  # as new or newer is kept


async def stored_memberships(since: float | None) -> Memberships:
    """The rooms' members stored at or after ``since`` (epoch seconds; None: every room's)."""
    query = {} if since is None else {"stored_at": {"$gte": since}}
    memberships = Memberships()
    memberships.merge(doc.state() for doc in await MembersDoc.find(query).to_list())
    return memberships


DOCUMENTS = [UserDoc, InviteDoc, SessionDoc, Profile, MembersDoc]
