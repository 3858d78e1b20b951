"""Safe decoding of images that come from users or disk: the one place Lookbook opens an image.

Only the formats a shopper's camera, phone or browser produces are decoded, judged by the file's
content (never its name): other Pillow decoders (EPS through Ghostscript, PSD, ...) are never reached.
Every problem becomes an `InputError` naming the image and what is wrong with it, so the app and the
CLI can show it as is: empty files, files that are not images or not in an accepted format, truncated
or corrupt data, and images too large to decode safely (bytes, or pixels: decompression bombs).

`thumbnail_for_model` is what callers that keep photos (a page across reruns, a server) should hold:
the picture at about twice the model's input size, decoded once per upload, instead of a 40 MP photo.
"""
from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Registers exactly the decoders Lookbook accepts (Image.open(formats=...) needs them registered).
from PIL import (  # noqa: F401  # noqa: F401
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    MpoImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
    features,
)

from .errors import InputError

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # 20 MiB: far above any product photo, well below memory trouble
MAX_IMAGE_PIXELS = 40_000_000  # 40 MP (e.g. 8000x5000): a full-resolution phone photo still passes
MAX_PHOTOS_PER_QUERY = 4  # app, API and CLI: photos are searched as one mean vector; more adds little and costs
# a decoding and an encoding each
# CLIP models take 224 px (lookbook-tiny less); twice that leaves the model's own resize and crop room.
MODEL_THUMBNAIL_SIDE = 448
# A photo's longer side at most this many times its shorter one: a 65500 x 1 strip passes the pixel limit,
# and a model's keep-ratio resize would make it millions of pixels long.
MAX_ASPECT_RATIO = 20
MAX_PIXELS_PER_REQUEST = 2 * MAX_IMAGE_PIXELS  # the photos of one API search together, decoded


def _heif_available() -> bool:
    """HEIC/HEIF (iPhone photos) through pillow-heif, when it is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


# Pillow format ids → the names messages use. (Phones' multi-picture JPEGs open as JPEG, then read as MPO.)
_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF", "BMP": "BMP",
                 "TIFF": "TIFF"}  # fmt: skip
if _heif_available():
    _FORMAT_NAMES["HEIF"] = "HEIC"
if features.check("avif"):
    from PIL import AvifImagePlugin  # noqa: F401

    _FORMAT_NAMES["AVIF"] = "AVIF"
ALLOWED_FORMATS = tuple(_FORMAT_NAMES)
# File name endings for upload widgets (a first filter for the browser's picker; content still decides).
UPLOAD_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"] + (
    ["heic", "heif"] if "HEIF" in _FORMAT_NAMES else []) + (["avif"] if "AVIF" in _FORMAT_NAMES else [])
ACCEPTED_FORMATS = ", ".join(dict.fromkeys(_FORMAT_NAMES.values()))
if "HEIF" not in _FORMAT_NAMES:
    ACCEPTED_FORMATS += " (not HEIC: set the phone's camera to 'Most Compatible' or export as JPEG)"

# Leading bytes of files people try that are refused, so the message can say what the file is.
_REFUSED_SIGNATURES = [
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "a PostScript/EPS file"),
    (b"%PDF", "a PDF document"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"\x00\x00\x01\x00", "a Windows icon (ICO)"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG file"),
]


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
    # Rounded up, so a file just over the limit never reads as "20.0 MiB; the limit is 20 MiB".
    size_mib = math.ceil(size / 2**20 * 10) / 10
    return f"{name} is {size_mib:.1f} MiB; the limit is {MAX_IMAGE_BYTES // 2**20} MiB per image"


def _too_many_pixels(name: str, width: int, height: int) -> str:
    return (
        f"{name} is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
        "(scale it down and try again)"
    )


def _not_accepted(name: str, data: bytes) -> str:
    head = data[:64].lstrip()
    brand = data[8:12] if data[4:8] == b"ftyp" else b""
    what = next((what for signature, what in _REFUSED_SIGNATURES if head.startswith(signature)), None)
    if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        what = "a HEIC photo"
    elif brand in (b"avif", b"avis"):
        what = "an AVIF image"
    if what:
        return f"{name} is {what}, which is not accepted (accepted: {ACCEPTED_FORMATS})"
    return f"{name} is not an image in an accepted format ({ACCEPTED_FORMATS})"


def load_image(source: bytes | str | Path | BinaryIO, name: str = "image") -> Image.Image:
    """Decode `source` into an upright RGB image, or raise InputError saying what is wrong.

    `name` is how the message refers to the image (a file name for uploads). The format and the pixel
    count are checked from the header before any pixel is decoded, so a decompression bomb costs nothing.
    """
    return _decode(source, name, max_side=None)


def thumbnail_for_model(
    source: bytes | str | Path | BinaryIO, name: str = "image", max_side: int = MODEL_THUMBNAIL_SIDE
) -> Image.Image:
    """Like `load_image`, but at most `max_side` pixels on its longer side: what the model needs.

    JPEGs are decoded at a reduced scale directly (a 40 MP photo never exists in memory at full size).
    Callers that keep photos between requests should keep this, decoded once per upload.
    """
    return _decode(source, name, max_side=max_side)


def _decode(source, name: str, max_side: int | None) -> Image.Image:
    if isinstance(source, (str, Path)) and name == "image":
        name = Path(source).name
    data = _read_bytes(source, name)
    try:
        # Image.open reads only the header; our own pixel limit is checked before decoding. Pillow's
        # bomb guard (a warning at Image.MAX_IMAGE_PIXELS) is silenced as ours is stricter; its hard
        # error (at twice that) fires inside open, before the size can be read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise InputError(_too_many_pixels(name, width, height))
        if max(width, height) > MAX_ASPECT_RATIO * max(min(width, height), 1):
            raise InputError(f"{name} is {width}x{height} pixels: too long and narrow for a photo "
                             f"(the longer side may be at most {MAX_ASPECT_RATIO} times the shorter)")
        if max_side and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (max_side, max_side))  # DCT scaling: decodes at 1/2, 1/4 or 1/8 size
        image.load()
    except Image.DecompressionBombError:
        raise InputError(
            f"{name} has more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels; "
            f"the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (scale it down and try again)"
        ) from None
    except UnidentifiedImageError:
        raise InputError(_not_accepted(name, data)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt data: Pillow raises OSError ("image file is truncated", "broken data
        # stream"), SyntaxError (malformed PNG chunks) or EOFError while decoding.
        raise InputError(f"{name} is a corrupt or truncated image: {exc}") from None
    try:
        image = ImageOps.exif_transpose(image)  # phone photos: rotate as the camera meant
    except Exception:  # a malformed EXIF block must not lose the picture itself
        pass
    if image.mode.startswith("I;16"):
        image = _high_byte(image)
    if max_side and image.mode in _RESIZED_BEFORE_RGB:  # scaled down first: the RGB copy is then small
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    image = _to_rgb(image, name)
    if max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return image


# Modes Pillow resizes as they are (palette and bilevel images are converted first: resizing their
# codes would mix colours wrongly).
_RESIZED_BEFORE_RGB = ("RGB", "RGBA", "L", "LA", "I", "F")


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Any decoded mode → 8-bit RGB showing the same picture."""
    if image.mode in ("I", "F"):
        # 32-bit and float pixels: Pillow's own conversion clips at 255.
        return Image.fromarray(_to_8_bit(np.asarray(image))).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        # Cut-out product shots: put transparent areas on white (as in catalogue photos), not black.
        return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA")).convert("RGB")
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")  # L, P, 1, CMYK, YCbCr, ...
    except ValueError:
        raise InputError(f"{name} uses the colour mode {image.mode}, which cannot be shown as RGB") from None


def _high_byte(image: Image.Image) -> Image.Image:
    """16-bit grey levels → 8-bit ("L"): the high byte is the picture (Pillow's own conversion clips at 255,
    and a float copy of a 40 MP photo would take 320 MB)."""
    return Image.fromarray((np.asarray(image).astype(np.uint16, copy=False) >> 8).astype(np.uint8))


def _to_8_bit(pixels: np.ndarray, full_scale: float | None = None) -> np.ndarray:
    """Grey levels → 0..255, by `full_scale` (white) or, when unknown, the range the data implies:
    floats up to 1, then 8-bit, then 16-bit levels, else the brightest pixel."""
    values = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low = min(0.0, float(values.min()))
    if full_scale is None:
        top = float(values.max())
        scales = ([1.0] if np.issubdtype(pixels.dtype, np.floating) else []) + [255.0, 65535.0]
        full_scale = next((scale for scale in scales if top <= scale), top)
    scaled = (values - low) * (255.0 / max(full_scale - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def pictures(images: list) -> list:
    """Each query image as an RGB PIL image: PIL images as they are, paths and files decoded (`load_image`)."""
    loaded = []
    for number, image in enumerate(images, 1):
        if hasattr(image, "mode") and hasattr(image, "convert"):  # already a PIL image
            loaded.append(image.convert("RGB"))
        else:
            name = Path(image).name if isinstance(image, (str, Path)) else getattr(image, "name", f"image {number}")
            loaded.append(load_image(image, name=name))
    return loaded
