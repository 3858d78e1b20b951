"""Caption text for an article, made from its catalogue metadata.

One function shared by CLIP training (the image–caption pairs), the text embeddings of articles that
have no image, and evaluation, so that all three describe an article the same way.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd

# Most telling first: a short model context (the tiny config's is 32 tokens) cuts from the end.
CAPTION_FIELDS = (
    "colour_group_name",
    "product_type_name",
    "graphical_appearance_name",
    "prod_name",
    "index_group_name",
    "detail_desc",
)
# Placeholder values in the H&M data that describe nothing.
_EMPTY_VALUES = {"", "unknown", "undefined", "nan", "none"}


def _clean(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = " ".join(str(value).split())
    return "" if text.lower() in _EMPTY_VALUES else text


def caption(row: Mapping, fields: Collection[str] = CAPTION_FIELDS) -> str:
    """E.g. "Black Trousers, Solid, Slim fit, Ladieswear. Trousers in woven fabric with a zip fly."

    `row` is any mapping with the Kaggle article columns (a DataFrame row, a dict); missing, NaN and
    placeholder values are left out. `fields` picks a subset (training draws random subsets so the
    model also sees captions as short as a typed query).
    """
    value = {f: _clean(row.get(f)) for f in CAPTION_FIELDS if f in fields}
    head = " ".join(v for f in ("colour_group_name", "product_type_name") if (v := value.get(f)))
    attributes = [
        v for f in ("graphical_appearance_name", "prod_name", "index_group_name") if (v := value.get(f))
    ]
    summary = ", ".join(part for part in [head, *attributes] if part)
    return ". ".join(part for part in (summary, value.get("detail_desc")) if part)
