"""The H&M competition's submission file: `customer_id,prediction`, 12 space-separated article ids a line."""
from __future__ import annotations

from typing import Iterable, Iterator, TextIO

import numpy as np

from ..errors import InputError
from .model import CollabModel, Profile

HEADER = "customer_id,prediction"


def prediction_rows(model: CollabModel, code: int, k: int) -> np.ndarray:
    """k article rows for a customer code (-1: not in the data): the ranker when trained, else the blend.
    Bought articles stay in: the competition counts repurchases as hits."""
    if code >= 0 and model.ranker is not None:
        return model.ranked(code, k, exclude_bought=False)[0]
    profile = model.profile(code) if code >= 0 else Profile.empty()
    return model.rank(profile, k, exclude_bought=False)[0]


BLOCK = 1_024  # ids read and written together (ranked candidates.BLOCK at a time)


def submission_lines(model: CollabModel, customer_ids: Iterable[str], k: int = 12) -> Iterator[str]:
    """The header, then one line per customer id, in blocks of customers (constant memory).
    A well-formed id that the data lacks gets the predictions of a customer without history."""
    yield HEADER
    for ids in _batches(customer_ids, BLOCK):
        codes = model.catalog.customer_codes(ids)  # one lookup a block, not one a customer
        yield from _block_lines(model, [(cid, int(code) if code >= 0 else _code(model, cid)) for cid, code in zip(ids, codes)], k)


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


def _block_lines(model: CollabModel, block: list[tuple[str, int]], k: int) -> Iterator[str]:
    article_ids = model.catalog.articles["article_id"].to_numpy()
    ranked = [code for _, code in block if code >= 0] if model.ranker is not None else []
    rows = dict(zip(ranked, model.ranked_block(ranked, k, exclude_bought=False))) if ranked else {}
    for customer_id, code in block:
        picks = rows[code] if code in rows else prediction_rows(model, code, k)
        yield f"{customer_id},{' '.join(article_ids[picks])}"


def write_submission(model: CollabModel, customer_ids: Iterable[str], out: TextIO, k: int = 12) -> int:
    """Stream the file to ``out``; returns the number of customers written."""
    written = -1
    for written, line in enumerate(submission_lines(model, customer_ids, k)):
        out.write(line + "\n")
    return written
