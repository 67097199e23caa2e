"""A command's copy gets the first copy's outcome, whatever its data (PROTOCOL.md, idempotency)."""

from __future__ import annotations

from e2e.helpers import make_room


# The gateway forwards a command whose data breaks its contract (gateway/session.py ``_receive``); a
# handler that claims its key itself (messaging's send_message) is refused before its write, so the
# refusal it would remember meets the first copy's item under the key, and answers that instead.
async def test_a_copy_with_invalid_data_gets_the_first_ok(connect):
    """An accepted send_message sent again with data that would not validate: the first ok, nothing new."""
    alice = await connect("Alice")
    alice2 = await connect(as_user=alice.user)
    room = await make_room(alice)
    first = await alice.request("send_message", {"room_id": room["id"], "content": "once"}, id="copy-me")
    assert first["type"] == "ok"
    for data in ({"room_id": room["id"], "content": ""}, {"room_id": room["id"]}, {"content": 5, "extra": 1}):
        assert await alice2.request("send_message", data, id="copy-me") == first
    items = (await alice.ok("get_room_items", {"room_id": room["id"]}))["items"]
    assert [i["content"] for i in items if i["kind"] == "message"] == ["once"]


async def test_a_copy_of_a_claimed_command_with_invalid_data_gets_the_first_ok(connect):
    """The gateway forwards the copy (its data would be bad_request); the owner answers the first ok."""
    alice = await connect("Alice")
    room = await make_room(alice)
    first = await alice.request("rename_room", {"room_id": room["id"], "name": "Renamed"}, id="rename-once")
    assert first["type"] == "ok"
    for data in ({"room_id": room["id"], "name": ""}, {"room_id": 7}, {}):
        assert await alice.request("rename_room", data, id="rename-once") == first
