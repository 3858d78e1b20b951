"""Writing the demo dataset: CSV files in the exact Kaggle format, published into place atomically with
a `demo.json` manifest."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError, InputError
from .simulation import Transactions
from .vocabulary import DAYS, MANIFEST, PRICE_SCALE, TRANSACTIONS_HEADER, Progress

# --- writing -------------------------------------------------------------------------------------------

ROWS_PER_WRITE = 1_000_000  # rows formatted and written at a time


def _fixed_width(texts: np.ndarray, width: int) -> np.ndarray:
    """ASCII strings of one length as a (n, width) byte matrix, for assembling CSV lines with numpy."""
    return np.frombuffer("".join(texts).encode("ascii"), np.uint8).reshape(len(texts), width)


def price_text(cents: int) -> str:
    """Kaggle's price spelling: shelf price / 590, truncated to 16 decimals (24.99 -> 0.0423559322033898)."""
    value = (Decimal(int(cents)) / (100 * PRICE_SCALE)).quantize(Decimal("1e-16"), rounding=ROUND_DOWN)
    return format(value, "f").rstrip("0")


def write_transactions(path: Path, tx: Transactions, customer_ids: np.ndarray, article_ids: np.ndarray,
                        report: Progress) -> None:
    """transactions_train.csv sorted by date, assembled as byte matrices (31.8M rows in seconds)."""
    dates = _fixed_width(DAYS.strftime("%Y-%m-%d").to_numpy(), 10)
    customers = _fixed_width(customer_ids, 64)
    articles = _fixed_width(article_ids, 10)
    price_width = 18  # "0." + 16 decimals; shorter spellings are padded with zero bytes, dropped below
    prices = np.zeros((int(tx.price_cents.max(initial=0)) + 1, price_width), np.uint8)
    for cents in np.unique(tx.price_cents):
        text = price_text(cents).encode("ascii")
        prices[cents, : len(text)] = np.frombuffer(text, np.uint8)
    order = np.argsort(tx.day, kind="stable")
    fields = [(dates, tx.day), (customers, tx.customer), (articles, tx.article), (prices, tx.price_cents)]
    line_width = sum(table.shape[1] + 1 for table, _ in fields) + 2
    with open(path, "wb") as f:
        f.write(TRANSACTIONS_HEADER)
        for start in range(0, len(order), ROWS_PER_WRITE):
            rows = order[start: start + ROWS_PER_WRITE]
            line = np.full((len(rows), line_width), ord(","), np.uint8)
            column = 0
            for table, codes in fields:
                line[:, column: column + table.shape[1]] = table[codes[rows]]
                column += table.shape[1] + 1
            line[:, column] = ord("0") + tx.channel[rows]
            line[:, column + 1] = ord("\n")
            flat = line.reshape(-1)
            f.write(flat[flat != 0].tobytes())
            report(min(1.0, (start + len(rows)) / len(order)), "writing transactions_train.csv")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def publish(out_dir: Path, manifest: dict, write: Callable[[Path], None]) -> Path:
    """Write into a temporary sibling folder, then rename it into place: never a half-written dataset."""
    out_dir = Path(out_dir).expanduser().resolve()
    if _manifest(out_dir) == manifest:
        return out_dir
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and _manifest(out_dir) is None)):
        raise DataError(f"{out_dir} already exists and is not a generated demo dataset (it has no {MANIFEST}); "
                        "choose another output folder or remove it")  # fmt: skip
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old = None
    try:
        tmp.chmod(0o755)
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if _manifest(out_dir) == manifest:  # another process published the same dataset meanwhile
            return out_dir
        if out_dir.exists():
            old = out_dir.with_name(f"{tmp.name}.old")
            out_dir.rename(old)
        os.rename(tmp, out_dir)
    except OSError:
        if _manifest(out_dir) != manifest:  # not another process having just published the same dataset
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return out_dir


def _manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def check_options(seed: int, **sizes: int) -> None:
    def whole(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not whole(seed) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    for name, value in sizes.items():
        if not whole(value) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}")
    if not 20 <= sizes["n_articles"] <= 1_000_000:
        raise InputError(f"n_articles must be between 20 and 1,000,000 (7-digit product codes), "
                         f"got {sizes['n_articles']}")


def stages(progress: Progress | None, widths: dict[str, float]) -> Callable[[str], Progress]:
    """Map each stage's own 0..1 progress onto its slice of the overall bar."""
    starts = dict(zip(widths, np.cumsum([0.0, *widths.values()])))

    def stage(name: str) -> Progress:
        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress(float(starts[name] + widths[name] * fraction), message)

        return report

    return stage
