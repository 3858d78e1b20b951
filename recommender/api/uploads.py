"""Uploaded photos → model-size PIL images, within the API's limits; `recommender.images` judges the bytes.

A photo is decoded through the same size-bounded path as the app's (`thumbnail_for_model`: JPEGs at
reduced scale, the rest scaled down as soon as decoded), one at a time, and all the photos of a request
together may hold at most `MAX_PIXELS_PER_REQUEST` (read from their headers before any is decoded).

Its InputError is kept as the message and given the status that says what went wrong: 413 for too
many bytes or pixels, 415 for data that is not an image at all, 400 for a damaged one.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from .. import images
from ..errors import InputError
from ..images import MAX_PHOTOS_PER_QUERY, MAX_PIXELS_PER_REQUEST
from .errors import ApiError

MAX_PHOTO_BYTES = 8 * 1024 * 1024
# Everything a search may carry: the photos plus a little for the text fields and multipart framing.
MAX_REQUEST_BYTES = MAX_PHOTOS_PER_QUERY * MAX_PHOTO_BYTES + 256 * 1024


def check_photo_count(count: int) -> None:
    if count > MAX_PHOTOS_PER_QUERY:
        raise ApiError(413, "too_many_photos", f"{count} photos sent; the limit is {MAX_PHOTOS_PER_QUERY} per search")


def check_request_pixels(uploads: list[tuple[bytes, str]]) -> None:
    """413 when the photos of one request hold more pixels together than MAX_PIXELS_PER_REQUEST."""
    total = sum(_header_pixels(data) for data, _ in uploads)
    if total > MAX_PIXELS_PER_REQUEST:
        raise ApiError(413, "photos_too_large", f"the photos hold {total / 1e6:.0f} megapixels together; the limit is "
                                                f"{MAX_PIXELS_PER_REQUEST / 1e6:.0f} megapixels per search")


def decode_photo(data: bytes, name: str) -> Image.Image:
    """One upload → an upright RGB image of model size, or ApiError with the status and a message naming
    the photo."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(413, "photo_too_large",
                       f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_PHOTO_BYTES / 1e6:.0f} MB per photo")
    try:
        return images.thumbnail_for_model(data, name=name)
    except InputError as exc:
        raise ApiError(*_classify(data), str(exc)) from None


def _header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone; Pillow's errors as they come (the callers say what they mean)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=images.ALLOWED_FORMATS).size


def _header_pixels(data: bytes) -> int:
    """Width × height from the header (0 when there is none to read: decoding says what is wrong)."""
    try:
        width, height = _header_size(data)
    except Exception:  # noqa: BLE001 (not an image, a bomb, a damaged header: decode_photo names it)
        return 0
    return width * height


def _classify(data: bytes) -> tuple[int, str]:
    """Status and code for bytes that `load_image` refused."""
    try:
        width, height = _header_size(data)
    except Image.DecompressionBombError:
        return 413, "photo_too_large"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return (415, "not_an_image") if data else (400, "empty_photo")
    if width * height > images.MAX_IMAGE_PIXELS or max(width, height) > images.MAX_ASPECT_RATIO * max(min(width, height), 1):
        return 413, "photo_too_large"
    return 400, "bad_photo"
