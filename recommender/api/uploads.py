"""Uploaded photos → PIL images, within the API's limits; `recommender.images` judges the bytes.

Its InputError is kept as the message and given the status that says what went wrong: 413 for too
many bytes or pixels, 415 for data that is not an image at all, 400 for a damaged one.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from .. import images
from ..errors import InputError
from .errors import ApiError

MAX_PHOTOS = 4
MAX_PHOTO_BYTES = 8 * 1024 * 1024
# Everything a search may carry: the photos plus a little for the text fields and multipart framing.
MAX_REQUEST_BYTES = MAX_PHOTOS * MAX_PHOTO_BYTES + 256 * 1024


def check_photo_count(count: int) -> None:
    if count > MAX_PHOTOS:
        raise ApiError(413, "too_many_photos", f"{count} photos sent; the limit is {MAX_PHOTOS} per search")


def decode_photo(data: bytes, name: str) -> Image.Image:
    """One upload → an upright RGB image, or ApiError with the status and a message naming the photo."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(413, "photo_too_large",
                       f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_PHOTO_BYTES / 1e6:.0f} MB per photo")
    try:
        return images.load_image(data, name=name)
    except InputError as exc:
        raise ApiError(*_classify(data), str(exc)) from None


def _classify(data: bytes) -> tuple[int, str]:
    """Status and code for bytes that `load_image` refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError:
        return 413, "photo_too_large"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return (415, "not_an_image") if data else (400, "empty_photo")
    if width * height > images.MAX_IMAGE_PIXELS:
        return 413, "photo_too_large"
    return 400, "bad_photo"
