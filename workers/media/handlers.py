"""Everything the media worker consumes and answers: read these tables to know its interface.

Media owns uploads (PROTOCOL.md, Photos and files). A member asks for a slot (``create_upload``:
messaging, which keeps every room's members, says who is one); the gateway stores the PUT's bytes
and asks for the check (``upload_received``, answered once done: the PUT's answer waits for it);
with S3 the client PUTs to the bucket and then asks for the check itself (``complete_upload``);
messaging claims ready uploads for a message (``claim_uploads``). A deleted message's files go
(``delete_files``, from its ``room.item_changed``); so do uploads nobody attached, after a day.
"""

from __future__ import annotations

import uuid

from boochat.filestore import Meta
from contracts import internal, requests
from contracts.events import ItemChanged
from contracts.internal import Attachments, UploadChecked
from contracts.requests import UploadSlot
from workers.media import domain, storage, stores
from workers.media.storage import UploadDoc
from workers.runtime.context import Context, Runtime
from workers.runtime.outbox import Cause
from workers.runtime.store import StateDocument
from workers.runtime.tables import Chore, CommandHandler, Reaction, typed

SWEEP_EVERY = 600.0  # seconds between looks for uploads nobody attached


def files(runtime: Runtime) -> stores.Files:
    return stores.files_of(runtime.settings)


async def slot(runtime: Runtime, state: domain.UploadState) -> UploadSlot:
    url = await files(runtime).upload_url(state.id, state.size, state.expires_at, runtime.now())
    return UploadSlot(upload_id=state.id, url=url, expires_at=state.expires_at)


async def create_upload(data: requests.CreateUpload, ctx: Context) -> UploadSlot:
    assert ctx.user_id and ctx.cause.command_key
    # The id derives from the command, so a retried create_upload can only ever make one slot.
    upload_id = uuid.uuid5(uuid.NAMESPACE_URL, f"upload/{ctx.cause.command_key}").hex
    if (doc := await storage.load(upload_id)) is not None:
        return await slot(ctx.runtime, doc.state())
    await ctx.ask("messaging", "room_access", internal.RoomAccess(room_id=data.room_id))
    settings = ctx.runtime.settings
    limits = domain.Limits(settings.max_upload_bytes, settings.storage_quota_bytes, settings.file_link_ttl_seconds)
    stored = await storage.stored_by(ctx.user_id)
    state, facts = domain.open_upload(upload_id, ctx.user_id, data, stored, limits, ctx.now())
    reply = await slot(ctx.runtime, state)
    await ctx.commit(UploadDoc.new(state), facts, reply)
    return reply


async def upload_received(data: internal.UploadReceived, ctx: Context) -> UploadChecked:
    async with ctx.lock(f"upload/{data.upload_id}"):
        if (doc := await storage.load(data.upload_id)) is None:
            return UploadChecked(code="bad_request", reason="no such upload")
        return await check(ctx, doc)


async def complete_upload(data: requests.CompleteUpload, ctx: Context) -> requests.UploadCompleted:
    """With S3 the client PUTs to the bucket, then calls this; with the local store the PUT's answer
    completed already, and this answers the same (it is idempotent)."""
    assert ctx.user_id
    async with ctx.lock(f"upload/{data.upload_id}"):
        doc = await storage.load(data.upload_id)
        domain.completing(doc.state() if doc else None, ctx.user_id)
        assert doc is not None  # completing refused a missing upload
        return domain.completed(await check(ctx, doc))


async def check(ctx: Context, doc: StateDocument[domain.UploadState]) -> UploadChecked:
    """Check a waiting upload's bytes (once: a checked upload answers what its check found)."""
    state, max_bytes, stored = doc.state(), ctx.runtime.settings.max_upload_bytes, files(ctx.runtime)
    found = await stored.check(state.id, max_bytes) if state.status == "waiting" else domain.Found(0)
    facts, reply = domain.checked(state, found, max_bytes)
    if reply.attachment is None and facts:
        await stored.drop(state.id)  # nothing of a failed upload is kept
    elif reply.attachment is not None and facts:
        await stored.keep(state.id, Meta(reply.attachment.content_type, state.name))
    await ctx.commit(doc.with_state(state), facts)
    return reply


async def claim_uploads(data: internal.ClaimUploads, ctx: Context) -> Attachments:
    assert ctx.user_id
    docs = {doc.id: doc for doc in await storage.load_many(data.upload_ids)}
    states = {upload_id: doc.state() for upload_id, doc in docs.items()}
    claimed, attachments = domain.claim(states, data.upload_ids, ctx.user_id, data.room_id, data.item_id)
    for state, fact in claimed:
        await ctx.commit(docs[state.id].with_state(state), [fact])
    return Attachments(attachments=attachments)


async def delete_files(payload: ItemChanged, ctx: Context) -> None:
    """A deleted message's files and thumbnails (those it had: its tombstone names none)."""
    if payload.change.kind == "delete":
        await delete(ctx, await storage.of_item(payload.item.id))


async def delete(ctx: Context, docs: list[StateDocument[domain.UploadState]]) -> None:
    stored = files(ctx.runtime)
    for doc in docs:
        state = doc.state()
        await stored.delete(state.id)  # first: a retry finds the upload still there
        await ctx.commit(doc.with_state(state), domain.delete(state))


async def remove_unattached(runtime: Runtime) -> None:
    """Uploads nobody attached, a day after they were made."""
    ctx = Context(runtime, Cause(None, "remove-unattached", None))
    await delete(ctx, await storage.unattached_before(runtime.now()))


COMMANDS: dict[str, CommandHandler] = {
    "create_upload": create_upload,
    "upload_received": upload_received,
    "complete_upload": complete_upload,
    "claim_uploads": claim_uploads,
}

REACTIONS = {
    "delete_files": Reaction(delete_files, typed(ItemChanged, "room.item_changed")),
}

CHORES = {
    "remove_unattached": Chore(lambda settings: SWEEP_EVERY, remove_unattached),
}
