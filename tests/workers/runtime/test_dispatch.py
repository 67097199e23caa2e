"""workers.runtime.dispatch: a command acts once per key, whatever happens after its commit, in a
worker with no followers (rooms' retries find its events through the hand-over anyway)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from support.handlers import harness

from contracts.common import Shape
from contracts.envelope import Fact
from contracts.requests import RenameRoom
from workers.runtime.context import Context
from workers.runtime.store import state_document
from workers.runtime.tables import Worker


@dataclass
class Counter:
    id: str
    bumps: int = 0


CounterDoc = state_document(Counter, "counters")


class Counted(Shape):
    count: int


async def bump(data: RenameRoom, ctx: Context) -> Counted:
    """Not idempotent on its own: each decision counts one more (any command type will do)."""
    doc = await CounterDoc.get(data.room_id) or CounterDoc.new(Counter(id=data.room_id))
    state = doc.state()
    state.bumps += 1
    reply = Counted(count=state.bumps)
    await ctx.commit(doc.with_state(state), [Fact("test.bumped", state.id, reply)], reply)
    return reply


WORKER = Worker("counting", {"rename_room": bump}, documents=[CounterDoc])


@pytest.fixture
async def counting(mongo_url):
    return await harness(WORKER, mongo_url)


async def test_a_retry_after_an_exception_past_the_commit_answers_what_was_committed(counting, monkeypatch):
    """The first copy committed, then raised: the retry with the same id answers the committed reply
    and acts no more (releasing the claim let it decide again: a second count)."""

    async def broken(events):
        raise RuntimeError("after the commit")

    data = {"room_id": "c1", "name": "x"}
    monkeypatch.setattr(counting.runtime, "project", broken)
    with pytest.raises(RuntimeError):
        await counting.command("rename_room", "ann", data, id="once")
    monkeypatch.undo()
    assert await counting.ok("rename_room", "ann", data, id="once") == {"count": 1}
    assert await counting.ok("rename_room", "ann", data, id="once") == {"count": 1}
    assert (await CounterDoc.get("c1")).bumps == 1
    assert [e["payload"] for e in counting.events("test.bumped")] == [{"count": 1}]


async def test_an_exception_before_any_commit_lets_the_retry_act(counting, monkeypatch):
    """Nothing was committed under the key: the retry decides, once."""
    data = {"room_id": "c2", "name": "x"}

    async def unreachable(doc, new_events):
        raise RuntimeError("before the commit")

    monkeypatch.setattr("workers.runtime.context.write", unreachable)
    with pytest.raises(RuntimeError):
        await counting.command("rename_room", "ann", data, id="again")
    monkeypatch.undo()
    assert await counting.ok("rename_room", "ann", data, id="again") == {"count": 1}
