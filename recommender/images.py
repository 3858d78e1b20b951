"""Safe decoding of images that come from users or disk: the one place Lookbook opens an image.

Every problem becomes an `InputError` naming the image and what is wrong with it, so the app and the
CLI can show it as is: empty files, files that are not images, truncated or corrupt data, and images
too large to decode safely (decompression bombs).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # 20 MB: far above any product photo, well below memory trouble
MAX_IMAGE_PIXELS = 40_000_000  # 40 MP (e.g. 8000x5000): a full-resolution phone photo still passes
ACCEPTED_FORMATS = "jpg, png, webp, gif, bmp, tiff"


def _read_bytes(source: bytes | str | Path | BinaryIO, name: str) -> bytes:
    """All of the source's bytes, refusing more than MAX_IMAGE_BYTES before reading them all."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{name}: no such image file: {path}")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise InputError(_too_many_bytes(name, size))
        data = path.read_bytes()
    else:  # a binary file object, e.g. a Streamlit UploadedFile
        data = source.read(MAX_IMAGE_BYTES + 1)
        if not isinstance(data, bytes):
            raise InputError(f"{name}: expected binary image data, got {type(data).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(_too_many_bytes(name, len(data)))
    if not data:
        raise InputError(f"{name} is empty (0 bytes); expected an image ({ACCEPTED_FORMATS})")
    return data


def _too_many_bytes(name: str, size: int) -> str:
    return (
        f"{name} is {size / 1e6:.1f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB per image"
    )


def _too_many_pixels(name: str, width: int, height: int) -> str:
    return (
        f"{name} is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
        "(scale it down and try again)"
    )


def load_image(source: bytes | str | Path | BinaryIO, name: str = "image") -> Image.Image:
    """Decode `source` into an upright RGB image, or raise InputError saying what is wrong.

    `name` is how the message refers to the image (a file name for uploads). The pixel count is
    checked from the header before any pixel is decoded, so a decompression bomb costs nothing.
    """
    if isinstance(source, (str, Path)) and name == "image":
        name = Path(source).name
    data = _read_bytes(source, name)
    try:
        # Image.open reads only the header; our own pixel limit is checked before decoding. Pillow's
        # bomb guard (a warning at Image.MAX_IMAGE_PIXELS) is silenced as ours is stricter; its hard
        # error (at twice that) fires inside open, before the size can be read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise InputError(_too_many_pixels(name, width, height))
        image.load()
    except Image.DecompressionBombError:
        raise InputError(
            f"{name} has more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels; "
            f"the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (scale it down and try again)"
        ) from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image ({ACCEPTED_FORMATS})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt data: Pillow raises OSError ("image file is truncated", "broken data
        # stream") or SyntaxError (malformed PNG chunks) while decoding.
        raise InputError(f"{name} is a corrupt or truncated image: {exc}") from None
    try:
        image = ImageOps.exif_transpose(image)  # phone photos: rotate as the camera meant
    except Exception:  # a malformed EXIF block must not lose the picture itself
        pass
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Cut-out product shots: put transparent areas on white (as in catalogue photos), not black.
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")
