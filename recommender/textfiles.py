"""Which encoding a user's text file is in, and where it stops being text (CSV files, id lists).

UTF-8 (with or without a byte-order mark) is read as is; UTF-16 with a byte-order mark (Excel's
"Unicode text") is read as UTF-16. A file that is not UTF-8 but reads as Windows-1252 throughout (what
Excel and older Windows tools write; a superset of Latin-1's letters) and holds no UTF-8 at all is read
as Windows-1252 with a notice. Anything else (a file mixing encodings, binary data) is refused with
the line, column and byte where it stops being UTF-8.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

CHUNK_BYTES = 1 << 22
LEGACY_ENCODING = "cp1252"
# A well-formed UTF-8 multi-byte character: a legacy 8-bit file almost never holds one by chance.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass(frozen=True)
class Encoding:
    name: str  # a Python codec name, also accepted by pyarrow's ReadOptions(encoding=...)
    notice: str | None = None  # what the user should know (e.g. "read as Windows-1252"), else None


@dataclass(frozen=True)
class BadByte:
    offset: int
    line: int  # 1-based physical line
    column: int  # 1-based character position in that line
    value: int


def detect_encoding(path: Path, label: str | None = None) -> Encoding:
    """The encoding to read `path` with, or DataError naming the line where it is not text.

    `label` is how messages name the file (default: its path). Reads the file in chunks; only a file
    that is not UTF-8 is read whole (to tell Windows-1252 from a mix).
    """
    label = label or str(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Encoding("utf-16", f"{label} is UTF-16 text; it was read as such")
    bad = first_bad_utf8(path)
    return Encoding("utf-8") if bad is None else _legacy_or_refused(path.read_bytes(), bad, label)


def decode_text(data: bytes, label: str) -> tuple[str, str | None]:
    """Small text in memory (an id list) → (text, notice), by the rules of `detect_encoding`."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), f"{label} is UTF-16 text; it was read as such"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        encoding = _legacy_or_refused(data, _bad_byte_at(data, exc.start), label)
    return data.decode(encoding.name), encoding.notice


def first_bad_utf8(path: Path) -> BadByte | None:
    """Where `path` first stops being valid UTF-8 (read in chunks, so any size), or None."""
    carry, base, line, column_chars = b"", 0, 1, 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            data = carry + chunk
            if not data:
                return None
            try:
                if not data.isascii():  # the common case costs one fast scan
                    data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as exc:
                if not (chunk and exc.reason == "unexpected end of data"):
                    bad = _bad_byte_at(data, exc.start)
                    column = bad.column + (column_chars if bad.line == 1 else 0)
                    return BadByte(base + bad.offset, line + bad.line - 1, column, bad.value)
                good = exc.start  # a character split by the chunk boundary: finish it with the next chunk
            done = data[:good]
            newlines = done.count(b"\n")
            line += newlines
            tail = done[done.rfind(b"\n") + 1:].decode("utf-8")
            column_chars = len(tail) if newlines else column_chars + len(tail)
            carry, base = data[good:], base + good
            if not chunk:
                return None


def _bad_byte_at(data: bytes, offset: int) -> BadByte:
    prefix = data[:offset]
    line_start = prefix.rfind(b"\n") + 1
    column = len(prefix[line_start:].decode("utf-8", errors="replace")) + 1
    return BadByte(offset, prefix.count(b"\n") + 1, column, data[offset])


def _legacy_or_refused(data: bytes, bad: BadByte, label: str) -> Encoding:
    """Windows-1252 when the whole file reads as such and holds no UTF-8 at all; else DataError."""
    try:
        data.decode(LEGACY_ENCODING)
        legacy = _UTF8_MULTIBYTE.search(data) is None
    except UnicodeDecodeError:
        legacy = False
    if not legacy:
        raise DataError(
            f"{label}, line {bad.line}, column {bad.column}: byte 0x{bad.value:02X} is not UTF-8 text, and the "
            "file is not in one other encoding either (it mixes encodings or holds binary data); save it as UTF-8"
        )
    start = data.rfind(b"\n", 0, bad.offset) + 1
    end = data.find(b"\n", bad.offset)
    example = data[start : end if end >= 0 else len(data)].decode(LEGACY_ENCODING).strip()
    return Encoding(LEGACY_ENCODING, (
        f"{label} is not UTF-8; it was read as Windows-1252 (Latin-1) text, e.g. line {bad.line}: "
        f"{_clip(example)!r}. Save it as UTF-8 to be sure every character is read as meant"
    ))  # fmt: skip


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
