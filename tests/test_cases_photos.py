"""cases/photos.py: which files a householder's report may carry, and how they are stored.

Every image here is generated with Pillow in the test; every hostile file is built from the
published formats (PNG: RFC 2083 chunk layout, IHDR first with width and height as 4-byte
big-endian integers and a CRC-32 over type and data; JPEG: ITU T.81, a file ends with the
EOI marker FF D9; EXIF tags from the CIPA DC-008 standard: 0x0112 Orientation, 6 meaning
"rotate 90 degrees clockwise to view", 0x8825 the GPS IFD, 0x0002 GPSLatitude).
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cases.errors import InvalidCase, InvalidPhoto, PhotoDamaged
from cases.photos import MAX_PIXELS, StoredPhoto, check_count, check_photos, open_photo, store_photo

MIB = 1024 * 1024
LIMIT = 5 * MIB  # the settings' default photo_max_bytes


def image_bytes(fmt: str, size: tuple[int, int] = (40, 20), *, colour: tuple[int, int, int] = (200, 30, 30),
                **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt, **save)
    return out.getvalue()


def jpeg_with_gps_and_orientation() -> bytes:
    """A 40 x 20 JPEG, left half red and right half blue, whose EXIF says 'rotate 90 clockwise'
    (Orientation 6) and carries a GPS latitude, as a phone would."""
    image = Image.new("RGB", (40, 20), (220, 0, 0))
    image.paste((0, 0, 220), (20, 0, 40, 20))
    exif = image.getexif()
    exif[0x0112] = 6
    exif.get_ifd(0x8825)[0x0002] = (51.0, 30.0, 0.0)  # GPSLatitude: where the tenant lives
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (the CRC recomputed): a bomb's header."""
    data = bytearray(image_bytes("PNG", (1, 1)))
    ihdr = 8 + 8  # the signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))  # type + 13 bytes of data
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- what is accepted, and how it is stored -----------------------------------------------

@pytest.mark.parametrize(("fmt", "media_type", "extension"),
                         [("JPEG", "image/jpeg", "jpg"), ("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")])
def test_a_jpeg_png_or_webp_is_stored_under_its_checksum(tmp_path: Path, fmt: str, media_type: str,
                                                          extension: str) -> None:
    # the type comes from decoding the bytes: the declared type here is wrong on purpose
    photo = store_photo(tmp_path / "photos", image_bytes(fmt), "text/plain", max_bytes=LIMIT)

    stored = (tmp_path / "photos" / photo.path).read_bytes()
    assert photo.media_type == media_type
    assert photo.sha256 == hashlib.sha256(stored).hexdigest()
    assert photo.path == f"{photo.sha256[:2]}/{photo.sha256}.{extension}"
    assert photo.bytes == len(stored)
    assert Image.open(io.BytesIO(stored)).format == fmt


def test_files_are_private_to_the_service(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    photo = store_photo(folder, image_bytes("PNG"), "image/png", max_bytes=LIMIT)

    assert stat.S_IMODE((folder / photo.path).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / photo.path).parent.stat().st_mode) == 0o700
    assert [p.name for p in files_under(folder)] == [Path(photo.path).name]  # no temporary file left


def test_the_same_photo_twice_is_stored_once(tmp_path: Path) -> None:
    data = image_bytes("JPEG")
    first = store_photo(tmp_path, data, "image/jpeg", max_bytes=LIMIT)
    second = store_photo(tmp_path, data, "image/jpeg", max_bytes=LIMIT)

    assert first == second
    assert len(files_under(tmp_path)) == 1


def test_exif_and_gps_are_stripped_and_the_photo_is_turned_upright(tmp_path: Path) -> None:
    data = jpeg_with_gps_and_orientation()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the test's photo does carry GPS

    photo = store_photo(tmp_path, data, "image/jpeg", max_bytes=LIMIT)
    stored = open_photo(tmp_path, photo)
    image = Image.open(io.BytesIO(stored))

    assert dict(image.getexif()) == {}
    assert b"Exif" not in stored and "exif" not in image.info and "xmp" not in image.info
    # Orientation 6: the 40 x 20 picture is shown 20 x 40, its left (red) half now on top
    assert image.size == (20, 40)
    red, _, blue = image.convert("RGB").getpixel((10, 5))  # type: ignore[misc]
    assert red > 150 and blue < 80
    red, _, blue = image.convert("RGB").getpixel((10, 35))  # type: ignore[misc]
    assert blue > 150 and red < 80


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_metadata_is_stripped_from_png_and_webp_too(tmp_path: Path, fmt: str) -> None:
    image = Image.new("RGB", (30, 10), (10, 120, 200))
    exif = image.getexif()
    exif.get_ifd(0x8825)[0x0002] = (51.0, 30.0, 0.0)
    out = io.BytesIO()
    extra: dict[str, object] = {"exif": exif, "xmp": b"<x:xmpmeta>home at 51.5N</x:xmpmeta>"}
    if fmt == "PNG":
        text = PngInfo()
        text.add_text("Comment", "home at 51.5N")
        extra["pnginfo"] = text
    image.save(out, fmt, **extra)
    assert b"51.5N" in out.getvalue()   # the test's file does carry it

    stored = open_photo(tmp_path, store_photo(tmp_path, out.getvalue(), None, max_bytes=LIMIT))
    assert b"51.5N" not in stored and b"Exif" not in stored
    assert dict(Image.open(io.BytesIO(stored)).getexif()) == {}


def test_text_after_a_real_jpeg_is_not_stored(tmp_path: Path) -> None:
    # a polyglot: a valid JPEG with an HTML page after its end; the pixels are kept, the page is not
    payload = b"<html><script>alert(document.cookie)</script></html>"
    photo = store_photo(tmp_path, image_bytes("JPEG") + payload, "image/jpeg", max_bytes=LIMIT)

    assert payload not in open_photo(tmp_path, photo)
    assert b"<script" not in open_photo(tmp_path, photo)


def test_a_phone_sized_photo_is_accepted(tmp_path: Path) -> None:
    # 4032 x 3024: a 12 MP phone camera's full size
    photo = store_photo(tmp_path, image_bytes("JPEG", (4032, 3024), quality=70), "image/jpeg", max_bytes=LIMIT)
    assert Image.open(io.BytesIO(open_photo(tmp_path, photo))).size == (4032, 3024)


# --- what is refused, with a message naming the file --------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


@pytest.mark.parametrize(("data", "why"), [
    (PDF, "a PDF"),
    (HTML, "an HTML page named .jpg"),
    (image_bytes("JPEG", (64, 64))[:300], "a JPEG cut short (no end of image, scan data missing)"),
    (PDF + image_bytes("JPEG"), "a PDF with a JPEG inside it (polyglot)"),
    (image_bytes("GIF"), "a GIF (not one of the accepted formats)"),
    (image_bytes("BMP"), "a BMP (not one of the accepted formats)"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "JPEG magic bytes and nothing else"),
])
def test_a_file_that_is_not_a_photo_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(InvalidPhoto) as refused:
        store_photo(tmp_path, data, "image/jpeg", max_bytes=LIMIT, index=2, filename="damp.jpg")

    assert str(refused.value) == "photos: photo 2 (damp.jpg) (sent as image/jpeg) is not a JPEG, PNG or WebP photo", why
    assert refused.value.field == "photos"
    assert isinstance(refused.value, InvalidCase)
    assert files_under(tmp_path) == []


def test_a_file_over_the_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    # 5 MiB + 1 of bytes that are not an image: the size is what is reported, so it was checked first
    with pytest.raises(InvalidPhoto, match=r"^photos: photo 3 is 5\.0 MB; the most is 5\.0 MB$"):
        store_photo(tmp_path, b"x" * (LIMIT + 1), None, max_bytes=LIMIT, index=3)
    assert files_under(tmp_path) == []


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidPhoto, match=r"photo 1 is empty"):
        store_photo(tmp_path, b"", "image/png", max_bytes=LIMIT)


@pytest.mark.parametrize(("width", "height"), [
    (8000, 8000),      # 64 MP: over MAX_PIXELS (50 MP), under Pillow's 2x error threshold
    (60000, 60000),    # 3.6 gigapixels: Pillow's own DecompressionBombError
])
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path, width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS  # set explicitly by cases.photos

    with pytest.raises(InvalidPhoto, match=r"^photos: photo 4 (is \d+ x \d+ pixels|has too many pixels); "
                                           r"the most is 50 million"):
        store_photo(tmp_path, png_claiming(width, height), "image/png", max_bytes=LIMIT, index=4)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animated_image_is_refused(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InvalidPhoto, match=r"photo 1 is an animated image; send a still photo"):
        store_photo(tmp_path, animated(fmt), None, max_bytes=LIMIT)


def test_more_photos_than_a_report_may_carry_are_refused() -> None:
    check_count(5, 5)
    with pytest.raises(InvalidPhoto, match=r"6 photos sent; a report may carry at most 5"):
        check_count(6, 5)


# --- reading back ----------------------------------------------------------------------------

def test_a_changed_file_is_refused_on_read(tmp_path: Path) -> None:
    photo = store_photo(tmp_path, image_bytes("PNG"), "image/png", max_bytes=LIMIT)
    path = tmp_path / photo.path
    path.write_bytes(image_bytes("PNG", colour=(0, 0, 0)))

    with pytest.raises(PhotoDamaged, match="does not match its checksum"):
        open_photo(tmp_path, photo)


def test_a_missing_file_is_refused_on_read(tmp_path: Path) -> None:
    photo = store_photo(tmp_path, image_bytes("PNG"), "image/png", max_bytes=LIMIT)
    (tmp_path / photo.path).unlink()

    with pytest.raises(PhotoDamaged, match="is missing"):
        open_photo(tmp_path, photo)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "ab/../../x.jpg"])
def test_a_stored_path_outside_the_folder_cannot_be_made(path: str) -> None:
    with pytest.raises(ValueError, match="not a stored photo's path"):
        StoredPhoto(sha256="ab" * 32, media_type="image/jpeg", bytes=1, path=path)


def test_every_refused_file_of_a_report_is_named_at_once(tmp_path: Path) -> None:
    files = [(image_bytes("JPEG"), "image/jpeg", "ok.jpg"), (PDF, "application/pdf", "letter.pdf"),
             (image_bytes("PNG"), "image/png", "ok.png"), (b"x" * (LIMIT + 1), "image/jpeg", "huge.jpg")]
    with pytest.raises(InvalidPhoto) as refused:
        check_photos(files, max_bytes=LIMIT, most=5)

    assert str(refused.value) == ("photos: photo 2 (letter.pdf) (sent as application/pdf) is not a JPEG, PNG or "
                                  "WebP photo; photo 4 (huge.jpg) is 5.0 MB; the most is 5.0 MB")
    assert [p.media_type for p in check_photos(files[::2], max_bytes=LIMIT, most=5)] == ["image/jpeg", "image/png"]
    with pytest.raises(InvalidPhoto, match="6 photos sent"):
        check_photos(files + files[:2], max_bytes=LIMIT, most=5)
    assert files_under(tmp_path) == []   # checking writes nothing
