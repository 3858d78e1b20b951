"""Read and validate a catalogue folder in the H&M Kaggle format.

    articles.csv             required; article_id (10-digit, zero-padded), product metadata
    customers.csv            optional; customer_id (64 hex) and profile columns
    transactions_train.csv   optional (search-only use needs none); t_dat, customer_id, article_id, price, sales_channel_id
    images/<first 3 digits>/<article_id>.jpg   optional per article

Every problem raises `DataError` naming the file, line, column and what is wrong; a `Catalog` is only
returned complete. Transactions are read with pyarrow (dictionary-encoded ids, so 31.8M rows stay
compact), stored as integer codes, and cached as parquet so the second load skips the CSV.

Text files that are not UTF-8 are read when their encoding can be told (see textfiles.py;
`Catalog.notices` says so). Transaction dates after today, or more than a year after almost all
others, are refused: one stray row must not become the "now" that recommendations use.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .catalog_cache import read_cache, write_cache
from .csvcheck import (
    clipped,
    explain_conversion_error,
    fail_on_bad_utf8,
    fail_on_code,
    fail_on_first,
    fail_on_null,
    first_line_with_code,
    header_of,
    in_all,
    physical_line,
    read_table,
    require_columns,
)
from .customer_index import CustomerIndex, fixed_width_keys
from .digests import DigestCache
from .errors import DataError, InputError
from .store import ArtifactStore
from .textfiles import detect_encoding

ARTICLES_FILE = "articles.csv"
CUSTOMERS_FILE = "customers.csv"
TRANSACTIONS_FILE = "transactions_train.csv"
IMAGES_DIR = "images"

ARTICLE_COLUMNS = [
    "article_id", "product_code", "prod_name", "product_type_no", "product_type_name",
    "product_group_name", "graphical_appearance_no", "graphical_appearance_name", "colour_group_code",
    "colour_group_name", "perceived_colour_value_id", "perceived_colour_value_name",
    "perceived_colour_master_id", "perceived_colour_master_name", "department_no", "department_name",
    "index_code", "index_name", "index_group_no", "index_group_name", "section_no", "section_name",
    "garment_group_no", "garment_group_name", "detail_desc",
]  # fmt: skip
# What search, filters and captions need; the other Kaggle columns are kept when present.
REQUIRED_ARTICLE_COLUMNS = [
    "article_id", "prod_name", "product_type_name", "product_group_name",
    "graphical_appearance_name", "colour_group_name", "index_group_name", "detail_desc",
]  # fmt: skip
CUSTOMER_COLUMNS = ["customer_id", "FN", "Active", "club_member_status", "fashion_news_frequency", "age", "postal_code"]
TRANSACTION_COLUMNS = ["t_dat", "customer_id", "article_id", "price", "sales_channel_id"]
# Zero-padded code columns: Kaggle's raw CSV drops the leading zeros, the sample keeps them.
PADDED_COLUMNS = {"article_id": 10, "product_code": 7, "colour_group_code": 2}

ARTICLE_ID = re.compile(r"^\d{1,10}$")
CUSTOMER_ID = re.compile(r"^[0-9a-f]{64}$")
# A date is refused when it lies after today, or more than this after almost all others.
MAX_DAYS_AFTER_THE_REST = 365


def normalize_article_id(value: object) -> str:
    """'108775015' or 108775015 → '0108775015'; InputError for anything that is not an article id."""
    text = str(value).strip()
    if not ARTICLE_ID.match(text):
        raise InputError(f"{clipped(text)!r} is not an article id (up to 10 digits, e.g. 0108775015)")
    return text.zfill(10)


@dataclass
class Catalog:
    root: Path
    articles: pd.DataFrame
    customers: pd.DataFrame | None
    transactions: pd.DataFrame | None
    customer_ids: np.ndarray
    data_fingerprint: str
    notices: list[str] = field(default_factory=list)  # e.g. a file read as Windows-1252, for the user
    # Content digests: {"articles.csv": …, "customers.csv": …, "transactions_train.csv": …} and
    # {article_id: digest of its photo}; what proportional rebuilds compare.
    file_digests: dict = field(default_factory=dict)
    image_digests: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """``customer_ids`` may come as an Arrow array (the parquet cache): its keys are then made without
        the GIL, and only the ids themselves become Python strings."""
        self._article_index = pd.Index(self.articles["article_id"])
        self._customers = CustomerIndex(fixed_width_keys(self.customer_ids))
        if not isinstance(self.customer_ids, np.ndarray):
            self.customer_ids = np.asarray(self.customer_ids.to_numpy(), dtype=object)

    @property
    def customer_keys(self) -> np.ndarray:
        """The customer ids as "S64" bytes, in code order."""
        return self._customers.keys

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def now(self) -> np.datetime64 | None:
        """The latest transaction date (validated: never one stray future row), None without transactions.
        What "recent" and "trending" are measured from."""
        if self.transactions is None or not len(self.transactions):
            return None
        return self.transactions["t_dat"].to_numpy()[-1]

    def article_row(self, article_id: object) -> int:
        aid = normalize_article_id(article_id)
        row = self._article_index.get_indexer([aid])[0]
        if row < 0:
            raise InputError(f"article {aid} is not in the catalogue ({self.root / ARTICLES_FILE})")
        return int(row)

    def article_rows(self, article_ids) -> np.ndarray:
        return np.array([self.article_row(a) for a in article_ids], dtype=np.int64)

    def customer_code(self, customer_id: object) -> int:
        cid = _customer_key(customer_id)
        if not CUSTOMER_ID.match(cid):
            raise InputError(
                f"{clipped(str(customer_id))!r} is not a customer id (64 hexadecimal characters)"
            )
        code = self._customers.codes(np.array([cid.encode()], dtype="S64"))[0]
        if code < 0:
            raise InputError(f"customer {cid[:12]}… is not in this dataset ({self.root})")
        return int(code)

    def customer_codes(self, customer_ids: Sequence[object]) -> np.ndarray:
        """Codes of many ids in one lookup: -1 for an id the data lacks or that is not an id."""
        keys = [_customer_key(c) for c in customer_ids]
        codes = np.full(len(keys), -1, dtype=np.int64)
        valid = np.array([bool(CUSTOMER_ID.match(k)) for k in keys], dtype=bool)
        if valid.any():
            codes[valid] = self._customers.codes(np.array([k.encode() for k, ok in zip(keys, valid) if ok], dtype="S64"))
        return codes

    def customer_codes_of_column(self, column) -> np.ndarray:
        """Codes of a column of ids as read and validated (customers.csv's): -1 where the data lacks one."""
        return self._customers.codes(fixed_width_keys(column))

    def image_path(self, article_id: object) -> Path | None:
        row = self.article_row(article_id)
        if not self.articles["has_image"].iat[row]:
            return None
        aid = self.articles["article_id"].iat[row]
        return self.root / IMAGES_DIR / aid[:3] / f"{aid}.jpg"

    def fingerprint(self) -> str:
        """Identifies the data the artifacts were built from (the contents of its files and photos)."""
        return self.data_fingerprint


def load_catalog(root: str | Path, cache_dir: str | Path | None = None) -> Catalog:
    """Read and validate the folder ``root``; with ``cache_dir`` (an artifacts folder), reuse/refresh a parquet copy."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    if not (root / ARTICLES_FILE).is_file():
        raise DataError(f"{root / ARTICLES_FILE} is missing: a catalogue needs at least articles.csv")
    digests = DigestCache(root, Path(cache_dir) if cache_dir else None)
    image_digests = _scan_images(root / IMAGES_DIR, digests)
    image_ids = set(image_digests)
    file_digests = {name: digests.digest(name) for name in (ARTICLES_FILE, CUSTOMERS_FILE, TRANSACTIONS_FILE)
                    if (root / name).is_file()}
    digests.save()
    fingerprint = _fingerprint(file_digests, image_digests)

    cache = ArtifactStore(cache_dir) if cache_dir else None
    relabelled = []
    if cache:  # artifacts built when fingerprints hashed the folder's path: the same data, so relabelled
        relabelled = cache.relabel_data(_path_fingerprint(root, file_digests, image_digests), fingerprint)
    tables = read_cache(cache, fingerprint) if cache else None
    if tables is None:
        tables = _read_csvs(root)
        if cache:
            write_cache(cache, fingerprint, tables)
    articles, customers, transactions, customer_ids, notices = tables
    if cache and relabelled:
        notices = notices + [f"artifacts of an earlier version ({', '.join(relabelled)}) now match their data by "
                             "content, not by the folder's path: they were kept, not rebuilt"]
    articles["has_image"] = articles["article_id"].isin(image_ids).to_numpy()
    return Catalog(root, articles, customers, transactions, customer_ids, fingerprint, notices,
                   file_digests, image_digests)


# --- reading -------------------------------------------------------------------------------------


def _read_csvs(root: Path):
    notices: list[str] = []
    articles = _read_articles(root / ARTICLES_FILE, notices)
    customers = None
    if (root / CUSTOMERS_FILE).is_file():
        customers = _read_customers(root / CUSTOMERS_FILE, notices)
    transactions, customer_ids = None, np.array([], dtype=object)
    if (root / TRANSACTIONS_FILE).is_file():
        transactions, customer_ids = read_transactions(root / TRANSACTIONS_FILE, articles)
    if customers is not None:
        # Customers without purchases still get a code, after those with purchases.
        extra = pd.Index(customers["customer_id"]).difference(pd.Index(customer_ids), sort=False)
        customer_ids = np.concatenate([customer_ids, extra.to_numpy(dtype=object)])
    return articles, customers, transactions, customer_ids, notices


def _encoding(path: Path, notices: list[str]) -> str:
    encoding = detect_encoding(path)
    if encoding.notice:
        notices.append(encoding.notice)
    return encoding.name


def _read_articles(path: Path, notices: list[str]) -> pd.DataFrame:
    encoding = _encoding(path, notices)
    header = header_of(path, encoding)
    require_columns(path, header, REQUIRED_ARTICLE_COLUMNS)
    # Descriptions may hold quoted line breaks: parsed as such, and lines counted as an editor does.
    table = read_table(path, {name: pa.string() for name in header}, encoding=encoding, newlines_in_values=True)
    frame = table.to_pandas()
    ids = frame["article_id"].fillna("").str.strip()
    fail_on_first(path, "article_id", ~ids.str.fullmatch(r"\d{1,10}"), frame["article_id"],
                   "an article id of up to 10 digits", line_of=lambda row: physical_line(path, encoding, row))
    for column, width in PADDED_COLUMNS.items():
        if column in frame:  # codes like -1 ("unknown" in the real data) are kept as they are
            values = frame[column].fillna("").str.strip()
            frame[column] = values.where(~values.str.fullmatch(r"\d+"), values.str.zfill(width))
    duplicated = frame["article_id"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DataError(
            f"{path}, line {physical_line(path, encoding, row)}, column article_id: "
            f"article {frame['article_id'].iat[row]} appears twice"
        )
    for column in frame.columns:
        if column.endswith("_name") or column.endswith("_desc") or column == "prod_name":
            frame[column] = frame[column].fillna("")
    return frame.reset_index(drop=True)


def _read_customers(path: Path, notices: list[str]) -> pd.DataFrame:
    encoding = _encoding(path, notices)
    header = header_of(path, encoding)
    require_columns(path, header, ["customer_id"])
    frame = read_table(path, {name: pa.string() for name in header}, encoding=encoding).to_pandas()
    ids = frame["customer_id"].fillna("").str.strip().str.lower()
    fail_on_first(path, "customer_id", ~ids.str.fullmatch(r"[0-9a-f]{64}"), frame["customer_id"],
                   "a customer id of 64 hexadecimal characters", line_of=lambda row: physical_line(path, encoding, row))
    frame["customer_id"] = ids
    if "age" in frame:
        frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    return frame


def read_transactions(path: Path, articles: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """A transactions CSV → (frame with integer codes, customer ids of those codes); DataError if malformed."""
    header = header_of(path)
    require_columns(path, header, TRANSACTION_COLUMNS)
    types = {
        "t_dat": pa.date32(),
        "customer_id": pa.dictionary(pa.int32(), pa.string()),
        "article_id": pa.dictionary(pa.int32(), pa.string()),
        "price": pa.float32(),
        "sales_channel_id": pa.int8(),
    }
    try:
        table = read_table(path, types, include=TRANSACTION_COLUMNS)
    except pa.ArrowInvalid as exc:
        fail_on_bad_utf8(path, header)  # ids, dates and numbers are ASCII: any other byte is a damaged value
        explain_conversion_error(path, header, types, exc)
        raise
    if table.num_rows == 0:
        empty = pd.DataFrame(
            {
                "t_dat": pd.Series([], dtype="datetime64[ns]"),
                "customer": pd.Series([], dtype=np.int32),
                "article": pd.Series([], dtype=np.int32),
                "price": pd.Series([], dtype=np.float32),
                "sales_channel_id": pd.Series([], dtype=np.int8),
            }
        )
        return empty, np.array([], dtype=object)
    table = table.unify_dictionaries().combine_chunks()

    customer_ids, customer_codes = _customer_codes(path, header, table.column("customer_id").chunk(0))
    article_col = table.column("article_id").chunk(0)
    rows_of_dictionary = _article_rows(path, header, article_col, articles)
    for name in ("t_dat", "price", "sales_channel_id"):
        column = table.column(name)
        if column.null_count:
            fail_on_null(path, header, name, column.chunk(0))
    prices = table.column("price").to_numpy()
    fail_on_first(path, "price", ~np.isfinite(prices), pd.Series(prices), "a number (a price)")

    frame = pd.DataFrame(
        {
            "t_dat": table.column("t_dat").to_numpy().astype("datetime64[ns]"),
            "customer": customer_codes.astype(np.int32),
            "article": rows_of_dictionary[article_col.indices.to_numpy()].astype(np.int32),
            "price": prices,
            "sales_channel_id": table.column("sales_channel_id").to_numpy(),
        }
    )
    _refuse_stray_dates(path, frame["t_dat"].to_numpy())
    if not frame["t_dat"].is_monotonic_increasing:
        frame = frame.sort_values("t_dat", kind="stable", ignore_index=True)
    return frame, np.asarray(customer_ids, dtype=object)


def _customer_codes(path: Path, header: list[str], customers: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct customer ids, each row's code) of a dictionary-encoded customer_id column."""
    customer_ids = pc.utf8_lower(pc.utf8_trim_whitespace(customers.dictionary)).to_numpy(zero_copy_only=False)
    bad = ~pd.Series(customer_ids).str.fullmatch(r"[0-9a-f]{64}").to_numpy()
    if bad.any():
        fail_on_code(path, header, "customer_id", customers, np.flatnonzero(bad)[0],
                     "a customer id of 64 hexadecimal characters")
    if pc.sum(pc.is_null(customers)).as_py():
        fail_on_null(path, header, "customer_id", customers)
    if len(set(customer_ids)) != len(customer_ids):  # same id written in two spellings
        uniques, inverse = np.unique(customer_ids, return_inverse=True)
        return uniques, inverse[customers.indices.to_numpy()]
    return customer_ids, customers.indices.to_numpy()


def _article_rows(path: Path, header: list[str], article_col: pa.DictionaryArray, articles: pd.DataFrame) -> np.ndarray:
    """The row in articles.csv of each distinct article id of a dictionary-encoded article_id column."""
    raw_ids = pd.Series(article_col.dictionary.to_numpy(zero_copy_only=False)).str.strip()
    malformed = ~raw_ids.str.fullmatch(r"\d{1,10}").to_numpy()
    if malformed.any():
        fail_on_code(path, header, "article_id", article_col, np.flatnonzero(malformed)[0],
                     "an article id of up to 10 digits")
    if pc.sum(pc.is_null(article_col)).as_py():
        fail_on_null(path, header, "article_id", article_col)
    rows = pd.Index(articles["article_id"]).get_indexer(raw_ids.str.zfill(10))
    unknown = rows < 0
    if unknown.any():
        code = np.flatnonzero(unknown)[0]
        raise DataError(
            f"{path}, line {first_line_with_code(article_col, code)}, column article_id: article "
            f"{raw_ids.iat[code].zfill(10)} is not in {ARTICLES_FILE} ({int(unknown.sum())} unknown article id(s) in all)"
        )
    return rows


def _refuse_stray_dates(path: Path, dates: np.ndarray) -> None:
    """DataError for a date after today, or more than MAX_DAYS_AFTER_THE_REST after almost all others
    (the 99.9th percentile, and never less than the second-latest date): such a row would become "now"."""
    today = date.today()
    future = dates > np.datetime64(today, "D") + np.timedelta64(1, "D")  # a day's grace for time zones
    stray = np.zeros_like(future)
    k = max(2, math.ceil(len(dates) / 1000))
    if len(dates) > k:
        typical_end = np.partition(dates, len(dates) - k)[len(dates) - k]
        stray = dates > typical_end + np.timedelta64(MAX_DAYS_AFTER_THE_REST, "D")
    bad = future | stray
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        reason = (f"is in the future (today is {today})" if future[row] else
                  f"is more than {MAX_DAYS_AFTER_THE_REST} days after almost all other transactions "
                  f"(which end by {str(typical_end)[:10]})")  # fmt: skip
        raise DataError(
            f"{path}, line {row + 2}, column t_dat: {str(dates[row])[:10]} {reason}; correct or remove "
            f"the row{in_all(int(bad.sum()), 'such row')}"
        )


def _customer_key(customer_id: object) -> str:
    """A customer id as the data keeps it: trimmed, lower-case."""
    return str(customer_id).strip().lower()


# --- images and fingerprint ------------------------------------------------------------------------


def _scan_images(images_dir: Path, digests: DigestCache) -> dict[str, str]:
    """{article_id: content digest} of the non-empty photos under images/."""
    found: dict[str, str] = {}
    if not images_dir.is_dir():
        return found
    for sub in sorted(os.scandir(images_dir), key=lambda e: e.name):
        if not sub.is_dir():
            continue
        for entry in sorted(os.scandir(sub.path), key=lambda e: e.name):
            name = entry.name
            if name.endswith(".jpg") and ARTICLE_ID.match(name[:-4]):
                stat = entry.stat()
                if stat.st_size == 0:
                    continue  # an empty file is a missing image, not a broken catalogue
                found[name[:-4].zfill(10)] = digests.digest(f"{IMAGES_DIR}/{sub.name}/{name}", stat)
    return found


def _fingerprint(file_digests: dict[str, str], image_digests: dict[str, str]) -> str:
    """By content only: a `touch`, a copy or a move of the folder changes nothing."""
    return f"{_content_digest(hashlib.sha256(), file_digests, image_digests)} ({len(image_digests)} images)"


def _path_fingerprint(root: Path, file_digests: dict[str, str], image_digests: dict[str, str]) -> str:
    """The fingerprint of earlier versions, which also hashed the folder's path (read to upgrade them)."""
    digest = _content_digest(hashlib.sha256(str(root).encode()), file_digests, image_digests)
    return f"{root.name}@{digest} ({len(image_digests)} images)"


def _content_digest(digest, file_digests: dict[str, str], image_digests: dict[str, str]) -> str:
    for name, value in sorted(file_digests.items()):
        digest.update(f"{name}:{value}\n".encode())
    for article_id, value in sorted(image_digests.items()):
        digest.update(f"{article_id}:{value}\n".encode())
    return digest.hexdigest()[:12]
