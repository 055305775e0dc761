"""Householders' photos of damp and mould: checked, stripped of metadata, stored by checksum.

A photo is accepted only when Pillow decodes its bytes as a still JPEG, PNG or WebP (the
declared type and the file name are never believed), no larger than the byte limit (checked
before decoding) and no more than MAX_PIXELS (a decompression bomb is refused from its
header). It is then re-encoded from its pixels, turned the way the camera says it was held:
EXIF (a phone's GPS position of the tenant's home), XMP, ICC and comments, and anything
hidden after or around the image (a polyglot's HTML or ZIP), are not written. The stored
bytes are named by their sha256 (`ab/abcdef....jpg` under the photo folder), written to a
temporary file and renamed (files 0600, folders 0700), and checked against it on every read.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cases.errors import InvalidPhoto, PhotoDamaged

# 50 megapixels: more than a phone's full-resolution photo (12-48 MP), far less than a bomb.
# Pillow's own guard is set to it too, so that nothing in this process decodes a larger image.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-off file is refused, never padded with grey

# decoded format -> (media type, file extension)
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MEDIA_TYPES = frozenset(media for media, _ in FORMATS.values())
_STORED_PATH = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.(jpg|png|webp)$")
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class StoredPhoto:
    """A photo as it lies on disk: its checksum, type, size and path under the photo folder."""

    sha256: str
    media_type: str
    bytes: int
    path: str

    def __post_init__(self) -> None:
        if not _STORED_PATH.match(self.path) or not self.path[3:].startswith(self.sha256):
            raise ValueError(f"not a stored photo's path: {self.path!r}")
        if self.media_type not in MEDIA_TYPES:
            raise ValueError(f"not a stored photo's type: {self.media_type!r}")


def check_count(count: int, most: int) -> None:
    """A report carries at most `most` photos."""
    if count > most:
        raise InvalidPhoto(f"{count} photos sent; a report may carry at most {most}",
                           hint="send the others with a second report")


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo that passed the checks, re-encoded, not yet written (a report checks all its
    photos before writing any)."""

    data: bytes
    media_type: str
    extension: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_photo(data: bytes, declared_type: str | None, *, max_bytes: int, index: int = 1,
                filename: str | None = None) -> CheckedPhoto:
    """The photo re-encoded without metadata, or InvalidPhoto. `declared_type` is only quoted
    in messages; `index` (from 1) and `filename` name the file in them."""
    name = f"photo {index}" + (f" ({filename})" if filename else "")
    image = _decoded(data, name, max_bytes, declared_type)
    media_type, extension = FORMATS[_format(image)]
    return CheckedPhoto(_reencoded(image, _format(image)), media_type, extension)


def check_photos(files: Sequence[tuple[bytes, str | None, str | None]], *, max_bytes: int, most: int
                 ) -> list[CheckedPhoto]:
    """Every file of a report, (data, declared type, file name) each, checked: one InvalidPhoto
    naming every refused file ("photo 2 (...) is ...; photo 4 (...) is ..."), or all of them."""
    check_count(len(files), most)
    checked: list[CheckedPhoto] = []
    refused: list[InvalidPhoto] = []
    for index, (data, declared_type, filename) in enumerate(files, start=1):
        try:
            checked.append(check_photo(data, declared_type, max_bytes=max_bytes, index=index, filename=filename))
        except InvalidPhoto as exc:
            refused.append(exc)
    if refused:
        raise InvalidPhoto("; ".join(str(exc).removeprefix("photos: ") for exc in refused), hint=refused[0].hint)
    return checked


def save_photo(folder: Path, photo: CheckedPhoto) -> StoredPhoto:
    """Write a checked photo once under `folder`, named by its checksum."""
    sha = photo.sha256
    relative = f"{sha[:2]}/{sha}.{photo.extension}"
    _write_once(folder, relative, photo.data)
    return StoredPhoto(sha256=sha, media_type=photo.media_type, bytes=len(photo.data), path=relative)


def store_photo(folder: Path, data: bytes, declared_type: str | None, *, max_bytes: int,
                index: int = 1, filename: str | None = None) -> StoredPhoto:
    """Check the photo, re-encode it without metadata and store it once under `folder`."""
    return save_photo(folder, check_photo(data, declared_type, max_bytes=max_bytes, index=index,
                                          filename=filename))


def open_photo(folder: Path, photo: StoredPhoto) -> bytes:
    """The stored bytes, after checking them against their checksum (PhotoDamaged if not)."""
    path = folder / photo.path  # the path was checked when the StoredPhoto was made
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise PhotoDamaged(f"photo {photo.sha256[:12]} is missing from the photo folder") from exc
    if hashlib.sha256(data).hexdigest() != photo.sha256:
        raise PhotoDamaged(f"photo {photo.sha256[:12]} does not match its checksum: it was changed on disk")
    return data


def _decoded(data: bytes, name: str, max_bytes: int, declared_type: str | None) -> Image.Image:
    """The image, fully decoded, or InvalidPhoto saying what is wrong with it."""
    if len(data) > max_bytes:
        raise InvalidPhoto(f"{name} is {_size(len(data))}; the most is {_size(max_bytes)}",
                           hint="send a smaller photo (a phone's 'medium' or 'large' size)")
    if not data:
        raise InvalidPhoto(f"{name} is empty")
    sent_as = f" (sent as {declared_type})" if declared_type else ""
    not_an_image = InvalidPhoto(f"{name}{sent_as} is not a JPEG, PNG or WebP photo",
                                hint="take the photo with the phone's camera, or save it as JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidPhoto(f"{name} is {width} x {height} pixels; the most is "
                                   f"{MAX_PIXELS // 1_000_000} million pixels")
            # a phone's MPO (a JPEG with a depth map or preview after it) is its first frame
            if image.format != "MPO" and (getattr(image, "is_animated", False)
                                          or getattr(image, "n_frames", 1) > 1):
                raise InvalidPhoto(f"{name} is an animated image; send a still photo")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidPhoto(f"{name} has too many pixels; the most is "
                           f"{MAX_PIXELS // 1_000_000} million") from exc
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError, OSError) as exc:
        # OSError: "image file is truncated" and the decoders' other complaints
        raise not_an_image from exc
    if _format(image) not in FORMATS:
        raise not_an_image
    return image


def _format(image: Image.Image) -> str:
    return "JPEG" if image.format == "MPO" else image.format or ""


def _reencoded(image: Image.Image, fmt: str) -> bytes:
    """The pixels alone, turned upright, in the format they came in: no metadata of any kind."""
    upright = ImageOps.exif_transpose(image)
    if fmt == "JPEG" and upright.mode not in ("L", "RGB"):
        upright = upright.convert("RGB")
    elif fmt == "WEBP" and upright.mode not in ("RGB", "RGBA"):
        upright = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
    elif fmt == "PNG" and upright.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        upright = upright.convert("RGBA")
    pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())  # nothing but the pixels
    if upright.mode == "P":
        palette = upright.getpalette()
        if palette is not None:
            pixels.putpalette(palette)
        if "transparency" in upright.info:
            pixels.info["transparency"] = upright.info["transparency"]
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True)
    elif fmt == "WEBP":
        pixels.save(out, "WEBP", quality=_JPEG_QUALITY)
    else:
        pixels.save(out, "PNG", optimize=True)
    return out.getvalue()


def _write_once(folder: Path, relative: str, data: bytes) -> None:
    """Write `data` at `folder/relative` (0600, folders 0700) by a temporary file and a rename;
    a file already there has the same bytes (its name is their checksum) and is kept."""
    target = folder / relative
    for directory in (folder, target.parent):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    if target.exists():
        return
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _size(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 1_048_576 else f"{max(1, round(n / 1024))} KB"
