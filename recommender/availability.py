"""What can be sold now: an optional `availability.csv` in the data folder, one line an article —
`article_id,in_stock` (1/0, true/false, yes/no) or `article_id,stock` (a count; 0 is out of stock). Articles
the file does not list are available; without the file nothing is excluded.

The file is read again when it changes (`watched.WatchedFile`: no rebuild). A file with a bad line is
refused with one message naming the line and the problem, and the last good one stays in force.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .catalog import Catalog, normalize_article_id
from .csvcheck import clipped
from .errors import DataError, InputError
from .textfiles import decode_text
from .watched import WatchedFile

FILE = "availability.csv"
YES, NO = {"1", "true", "yes", "y"}, {"0", "false", "no", "n"}
MAX_BYTES = 64 * 1024 * 1024  # ~30 bytes a line: far above any catalogue's articles


class Availability:
    """The unavailable articles of ``catalog`` per its folder's availability.csv (None: nothing excluded)."""

    def __init__(self, folder: Path, catalog: Catalog):
        self._file = WatchedFile(Path(folder) / FILE, lambda path: read_availability(path, catalog), None)

    @property
    def problem(self) -> str | None:
        """Why the file on disk is not the one in force (None: it is)."""
        return self._file.problem

    def unavailable(self) -> np.ndarray | None:
        """bool over catalogue rows, True where the article is out of stock; None without a file."""
        return self._file.value()

    def available(self, rows: np.ndarray) -> np.ndarray:
        """bool per row: in stock (every row when there is no file)."""
        unavailable = self.unavailable()
        return np.ones(len(rows), bool) if unavailable is None else ~unavailable[np.asarray(rows, np.int64)]


def read_availability(path: Path, catalog: Catalog) -> np.ndarray:
    """The out-of-stock mask from ``path``; DataError naming the first bad line."""
    name = path.name
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{name} is larger than {MAX_BYTES // 2**20} MB: one line an article is far less")
    text, _ = decode_text(path.read_bytes(), name)
    lines = csv.reader(io.StringIO(text))
    header = [column.strip().lower() for column in next(lines, [])]
    if len(header) != 2 or header[0] != "article_id" or header[1] not in ("in_stock", "stock"):
        raise DataError(f"{name} line 1: the header must be article_id,in_stock or article_id,stock, "
                        f"not {clipped(','.join(header))!r}")
    counted = header[1] == "stock"
    numbers, ids, out = [], [], []
    for number, fields in enumerate(lines, start=2):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != 2:
            raise DataError(f"{name} line {number}: {len(fields)} values, expected 2 (article_id,{header[1]})")
        article_id, value = fields[0].strip(), fields[1].strip().lower()
        try:
            ids.append(normalize_article_id(article_id))
        except InputError:
            raise DataError(f"{name} line {number}: {clipped(article_id)!r} is not an article id") from None
        if counted:
            if not value.isdigit():
                raise DataError(f"{name} line {number}: stock {clipped(value)!r} is not a whole number of 0 or more")
            out.append(int(value) == 0)
        elif value in YES or value in NO:
            out.append(value in NO)
        else:
            raise DataError(f"{name} line {number}: in_stock {clipped(value)!r} is not one of 1/0, true/false, yes/no")
        numbers.append(number)
    rows = pd.Index(catalog.articles["article_id"]).get_indexer(ids)  # one look-up for the file
    if (rows < 0).any():
        first = int(np.flatnonzero(rows < 0)[0])
        raise DataError(f"{name} line {numbers[first]}: article {ids[first]!r} is not in the catalogue")
    unavailable = np.zeros(len(catalog.articles), bool)
    unavailable[rows] = out
    return unavailable
