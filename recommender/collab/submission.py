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


def submission_lines(model: CollabModel, customer_ids: Iterable[str], k: int = 12) -> Iterator[str]:
    """The header, then one line per customer id, computed one customer at a time (constant memory).
    A well-formed id that the data lacks gets the predictions of a customer without history."""
    article_ids = model.catalog.articles["article_id"].to_numpy()
    yield HEADER
    for customer_id in customer_ids:
        try:
            code = model.catalog.customer_code(customer_id)
        except InputError:
            if len(str(customer_id).strip()) != 64:
                raise
            code = -1
        yield f"{customer_id},{' '.join(article_ids[prediction_rows(model, code, k)])}"


def write_submission(model: CollabModel, customer_ids: Iterable[str], out: TextIO, k: int = 12) -> int:
    """Stream the file to ``out``; returns the number of customers written."""
    written = -1
    for written, line in enumerate(submission_lines(model, customer_ids, k)):
        out.write(line + "\n")
    return written
