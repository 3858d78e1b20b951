"""Checks on what a user types (CLI flags, the app's boxes, API parameters): one clear InputError each.

`clean_text` turns a typed query into the text to embed, or refuses it: empty, only invisible
characters (zero-width spaces, byte-order marks), control characters, undecodable bytes, too long.
`check_count` refuses counts such as -k 0.
"""
from __future__ import annotations

import unicodedata

from .errors import InputError

MAX_QUERY_CHARS = 1000  # CLIP reads ~77 tokens; a longer text is a paste accident, not a query
MAX_RESULTS = 1000


def clean_text(text: str, what: str = "the query") -> str:
    """`text` with invisible format characters removed and white space collapsed; InputError when
    nothing searchable remains or it holds characters no query should (controls, undecodable bytes)."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, not {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category == "Cs":
            raise InputError(f"{what} is not valid text: it holds bytes that are not UTF-8 (at character {position})")
        if category == "Cc" and char not in "\t\n\r":
            raise InputError(
                f"{what} holds a control character (U+{ord(char):04X} at character {position}); type plain text"
            )
    visible = "".join(char for char in text if unicodedata.category(char) != "Cf")  # zero-width, BOM, ...
    cleaned = " ".join(visible.split())
    if not cleaned:
        shown = "empty" if not text else "only invisible characters or spaces"
        raise InputError(f"{what} is {shown}; type what you are looking for, e.g. 'red summer dress'")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise InputError(f"{what} is {len(cleaned)} characters long; the limit is {MAX_QUERY_CHARS}")
    return cleaned


def check_count(value: int, what: str, limit: int = MAX_RESULTS) -> int:
    """A count the user chose (results, days, epochs): a whole number from 1 to `limit`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InputError(f"{what} must be a whole number from 1 to {limit}, not {value!r}")
    return value
