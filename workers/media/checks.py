"""Checking an upload's stored bytes (blocking: run in a thread). The type comes from the bytes
(``domain.sniff``); an image is decoded by Pillow, within its pixel limit (a decompression bomb is
refused), stored again upright and without its metadata (EXIF, location included), and gets its
thumbnails and a tiny placeholder.
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any, BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from boochat.filelinks import ORIGINAL, THUMBNAIL_WIDTHS
from boochat.filestore import LocalStore
from workers.media import domain
from workers.media.domain import Found

PLACEHOLDER_WIDTH = 16
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


def check(store: LocalStore, upload_id: str, max_bytes: int) -> Found:
    path = store.path(upload_id, ORIGINAL)
    size = path.stat().st_size
    if size > max_bytes:
        return Found(size, code="too_large", reason="more bytes than the largest file allowed")
    with path.open("rb") as file:
        content_type = domain.sniff(file.read(domain.SNIFF_BYTES))
    if content_type is None:
        return Found(size, code="bad_request", reason="this type of file is not accepted")
    if content_type not in PILLOW_FORMATS:
        return Found(size, content_type)
    try:
        return _image(store, upload_id, content_type)
    except Image.DecompressionBombError:
        return Found(size, code="bad_request", reason="the image has too many pixels")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return Found(size, code="bad_request", reason=f"the image is corrupt or truncated ({error})")


def _image(store: LocalStore, upload_id: str, content_type: str) -> Found:
    with warnings.catch_warnings():
        # Pillow warns past its pixel limit and raises past twice it: refuse from the limit on.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(store.path(upload_id, ORIGINAL))
        except Image.DecompressionBombWarning as warning:
            raise Image.DecompressionBombError(str(warning)) from None
    with image:
        if image.format != PILLOW_FORMATS[content_type]:
            raise ValueError(f"{content_type} that Pillow reads as {image.format}")
        animated = getattr(image, "n_frames", 1) > 1
        image.load()  # a truncated file fails here
        upright = image if animated else ImageOps.exif_transpose(image)
        with store.writer(upload_id, ORIGINAL, replace=True) as out:
            _save_clean(upright, image, out, animated)
        width, height = upright.size
        thumbnails = tuple(w for w in THUMBNAIL_WIDTHS if width > w)
        for thumb_width in thumbnails:
            with store.writer(upload_id, str(thumb_width), replace=True) as out:
                _scaled(upright, thumb_width).save(out, "JPEG", quality=82)
        tiny = io.BytesIO()
        _scaled(upright, PLACEHOLDER_WIDTH).save(tiny, "JPEG", quality=60)
    placeholder = "data:image/jpeg;base64," + base64.b64encode(tiny.getvalue()).decode()
    size = store.size(upload_id, ORIGINAL) or 0
    return Found(size, content_type, width, height, placeholder, thumbnails)


def _save_clean(upright: Image.Image, source: Image.Image, out: BinaryIO, animated: bool) -> None:
    """The image again, with nothing of its metadata but its colour profile (no EXIF, no XMP, no
    text chunks: Pillow writes only what it is given)."""
    icc = source.info.get("icc_profile")
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    fmt = source.format or "PNG"
    if fmt == "JPEG":
        rgb = upright if upright.mode in ("RGB", "L", "CMYK") else upright.convert("RGB")
        rgb.save(out, "JPEG", quality=92, **extra)
    elif animated:
        upright.save(out, fmt, save_all=True, **extra)
    else:
        upright.save(out, fmt, **extra)


def _scaled(image: Image.Image, width: int) -> Image.Image:
    """An RGB copy ``width`` pixels wide (transparency over white), keeping the proportions."""
    height = max(1, round(image.height * width / image.width))
    copy = image.convert("RGBA") if image.mode != "RGB" else image
    copy = copy.resize((width, height), Image.Resampling.LANCZOS)
    if copy.mode == "RGBA":
        flat = Image.new("RGB", copy.size, "white")
        flat.paste(copy, mask=copy.getchannel("A"))
        return flat
    return copy
