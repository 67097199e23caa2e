"""Where uploaded files are kept: the S3 backend (PROTOCOL.md, Photos and files), for any
S3-compatible bucket (AWS, MinIO), chosen by ``BOOCHAT_FILES_STORE=s3``.

Clients never reach it through Boochat: an upload's slot is a presigned PUT of the key
``incoming/<id>``, and a download a presigned GET of ``files/<id>/<variant>``. Those are two keys on
purpose: a client may PUT its slot again until it expires, and a second PUT can only ever replace
unchecked bytes, never the checked file others download. The media worker fetches ``incoming/<id>``
(``fetch``, streamed to a file), checks it, writes the checked variants (``put``) and the serving
metadata (``write_meta``) under ``files/<id>/``, and deletes the incoming object.

The same operations as ``LocalStore``'s where they make sense (``meta``, ``write_meta``, ``size``,
``delete``), but async: they are network calls. A client is made per store, opened with
``async with``.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from boochat.filelinks import UPLOAD_ID, VARIANTS
from boochat.filestore import META, Meta
from boochat.settings import Settings

CHUNK = 256 * 1024
INCOMING = "incoming"
FILES = "files"
# What a presigned GET cannot make S3 send (only Content-Type, Content-Disposition, Cache-Control,
# Content-Language, Content-Encoding and Expires may be overridden per request): the files
# listener's X-Content-Type-Options, Content-Security-Policy and Referrer-Policy. A proxy or CDN in
# front of the bucket may add them.
NOT_SENT_BY_S3 = ("X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy")


class S3Store:
    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("BOOCHAT_FILES_STORE=s3 needs BOOCHAT_S3_BUCKET")
        self.bucket = settings.s3_bucket
        self._settings = settings
        self._exit = contextlib.AsyncExitStack()
        self.client: Any = None  # aiobotocore's S3 client: typed by its service model only

    async def __aenter__(self) -> S3Store:
        settings = self._settings
        config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"})
        self.client = await self._exit.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=settings.s3_secret_access_key,
                config=config,
            )
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exit.aclose()

    def incoming(self, upload_id: str) -> str:
        return f"{INCOMING}/{_checked_id(upload_id)}"

    def key(self, upload_id: str, variant: str) -> str:
        if variant not in VARIANTS and variant != META:
            raise ValueError(f"not a variant: {variant!r}")
        return f"{FILES}/{_checked_id(upload_id)}/{variant}"

    async def upload_url(self, upload_id: str, expires_in: int, size: int) -> str:
        """A presigned PUT of the upload's incoming object, of exactly ``size`` bytes: the length is
        signed, so the bucket refuses a body of any other (the declared size, within the limits)."""
        params = {"Bucket": self.bucket, "Key": self.incoming(upload_id), "ContentLength": size}
        url: str = await self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return url

    async def download_url(self, upload_id: str, variant: str, meta: Meta, expires_in: int) -> str:
        """A presigned GET of a checked variant, S3 sending the type, disposition and cache rules the
        files listener would (not the headers in ``NOT_SENT_BY_S3``)."""
        params = {
            "Bucket": self.bucket,
            "Key": self.key(upload_id, variant),
            "ResponseContentType": content_type_of(meta, variant),
            "ResponseContentDisposition": disposition_of(meta, variant),
            "ResponseCacheControl": f"private, max-age={expires_in}",
        }
        url: str = await self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    async def incoming_size(self, upload_id: str) -> int | None:
        return await self._size(self.incoming(upload_id))

    async def size(self, upload_id: str, variant: str) -> int | None:
        return await self._size(self.key(upload_id, variant))

    async def fetch(self, upload_id: str, out: BinaryIO, limit: int) -> int:
        """The incoming object into ``out``, a chunk at a time, up to ``limit + 1`` bytes (enough to
        tell it is too large); the bytes read."""
        response = await self.client.get_object(Bucket=self.bucket, Key=self.incoming(upload_id))
        received = 0
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                out.write(chunk[: limit + 1 - received])
                received += len(chunk)
                if received > limit:
                    break
        return min(received, limit + 1)

    async def put(self, upload_id: str, variant: str, path: Path, content_type: str) -> None:
        """A checked variant, from a local file (streamed from the open file, not read whole)."""
        with path.open("rb") as body:
            await self.client.put_object(
                Bucket=self.bucket, Key=self.key(upload_id, variant), Body=body, ContentType=content_type
            )

    async def write_meta(self, upload_id: str, meta: Meta) -> None:
        body = json.dumps(asdict(meta)).encode()
        await self.client.put_object(
            Bucket=self.bucket, Key=self.key(upload_id, META), Body=body, ContentType="application/json"
        )

    async def meta(self, upload_id: str) -> Meta | None:
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=self.key(upload_id, META))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        async with response["Body"] as body:
            return Meta(**json.loads(await body.read()))

    async def drop_incoming(self, upload_id: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.incoming(upload_id))

    async def delete(self, upload_id: str) -> None:
        """Everything of the upload (deleting a missing key is no error in S3: a retry is harmless)."""
        keys = [self.incoming(upload_id), *(self.key(upload_id, v) for v in (*VARIANTS, META))]
        await self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )

    async def _size(self, key: str) -> int | None:
        try:
            response = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        size: int = response["ContentLength"]
        return size


@contextlib.asynccontextmanager
async def s3_store(settings: Settings) -> AsyncIterator[S3Store]:
    async with S3Store(settings) as store:
        yield store


def content_type_of(meta: Meta, variant: str) -> str:
    return meta.content_type if variant == VARIANTS[0] else "image/jpeg"  # thumbnails are JPEG


def disposition_of(meta: Meta, variant: str) -> str:
    """Images inline, everything else downloaded, under its name (RFC 6266's ``filename*``)."""
    inline = content_type_of(meta, variant).startswith("image/")
    quoted = urllib.parse.quote(meta.name, safe="")
    return f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quoted}"


def _checked_id(upload_id: str) -> str:
    if not UPLOAD_ID.fullmatch(upload_id):  # never a key made of what a client sent
        raise ValueError(f"not an upload id: {upload_id!r}")
    return upload_id


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
