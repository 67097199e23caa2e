"""Files the media tests upload, made here: photos with EXIF location, corrupt ones, bombs."""

from __future__ import annotations

import io

from PIL import ExifTags, Image, ImageDraw

LATITUDE = (52.0, 31.0, 12.0)


def photo(width: int = 2000, height: int = 1500, orientation: int = 1, quality: int = 90) -> bytes:
    """A JPEG with a location (EXIF GPS) and an orientation; not one colour, so it compresses like a photo."""
    image = Image.new("RGB", (width, height), (200, 60, 40))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 40):
        draw.line([(x, 0), (width - x, height)], fill=(x % 255, 120, 255 - x % 255), width=7)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = LATITUDE
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=quality)
    return out.getvalue()


def noisy_photo(megabytes: float) -> bytes:
    """A JPEG of about ``megabytes`` (noise compresses badly), with a location."""
    side = int((megabytes * 1_000_000 / 1.1) ** 0.5)
    image = Image.effect_noise((side, side), 90).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = LATITUDE
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def png(width: int = 100, height: int = 80) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


def location_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(ExifTags.IFD.GPSInfo))


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXECUTABLE = b"\x7fELF\x02\x01\x01\x00" + bytes(200)
