"""Where uploaded files are kept: the local backend (PROTOCOL.md, Photos and files).

Files live under ``BOOCHAT_DATA_DIR/files/<id[:2]>/<id>/<variant>``. Each is written to a temporary
file beside it and linked into place once complete (``os.link`` refuses an existing name), so a
reader never sees half a file and a file is written once. An upload's folder is made when its PUT
starts and stays, empty, when its checks fail: a second PUT of the slot finds it and is refused
until the slot's chore removes the folder.

One small interface for any backend: ``begin`` (claim the slot), ``writer`` (stream a variant in),
``path`` (a local file to read or stream out), ``size``, ``remove`` (a variant) and ``delete``
(everything of an upload). The S3 backend (``BOOCHAT_FILES_STORE=s3``) is ``boochat.s3store``: its
clients reach the bucket by presigned URLs, and the media worker checks a copy in a temporary
``LocalStore`` (``workers/media/stores.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from boochat.filelinks import UPLOAD_ID, VARIANTS

META = "meta.json"


@dataclass(frozen=True)
class Meta:
    """What serving a checked upload needs to know of it (the media worker writes it, once ready)."""

    content_type: str
    name: str


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, upload_id: str) -> Path:
        if not UPLOAD_ID.fullmatch(upload_id):  # never a path made of what a client sent
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.root / upload_id[:2] / upload_id

    def path(self, upload_id: str, variant: str) -> Path:
        if variant not in VARIANTS:
            raise ValueError(f"not a variant: {variant!r}")
        return self.folder(upload_id) / variant

    def begin(self, upload_id: str) -> bool:
        """Claim the upload's slot: False when a PUT of it started before."""
        folder = self.folder(upload_id)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            return False
        return True

    @contextlib.contextmanager
    def writer(self, upload_id: str, variant: str, replace: bool = False) -> Iterator[BinaryIO]:
        """A file to write the variant to; it takes its place only if the block ends without an
        error, and unless ``replace``, only if no such variant is there yet (``FileExistsError``)."""
        final = self.path(upload_id, variant)
        temporary = final.with_name(f".{variant}.{uuid.uuid4().hex}.part")
        try:
            with temporary.open("xb") as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
            if replace:
                os.replace(temporary, final)
            else:
                os.link(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)

    def write_meta(self, upload_id: str, meta: Meta) -> None:
        final = self.folder(upload_id) / META
        temporary = final.with_name(f".{META}.{uuid.uuid4().hex}.part")
        temporary.write_text(json.dumps(asdict(meta)))
        os.replace(temporary, final)

    def meta(self, upload_id: str) -> Meta | None:
        try:
            return Meta(**json.loads((self.folder(upload_id) / META).read_text()))
        except FileNotFoundError:
            return None

    def size(self, upload_id: str, variant: str) -> int | None:
        try:
            return self.path(upload_id, variant).stat().st_size
        except FileNotFoundError:
            return None

    def remove(self, upload_id: str, variant: str) -> None:
        self.path(upload_id, variant).unlink(missing_ok=True)

    def clear(self, upload_id: str) -> None:
        """Every variant of the upload, keeping its folder: its slot stays used."""
        for variant in VARIANTS:
            self.remove(upload_id, variant)
        (self.folder(upload_id) / META).unlink(missing_ok=True)

    def delete(self, upload_id: str) -> None:
        """Everything of the upload, its folder included (then its slot may be claimed again: only
        for uploads whose slot has expired)."""
        shutil.rmtree(self.folder(upload_id), ignore_errors=True)


def local_store(data_dir: Path) -> LocalStore:
    return LocalStore(data_dir / "files")
