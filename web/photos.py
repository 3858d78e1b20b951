"""A shopper's query photos: formats allow-listed at the uploader (and judged by content by
`recommender.images`), a cap per query, each photo decoded once per upload into a small copy.

Only the small copy is kept, in the visitor's own session and only while the photo is in the query, so
large uploads cannot pin memory across sessions.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import streamlit as st
from PIL import Image

from recommender.errors import InputError
from recommender.images import (
    MAX_IMAGE_BYTES,
    MAX_PHOTOS_PER_QUERY,
    UPLOAD_EXTENSIONS,
    thumbnail_for_model,
)

UPLOAD_TYPES = UPLOAD_EXTENSIONS  # the uploader's allow-list; each file is still judged by its content
MAX_UPLOAD_MB = MAX_IMAGE_BYTES // 2**20  # the uploader refuses larger files before sending them
MODEL_INPUT_SIDE = 512  # px, longest side kept: CLIP models look at 224 px or less
PREVIEW_SIDE = 160  # px, the preview next to the predicted attributes
_DECODED = "_decoded_photos"  # session state: upload id → QueryPhoto | InputError


@dataclass
class QueryPhoto:
    name: str
    image: Image.Image  # upright RGB, longest side ≤ MODEL_INPUT_SIDE
    preview: bytes  # a small JPEG for the page
    attributes: dict | None = field(default=None)  # predicted once, on first display


def decode(name: str, data: bytes) -> QueryPhoto:
    """Decode once (InputError naming the file when it is unusable) and keep only small copies."""
    image = thumbnail_for_model(data, name, max_side=MODEL_INPUT_SIDE)
    preview = image.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    out = io.BytesIO()
    preview.save(out, format="JPEG", quality=85)
    return QueryPhoto(name, image, out.getvalue())


def decoded(uploads: list) -> list[QueryPhoto | InputError]:
    """Each upload (Streamlit UploadedFile) decoded once per upload; the session keeps only current ones."""
    known = st.session_state.get(_DECODED, {})
    current = {}
    for upload in uploads:
        if upload.file_id not in known:
            try:
                known[upload.file_id] = decode(upload.name, upload.getvalue())
            except InputError as exc:
                known[upload.file_id] = exc
        current[upload.file_id] = known[upload.file_id]
    st.session_state[_DECODED] = current
    return list(current.values())


def capped(photos: list[QueryPhoto]) -> list[QueryPhoto]:
    """At most MAX_PHOTOS_PER_QUERY, with a message when more were given."""
    if len(photos) > MAX_PHOTOS_PER_QUERY:
        st.warning(f"{len(photos)} photos: a query uses up to {MAX_PHOTOS_PER_QUERY}, so the first {MAX_PHOTOS_PER_QUERY} "
                   "are searched. Remove some to choose which.", icon=":material/photo_library:")
    return photos[:MAX_PHOTOS_PER_QUERY]
