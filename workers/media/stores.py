"""The media worker's two ways to reach an upload's bytes (``BOOCHAT_FILES_STORE``), one interface:
the slot's address (``upload_url``), checking what was received (``check``: None while nothing
was), keeping a checked upload's metadata (``keep``), dropping a refused one (``drop``) and deleting
one (``delete``).

With the local store the gateway's files listener receives the PUT into the store and the checks run
on it in place. With S3 the client PUTs to a presigned URL; ``check`` streams the object into a
temporary folder, runs the very same checks there (Pillow wants a file), and writes the checked
file and its thumbnails back to the bucket.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol

from boochat import filelinks
from boochat.filelinks import ORIGINAL, VARIANTS
from boochat.filestore import LocalStore, Meta, local_store
from boochat.s3store import s3_store
from boochat.settings import Settings
from workers.media import checks
from workers.media.domain import Found


class Files(Protocol):
    async def upload_url(self, upload_id: str, size: int, expires_at: datetime, now: datetime) -> str: ...
    async def check(self, upload_id: str, max_bytes: int) -> Found | None: ...
    async def keep(self, upload_id: str, meta: Meta) -> None: ...
    async def drop(self, upload_id: str) -> None: ...
    async def delete(self, upload_id: str) -> None: ...


class LocalFiles:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store = local_store(settings.data_dir)

    async def upload_url(self, upload_id: str, size: int, expires_at: datetime, now: datetime) -> str:
        link = filelinks.Link("PUT", upload_id, ORIGINAL, int(expires_at.timestamp()))
        return filelinks.address(self._settings.files_base, filelinks.key_of(self._settings.links_secret), link)

    async def check(self, upload_id: str, max_bytes: int) -> Found | None:
        if await asyncio.to_thread(self._store.size, upload_id, ORIGINAL) is None:
            return None
        return await asyncio.to_thread(checks.check, self._store, upload_id, max_bytes)  # Pillow: not on the loop

    async def keep(self, upload_id: str, meta: Meta) -> None:
        await asyncio.to_thread(self._store.write_meta, upload_id, meta)

    async def drop(self, upload_id: str) -> None:
        await asyncio.to_thread(self._store.clear, upload_id)  # its folder stays: the slot is used

    async def delete(self, upload_id: str) -> None:
        await asyncio.to_thread(self._store.delete, upload_id)


class S3Files:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def upload_url(self, upload_id: str, size: int, expires_at: datetime, now: datetime) -> str:
        async with s3_store(self._settings) as s3:
            return await s3.upload_url(upload_id, max(1, int((expires_at - now).total_seconds())), size)

    async def check(self, upload_id: str, max_bytes: int) -> Found | None:
        async with s3_store(self._settings) as s3:
            if await s3.incoming_size(upload_id) is None:
                return None
            with tempfile.TemporaryDirectory(prefix="boochat-media-") as folder:
                local = LocalStore(Path(folder))
                local.begin(upload_id)
                with local.writer(upload_id, ORIGINAL) as out:
                    await s3.fetch(upload_id, out, max_bytes)  # at most max_bytes + 1: enough to refuse
                found = await asyncio.to_thread(checks.check, local, upload_id, max_bytes)
                if found.code is None and found.content_type is not None:
                    for variant in VARIANTS:
                        if local.size(upload_id, variant) is not None:
                            kind = found.content_type if variant == ORIGINAL else "image/jpeg"
                            await s3.put(upload_id, variant, local.path(upload_id, variant), kind)
            await s3.drop_incoming(upload_id)  # checked: its unchecked bytes are never served
            return found

    async def keep(self, upload_id: str, meta: Meta) -> None:
        async with s3_store(self._settings) as s3:
            await s3.write_meta(upload_id, meta)

    async def drop(self, upload_id: str) -> None:
        await self.delete(upload_id)

    async def delete(self, upload_id: str) -> None:
        async with s3_store(self._settings) as s3:
            await s3.delete(upload_id)


def files_of(settings: Settings) -> Files:
    return S3Files(settings) if settings.files_store == "s3" else LocalFiles(settings)
