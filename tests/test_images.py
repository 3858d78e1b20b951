"""images.load_image: every way an image can be bad gets its own clear InputError; good ones decode upright."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from recommender.errors import InputError
from recommender.images import MAX_IMAGE_BYTES, load_image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with (almost) no pixel data: a bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_common_formats_decode_to_rgb(fmt):
    original = Image.new("RGB", (30, 20), (200, 30, 40))
    image = load_image(_encoded(original, fmt))
    assert image.mode == "RGB" and image.size == (30, 20)
    assert all(abs(a - b) < 12 for a, b in zip(image.getpixel((15, 10)), (200, 30, 40)))


def test_paths_and_file_objects_are_accepted(tmp_path):
    path = tmp_path / "shirt.png"
    Image.new("RGB", (8, 8), "blue").save(path)
    assert load_image(path).size == (8, 8)
    assert load_image(str(path)).size == (8, 8)
    with open(path, "rb") as handle:
        assert load_image(handle, name="shirt.png").size == (8, 8)


def test_exif_rotated_photo_comes_back_upright():
    # Stored wide, left half red / right half blue, with EXIF orientation 6 ("rotate 90 CW to view"):
    # seen upright it is tall with red on top.
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_image(_encoded(stored, "JPEG", exif=exif, quality=95))
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_transparent_areas_become_white():
    cut_out = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    cut_out.paste((255, 0, 0, 255), (0, 0, 5, 10))
    image = load_image(_encoded(cut_out, "PNG"))
    assert image.getpixel((8, 5)) == (255, 255, 255)
    assert image.getpixel((2, 5)) == (255, 0, 0)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.jpg is empty \(0 bytes\)"):
        load_image(path)


def test_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a red dress, size 38\n")
    with pytest.raises(InputError, match=r"notes\.txt is not an image \(jpg, png, webp"):
        load_image(path)


def test_truncated_jpeg():
    data = _encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    with pytest.raises(InputError, match=r"upload\.jpg is a corrupt or truncated image"):
        load_image(data[: len(data) // 2], name="upload.jpg")


def test_corrupt_png_checksum():
    data = bytearray(_encoded(Image.new("RGB", (16, 16), "green"), "PNG"))
    data[-20] ^= 0xFF  # inside the IDAT chunk
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(bytes(data), name="x.png")


def test_huge_image_is_refused_from_its_header():
    with pytest.raises(InputError, match=r"bomb\.png is 12000x12000 pixels; the limit is 40 megapixels"):
        load_image(_png_header_only(12000, 12000), name="bomb.png")


def test_decompression_bomb_beyond_pillows_hard_limit():
    with pytest.raises(InputError, match=r"bomb\.png has more than \d+ megapixels; the limit is 40 megapixels"):
        load_image(_png_header_only(30000, 30000), name="bomb.png")


def test_too_many_bytes():
    with pytest.raises(InputError, match=r"big\.jpg is 2\d\.\d MB; the limit is 2\d MB"):
        load_image(b"\xff" * (MAX_IMAGE_BYTES + 1), name="big.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such image file"):
        load_image(tmp_path / "gone.jpg")
