"""images.load_image: every way an image can be bad gets its own clear InputError; good ones decode upright."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from recommender.errors import InputError
from recommender.images import MAX_IMAGE_BYTES, load_image, thumbnail_for_model


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
    with pytest.raises(InputError, match=r"notes\.txt is not an image in an accepted format \(JPEG, PNG, WEBP"):
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
    with pytest.raises(InputError, match=r"big\.jpg is 20\.1 MiB; the limit is 20 MiB per image"):
        load_image(b"\xff" * (MAX_IMAGE_BYTES + 1), name="big.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such image file"):
        load_image(tmp_path / "gone.jpg")


# --- modes that Pillow's own RGB conversion gets wrong, and other formats phones send ---


def test_16_bit_grey_png_keeps_its_picture():
    # Pillow reads it as mode I;16 and its RGB conversion clips every level above 255 to white.
    levels = np.zeros((10, 30), dtype=np.uint16)
    levels[:, 10:20], levels[:, 20:] = 32768, 65535
    image = load_image(_encoded(Image.fromarray(levels), "PNG"))
    assert [image.getpixel((x, 5)) for x in (5, 15, 25)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_float_tiff_in_0_to_1_is_scaled_to_8_bit():
    image = load_image(_encoded(Image.fromarray(np.full((4, 4), 0.25, dtype=np.float32)), "TIFF"))
    assert image.getpixel((1, 1)) == (64, 64, 64)


@pytest.mark.parametrize("mode, colour, expected", [
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("LA", (100, 255), (100, 100, 100)),
    ("L", 30, (30, 30, 30)),
])  # fmt: skip
def test_other_modes_convert_to_the_same_colour(mode, colour, expected):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    image = load_image(_encoded(Image.new(mode, (8, 8), colour), fmt, **({"quality": 100} if fmt == "JPEG" else {})))
    assert all(abs(a - b) <= 2 for a, b in zip(image.getpixel((4, 4)), expected)), image.getpixel((4, 4))


def test_palette_gif_with_transparency_is_on_white():
    frame = Image.new("P", (8, 8), 1)
    frame.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    frame.paste(0, (0, 0, 4, 8))
    image = load_image(_encoded(frame, "GIF", transparency=0))
    assert image.getpixel((1, 4)) == (255, 255, 255) and image.getpixel((6, 4)) == (255, 0, 0)


def test_heic_from_a_phone_decodes():
    pytest.importorskip("pillow_heif")
    image = load_image(_encoded(Image.new("RGB", (30, 20), (200, 30, 40)), "HEIF"), name="IMG_0001.HEIC")
    assert image.size == (30, 20)
    assert all(abs(a - b) < 12 for a, b in zip(image.getpixel((15, 10)), (200, 30, 40)))


def test_thumbnail_for_model_is_bounded_and_keeps_the_picture():
    photo = Image.new("RGB", (4000, 3000), "white")
    photo.paste((200, 30, 40), (0, 0, 2000, 3000))  # left half red
    thumb = thumbnail_for_model(_encoded(photo, "JPEG", quality=90), name="photo.jpg")
    assert thumb.mode == "RGB" and thumb.size == (448, 336)
    assert all(abs(a - b) < 12 for a, b in zip(thumb.getpixel((50, 168)), (200, 30, 40)))
    assert min(thumb.getpixel((400, 168))) > 240
    small = thumbnail_for_model(_encoded(Image.new("RGB", (60, 40), "blue"), "PNG"))
    assert small.size == (60, 40)  # never enlarged
