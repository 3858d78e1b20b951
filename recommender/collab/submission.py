"""The H&M competition's submission file: `customer_id,prediction`, 12 space-separated article ids a line."""
from __future__ import annotations

from typing import Iterable, Iterator, TextIO

import numpy as np

from ..errors import InputError
from ..progress import Progress
from ..runtime import forked_map
from .methods import BLEND_WEIGHTS, CANDIDATE_METHODS
from .model import CollabModel
from .topk import top_scores

HEADER = "customer_id,prediction"


def prediction_rows(model: CollabModel, code: int, k: int) -> np.ndarray:
    """k article rows for a customer code (-1: not in the data) by the served method (a customer the data
    lacks: the blend's list for someone without history). Bought articles stay in: the competition counts
    repurchases as hits."""
    method = model.serving_method()
    if method == "popular last week":
        return top_scores(model.state.stats.week_sales.astype(np.float32), k)[0]
    if code >= 0 and method in CANDIDATE_METHODS:
        return model.ranked(code, k, exclude_bought=False, method=method)[0]
    return model.blended(code, k, exclude_bought=False, method=method if method in BLEND_WEIGHTS else "blend")


BLOCK = 1_024  # ids read, ranked and written together (ranked candidates.BLOCK at a time)


def submission_lines(model: CollabModel, customer_ids: Iterable[str], k: int = 12,
                     workers: int | None = None) -> Iterator[str]:
    """The header, then one line per customer id, in the ids' order, in blocks of customers (constant
    memory). A well-formed id that the data lacks gets the predictions of a customer without history.
    Blocks are independent: ``workers`` processes (default: one a core) rank them side by side."""
    yield HEADER
    if model.serving_method() in CANDIDATE_METHODS:  # the candidate tables, once, before the workers fork: they share them
        model.window.prepare()
    for lines in forked_map(lambda ids: list(_block_lines(model, ids, k)), _batches(customer_ids, BLOCK), workers):
        yield from lines


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _code(model: CollabModel, customer_id: str) -> int:
    """The code of an id the data lacks: -1 when it is well-formed, else the catalogue's InputError."""
    try:
        return model.catalog.customer_code(customer_id)
    except InputError:
        if len(str(customer_id).strip()) != 64:
            raise
        return -1


def _block_lines(model: CollabModel, ids: list[str], k: int) -> Iterator[str]:
    codes = model.catalog.customer_codes(ids)  # one lookup a block, not one a customer
    block = [(cid, int(code) if code >= 0 else _code(model, cid)) for cid, code in zip(ids, codes)]
    article_ids = model.catalog.articles["article_id"].to_numpy()
    method = model.serving_method()
    ranked = [code for _, code in block if code >= 0] if method in CANDIDATE_METHODS else []
    rows = dict(zip(ranked, model.ranked_block(ranked, k, False, (method,))[method])) if ranked else {}
    for customer_id, code in block:
        picks = rows[code] if code in rows else prediction_rows(model, code, k)
        yield f"{customer_id},{' '.join(article_ids[picks])}"


def write_submission(model: CollabModel, customer_ids: Iterable[str], out: TextIO, k: int = 12,
                     workers: int | None = None, progress: Progress | None = None, total: int | None = None) -> int:
    """Stream the file to ``out``; returns the number of customers written (``total``: how many ids there
    are, for ``progress``)."""
    written = -1
    for written, line in enumerate(submission_lines(model, customer_ids, k, workers)):
        out.write(line + "\n")
        if progress and total and written % BLOCK == 0:
            progress(written / total, f"{written:,} of {total:,} customers")
    if progress and total:
        progress(1.0, f"{max(written, 0):,} customers")
    return written
