"""Reading a CSV of the catalogue with pyarrow, and locating what is wrong in it: every failure is one
`DataError` naming the file, the line (as an editor counts it, also after quoted line breaks), the
column and what was expected."""
from __future__ import annotations

import csv
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import DataError
from .textfiles import first_bad_utf8


def read_table(path: Path, types: dict, include: list[str] | None = None, encoding: str = "utf-8",
                newlines_in_values: bool = False) -> pa.Table:
    bad_rows: list = []

    def on_invalid(row) -> str:
        bad_rows.append(row)
        return "skip"

    try:
        with undecodable_rows() as undecodable:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=encoding),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                                 newlines_in_values=newlines_in_values),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=include,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    null_values=[""],  # not pyarrow's default list: "NaN" or "NULL" is a bad value, not empty
                ),
            )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise DataError(f"{path} is empty (no header line)") from exc
        if undecodable:
            fail_on_bad_utf8(path, header_of(path, encoding))
        raise
    if undecodable:
        fail_on_bad_utf8(path, header_of(path, encoding))
    if bad_rows:
        row = bad_rows[0]
        line = row.number if row.number is not None else line_of_text(path, row.text, encoding)
        raise DataError(
            f"{path}, line {line}: expected {row.expected_columns} columns, found {row.actual_columns} "
            f"({clipped(row.text)!r}){in_all(len(bad_rows), 'malformed row')}"
        )
    return table


@contextmanager
def undecodable_rows() -> Iterator[list]:
    """pyarrow decodes a malformed row's text before calling our handler; when that text is not UTF-8
    the error is "unraisable" and would be printed as a traceback. Collect those errors instead."""
    caught: list = []
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            caught.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def header_of(path: Path, encoding: str = "utf-8") -> list[str]:
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding  # a byte-order mark is not part of the name
    with open(path, "r", encoding=encoding, errors="replace") as f:
        first = f.readline()
    if not first.strip():
        raise DataError(f"{path} is empty (no header line)")
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(",")]


def require_columns(path: Path, header: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path} is missing column(s) {', '.join(missing)} (header has: {', '.join(header)})"
        )


def fail_on_first(path, column, bad_mask, values, expected, line_of=lambda row: row + 2) -> None:
    """DataError naming the first row of `bad_mask`; `line_of` maps a row to its line in the file."""
    bad_mask = np.asarray(bad_mask, dtype=bool)
    if bad_mask.any():
        row = int(np.flatnonzero(bad_mask)[0])
        raise DataError(
            f"{path}, line {line_of(row)}, column {column}: {clipped(str(values.iat[row]))!r} is not {expected}"
            f"{in_all(int(bad_mask.sum()), 'bad value')}"
        )


def first_line_with_code(dict_array: pa.DictionaryArray, code: int) -> int:
    row = int(np.flatnonzero(dict_array.indices.to_numpy(zero_copy_only=False) == code)[0])
    return row + 2  # 1-based, after the header


def fail_on_code(path, header, column, dict_array, code, expected) -> None:
    value = dict_array.dictionary[int(code)].as_py()
    raise DataError(
        f"{path}, line {first_line_with_code(dict_array, code)}, column {column}: "
        f"{clipped(value)!r} is not {expected}"
    )


def fail_on_null(path, header, column, array) -> None:
    row = int(np.flatnonzero(pc.is_null(array).to_numpy(zero_copy_only=False))[0])
    raise DataError(f"{path}, line {row + 2}, column {column}: value is empty")


def explain_conversion_error(path: Path, header: list[str], types: dict, exc: Exception) -> None:
    """pyarrow names the bad value but not the line: find it by reading the column as text."""
    parsers = {
        "t_dat": (lambda s: pd.to_datetime(s, format="%Y-%m-%d", errors="coerce"), "a date (YYYY-MM-DD)"),
        "price": (lambda s: pd.to_numeric(s, errors="coerce"), "a number"),
        "sales_channel_id": (lambda s: pd.to_numeric(s, errors="coerce", downcast="integer"), "a small integer"),
    }
    for column, (parse, expected) in parsers.items():
        if column not in str(exc) and f"#{header.index(column)}" not in str(exc):
            continue
        text = read_table(path, {column: pa.string()}, include=[column]).column(column).to_pandas()
        parsed = parse(text)
        bad = parsed.isna() | (text.str.strip() == "")
        if column == "sales_channel_id":
            bad |= ~text.str.strip().str.fullmatch(r"-?\d{1,3}") | ~parsed.between(-128, 127)
            expected = "a small integer (-128 to 127)"
        fail_on_first(path, column, bad.to_numpy(), text, expected)
    raise DataError(f"{path}: {exc}") from exc


def line_of_text(path: Path, text: str, encoding: str = "utf-8") -> int | str:
    with open(path, "r", encoding=encoding, errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.rstrip("\r\n") == text:
                return number
    return "?"


def physical_line(path: Path, encoding: str, row: int) -> int:
    """The line (as an editor counts) where data row `row` starts, counting quoted line breaks and
    skipping blank lines as the CSV reader does. Only called to report an error."""
    with open(path, "r", encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as f:
        reader = csv.reader(f)
        records = -1  # the header is record -1
        start = 1
        for record in reader:
            if record:
                if records == row:
                    return start
                records += 1
            start = reader.line_num + 1
    return row + 2


def fail_on_bad_utf8(path: Path, header: list[str]) -> None:
    bad = first_bad_utf8(path)
    if bad is None:
        return
    with open(path, "rb") as f:  # the line around the bad byte (lines of ids and numbers are short)
        start = max(0, bad.offset - 4096)
        f.seek(start)
        window = f.read(8192)
    at = bad.offset - start
    line_start = window.rfind(b"\n", 0, at) + 1
    line_end = window.find(b"\n", at)
    line = window[line_start : line_end if line_end >= 0 else len(window)]
    index = window[line_start:at].count(b",")  # ids, dates and numbers are never quoted
    value = line.rstrip(b"\r").split(b",")[index].decode("utf-8", errors="replace")
    raise DataError(
        f"{path}, line {bad.line}, column {header[min(index, len(header) - 1)]}: byte 0x{bad.value:02X} "
        f"in {clipped(value)!r} is not UTF-8 text"
    )


def clipped(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def in_all(count: int, what: str) -> str:
    return f"; {count} {what}s in all" if count > 1 else ""
