"""Content search: text / image / mixed / more-like-this queries with filters over the content index
(content_index.py).

Queries (`ContentSearch.search`) follow HM-search: text and example vectors (query images, and the
stored vectors of "more like this" articles) are each averaged and renormalised, then mixed as
``(1 - image_weight)·text + image_weight·examples`` and renormalised. A negative text is pushed away:
``q ← normalise(q − NEGATIVE_WEIGHT·negative)``. Filters and the exclusion of the "like" articles
themselves go to FAISS as an `IDSelectorBitmap`, so k results come back whenever k articles match.
That is the visual leg (mode "visual"); a text query in mode "hybrid" (the default) is also ranked by
BM25 (lexical.py) and the rankings are fused (search.py); every result says why (`matched`, `looks_alike`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .attributes import NEIGHBOUR_SHARE, PhotoAttributes
from .browsing import Products, facet_counts
from .content_index import ContentIndex
from .csvcheck import clipped
from .errors import ArtifactError, InputError
from .images import pictures
from .lexical import FIELD_WEIGHTS as LEXICAL_FIELDS
from .lookalikes import product_codes
from .rules import SLACK
from .runtime import built_once
from .search import (
    DEPTH,
    LEXICAL_SHARE,
    LOOKS_ALIKE_TOP,
    MODES,
    NEGATIVE_WEIGHT,
    Ranking,
    lexical_ranking,
    lexical_scores,
    reciprocal_rank_fusion,
)
from .vectors import normalise

FILTER_COLUMNS = ("index_group_name", "product_group_name", "product_type_name", "colour_group_name")
FACET_COLUMNS = FILTER_COLUMNS  # counted per value for a query (`search(facets=True)`)
RESULT_COLUMNS = [
    "article_id", "score", "prod_name", "product_type_name", "product_group_name", "colour_group_name",
    "graphical_appearance_name", "index_group_name", "detail_desc", "has_image", "indexed_by",
]  # fmt: skip
SEARCH_COLUMNS = RESULT_COLUMNS + ["matched", "looks_alike", "filled", "other_colours", "available", "rules", "for_you"]  # why each result: search.py
PERSONAL_DEPTH = 96  # a shopper's search re-ranks this many of the most relevant results …
PERSONAL_WEIGHT = 0.5  # … by (1 − w)·relevance + w·affinity, relevance falling linearly with the position
GROUPS = ("product", "article")  # one result per product (its best-ranked colour), or per article


def personalised(rows: np.ndarray, taste, weight: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``rows`` (most relevant first) re-ranked by relevance (1 at the top, falling linearly) mixed with
    the shopper's affinity; (rows, mixed scores, why each suits the shopper)."""
    relevance = 1.0 - np.arange(len(rows)) / len(rows)
    affinity, why = taste.affinity(rows)
    mixed = (1.0 - weight) * relevance + weight * affinity
    order = np.lexsort((np.arange(len(rows)), -mixed))
    return rows[order], mixed[order], [why[i] for i in order]


def steered(found, scores, k: int, taste, rules, text, filters, allowed):
    """The ranked rows personalised for ``taste`` (when given), then the merchandising ``rules`` applied
    on the deeper list (what they exclude is backfilled), cut to k: (rows, scores, rules touching each,
    {row: why it suits the shopper})."""
    why = {}
    if taste is not None and len(found):
        found, scores, reasons = personalised(found, taste, PERSONAL_WEIGHT)
        why = dict(zip(found.tolist(), reasons))
    if rules is not None:
        found, scores, touched = rules.apply(found, k, query=text or "", filters=filters, allowed=allowed)
    else:
        found, scores, touched = found[:k], np.asarray(scores)[:k], [[] for _ in found[:k]]
    return found, scores, touched, why


def checked_query(text, images, like, negative, k, image_weight, mode, group):
    """The query's parts as lists and None-for-empty; InputError for what no search can answer."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if group not in GROUPS:
        raise InputError(f"group must be one of {', '.join(GROUPS)}, not {clipped(str(group))!r}")
    if isinstance(images, (bytes, str, Path)) or hasattr(images, "read") or hasattr(images, "mode"):
        images = [images]
    if isinstance(like, str):
        like = [like]
    images, like = list(images), list(like)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive whole number, not {k!r}")
    if not 0.0 <= float(image_weight) <= 1.0:
        raise InputError(f"image_weight must be between 0 and 1, not {image_weight}")
    if isinstance(text, str) and not text.strip() and (images or like):
        text = None  # an empty text box next to a photo
    if text is None and not (images or like):
        raise InputError("nothing to search for: give a text, one or more images, or catalogue article ids")
    if isinstance(negative, str) and not negative.strip():
        negative = None
    return text, images, like, negative


class ContentSearch:
    """Text / image / mixed / more-like-this queries with filters, over one catalogue and one model."""

    def __init__(self, catalog, embedder, index: ContentIndex, lexical=None):
        articles = catalog.articles
        if not np.array_equal(index.article_ids, articles["article_id"].to_numpy(dtype=str)):
            raise ArtifactError(
                f"the content index lists other articles than {catalog.root}; rebuild with "
                f"`python -m recommender build --data {catalog.root}`"
            )
        if index.dim != embedder.dim:
            raise ArtifactError(
                f"the content index holds {index.dim}-d vectors but {embedder.model_name} makes "
                f"{embedder.dim}-d ones; rebuild with `python -m recommender build --data {catalog.root}`"
            )
        self.catalog, self.embedder, self.index = catalog, embedder, index
        self.lexical = lexical  # lexical.LexicalIndex; None: visual search only
        self.availability = None  # availability.Availability (set by the engine): out of stock is left out
        self.rules = None  # rules.Rules (set by the engine): merchandising rules, applied after ranking
        self._by_image = index.indexed_by == "image"
        self._texts = {c: articles[c].to_numpy(dtype=object) for c in LEXICAL_FIELDS if c in articles.columns}
        # Plain numpy columns: taking a few rows from them is much faster than DataFrame.iloc on
        # Arrow-backed strings (pandas 3).
        self._columns = {c: index.indexed_by if c == "indexed_by" else articles[c].to_numpy(dtype=bool if c == "has_image" else object)
                         for c in RESULT_COLUMNS if c != "score"}
        self._codes = {c: pd.Categorical(articles[c].astype(str)) for c in FILTER_COLUMNS}
        self.products = Products(product_codes(catalog))
        self.index_meta = {
            **index.params,
            "by_image": int((index.indexed_by == "image").sum()),
            "by_text": int((index.indexed_by == "text").sum()),
        }

    @classmethod
    def load(cls, catalog, embedder, store) -> "ContentSearch":
        """The stored indexes (vectors and words), refused (ArtifactError) when built with another model or
        other data."""
        from .lexical import load_lexical_index
        from .precision import choose_query_precision

        artifact = store.load("content_index", {"model": embedder.fingerprint, "data": catalog.fingerprint()})
        search = cls(catalog, embedder, ContentIndex.load(artifact.path), load_lexical_index(catalog, store))
        # not *.json: the store reads those as artifact manifests
        search.query_precision = choose_query_precision(embedder, store.root / "query_precision.cache")
        return search

    def filter_values(self) -> dict[str, list[str]]:
        return {c: sorted(codes.categories) for c, codes in self._codes.items()}

    def search(
        self,
        text: str | None = None,
        images: Iterable = (),
        image_weight: float = 0.5,
        negative: str | None = None,
        like: Iterable[str] = (),
        filters: Mapping[str, str | Iterable[str]] | None = None,
        k: int = 12,
        mode: str = "hybrid",
        group: str = "product",
        facets: bool = False,
        include_unavailable: bool = False,
        taste=None,
    ) -> pd.DataFrame:
        """The k best results, with RESULT_COLUMNS plus `matched` ({field: the article's words that match
        the text}), `looks_alike` (ranked high by the visual leg), `filled` and `other_colours` (the ids of
        the product's other articles that pass the filters, best-ranked first). `mode`: hybrid (lexical
        and visual fused, search.py), visual (CLIP vectors only) or lexical (BM25 only); photos and "more
        like this" are ranked visually in every mode. `group`: "product" (one result per product_code,
        its best-ranked article; exactly k whenever k products match) or "article". `facets`: the
        frame's ``attrs["facets"]`` holds the counts per filter value for this query (`_facets`). Articles
        out of stock (`availability`) are left out unless ``include_unavailable``; `available` marks them.
        ``taste`` (a shopper's `collab.taste.Taste`): the first PERSONAL_DEPTH results are re-ranked by
        relevance and the shopper's affinity (`personalised`); `for_you` says why."""
        text, images, like, negative = checked_query(text, images, like, negative, k, image_weight, mode, group)
        if text is not None:
            text = self.embedder.validate_text(text)

        like_rows = self.catalog.article_rows(like) if like else np.empty(0, dtype=np.int64)
        allowed = self._allowed(filters)
        unavailable = None if self.availability is None or include_unavailable else self.availability.unavailable()
        excluded = like_rows if unavailable is None else np.union1d(like_rows, np.flatnonzero(unavailable))
        if len(excluded):
            allowed = np.ones(self.index.size, dtype=bool) if allowed is None else allowed
            allowed[excluded] = False

        examples = ([self.embedder.encode_images(pictures(images))] if images else []) + \
            ([self.index.reconstruct(like_rows)] if len(like_rows) else [])
        example = normalise(np.concatenate(examples).mean(axis=0)) if examples else None
        push = None
        if negative is not None:
            negative = self.embedder.validate_text(negative)
            push = self.embedder.encode_text([negative])[0]

        by_words = text is not None and mode != "visual" and self.lexical is not None
        words, text_vector, visual_query = self._query(text, negative, push, example, image_weight, by_words, mode)

        def ranked(depth: int):
            if by_words:
                return self._fused(words, text_vector, example, image_weight, push, allowed, depth)
            found, scores = self._visual(visual_query, depth, allowed)
            visual_rank = {row: rank for rank, row in enumerate(found.tolist(), 1)}
            terms = []
            if text is not None and self.lexical is not None:
                terms = [t for _, ts in self.lexical.analyzer.analyse_query(text) for t in ts]
            return found, scores, visual_rank, terms, set()

        ruled = self.rules is not None and bool(self.rules.current())
        # Deeper for rules (exclusions are backfilled) and for a shopper (the relevant set re-ranked).
        depth = max(k + SLACK if ruled else k, PERSONAL_DEPTH if taste is not None else 0)
        if group == "article":
            found, scores, visual_rank, terms, filled = ranked(depth)
        else:
            n_allowed = self.index.size if allowed is None else int(allowed.sum())
            found, scores, visual_rank, terms, filled = self.products.best_of_each(ranked, depth, n_allowed)
        found, scores, touched, why = steered(found, scores, k, taste, self.rules if ruled else None, text, filters, allowed)
        frame = self._frame(found, scores, visual_rank, set(terms), filled, allowed, grouped=group == "product")
        frame["rules"] = touched
        frame["for_you"] = [why.get(row, "") for row in found.tolist()]
        if facets:
            frame.attrs["facets"] = facets_of(self, text, words[0] if by_words else None, visual_query, filters, excluded)
        return frame

    def _query(self, text, negative, push, example, image_weight, by_words: bool, mode: str):
        """What a query is ranked by, made once whatever depth the ranking is asked for: by words, the
        text's `lexical_scores` and (hybrid) its pushed vector; else one visual query vector of the text
        and the photos. (words, text vector, visual query), None where unused."""
        if by_words:
            text_vector = self._pushed(self.embedder.encode_text([text])[0], push) if mode == "hybrid" else None
            return lexical_scores(self.lexical, text, negative), text_vector, None
        parts = [(1.0 - image_weight, self.embedder.encode_text([text])[0])] if text is not None else []
        if example is not None:
            parts.append((image_weight, example))
        return None, None, self._pushed(parts[0][1] if len(parts) == 1 else sum(w * v for w, v in parts), push)

    def _fused(self, words, vector, example, image_weight, push, allowed, k):
        """Rows and scores by reciprocal rank fusion of the lexical leg (``words``: `lexical_scores`), the
        visual leg of the text (``vector``, hybrid mode; None in lexical mode) and the photos' visual
        ranking (when there are photos); exactly k when k are allowed."""
        depth = max(k, DEPTH)
        lexical, terms = words
        text_share = 1.0 - image_weight if example is not None else 1.0
        lexical_rows = lexical_ranking(lexical, allowed, depth)
        legs = [Ranking(lexical_rows, text_share)]
        if vector is not None:
            # The words' visual leg ranks photographed articles only: an article without a photo has no
            # looks of its own (its vector is its caption-neighbours' photos), so there it would be ranked
            # on its words a second time. It is found by its words, in the lexical leg.
            photographed = self._by_image if allowed is None else allowed & self._by_image
            legs = [
                Ranking(lexical_rows, text_share * LEXICAL_SHARE),
                Ranking(self._visual(vector, depth, photographed)[0], text_share * (1 - LEXICAL_SHARE), visual=True),
            ]
        if example is not None:
            legs.append(Ranking(self._visual(self._pushed(example, push), depth, allowed)[0], image_weight, visual=True))
        fused = reciprocal_rank_fusion(legs)
        rows, scores = fused.rows[:k], fused.scores[:k]
        if len(legs) == 1:  # lexical mode, text only: BM25 scores (scaled to a best of 1), not ranks
            scores = lexical[rows].astype(float)
        n_allowed = self.index.size if allowed is None else int(allowed.sum())
        # Too few matches: hybrid fills the rest by looks; lexical answers only what matches.
        if len(rows) < min(k, n_allowed) and vector is not None:
            rest = self._visual(vector, k + len(rows), allowed)[0]
            rest = rest[~np.isin(rest, rows)][: k - len(rows)]
            rows, scores = np.concatenate([rows, rest]), np.concatenate([scores, np.zeros(len(rest))])
        # Marked: the articles no word of the text matched, there for their looks alone.
        filled = set(rows[lexical[rows] <= 0].tolist()) if vector is not None else set()
        return rows, scores, fused.visual_rank, terms, filled

    def _visual(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest allowed articles by photo vectors; caption-placed articles (no photo) compete
        with their hub offset subtracted (hub_offsets), so they rank by how near they are, not by
        being near everything."""
        with_photo = self._by_image if allowed is None else allowed & self._by_image
        rows, scores = self.index.search(vector, k, with_photo)
        rows, scores = rows[0], scores[0]
        without = ~self._by_image if allowed is None else allowed & ~self._by_image
        if without.any():
            more, more_scores = self.index.search(vector, k, without)
            more, more_scores = more[0], more_scores[0]
            keep = more >= 0
            more, more_scores = more[keep], more_scores[keep] - self.index.offsets[more[keep]]
            rows, scores = np.concatenate([rows, more]), np.concatenate([scores, more_scores])
        keep = rows >= 0
        rows, scores = rows[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order], scores[order].astype(float)

    @staticmethod
    def _pushed(query: np.ndarray, push: np.ndarray | None) -> np.ndarray:
        query = normalise(query)
        return query if push is None else normalise(query - NEGATIVE_WEIGHT * push)

    def _frame(self, rows: np.ndarray, scores: np.ndarray, visual_rank: dict, terms: set[str],
               filled: set[int], allowed: np.ndarray | None, grouped: bool) -> pd.DataFrame:
        columns = {c: values[rows] for c, values in self._columns.items()}
        frame = pd.DataFrame({"article_id": columns.pop("article_id"), "score": np.asarray(scores, dtype=float), **columns})
        records = [{c: values[row] for c, values in self._texts.items()} for row in rows.tolist()]
        frame["matched"] = [self.lexical.matched(r, terms) if self.lexical is not None else {} for r in records]
        frame["looks_alike"] = [visual_rank.get(row, LOOKS_ALIKE_TOP + 1) <= LOOKS_ALIKE_TOP and bool(self._by_image[row])
                                for row in rows.tolist()]  # fmt: skip
        frame["filled"] = [row in filled for row in rows.tolist()]  # no word matched: added by looks alone
        ids = self._columns["article_id"]
        frame["other_colours"] = [ids[self.products.others(row, allowed)].tolist() if grouped else [] for row in rows.tolist()]
        frame["available"] = np.ones(len(rows), bool) if self.availability is None else self.availability.available(rows)
        return frame

    def _allowed(self, filters) -> np.ndarray | None:
        """Boolean row mask for {column: value or values}; InputError for unknown columns or values."""
        if not filters:
            return None
        allowed = np.ones(self.index.size, dtype=bool)
        for column, values in filters.items():
            if column not in self._codes:
                raise InputError(f"cannot filter on '{clipped(str(column))}'; filters: {', '.join(FILTER_COLUMNS)}")
            values = [values] if isinstance(values, str) else list(values)
            codes = self._codes[column]
            known = set(codes.categories)
            for value in values:
                if value not in known:
                    listing = ", ".join(sorted(known)[:30]) + (", …" if len(known) > 30 else "")
                    raise InputError(f"{column} '{clipped(str(value))}' is not in the catalogue; known: {listing}")
            if values:
                allowed &= np.isin(codes.codes, codes.categories.get_indexer(values))
        return allowed

    def predict_attributes(self, image, neighbour_share: float = NEIGHBOUR_SHARE) -> dict[str, list[tuple[str, float]]]:
        """`PhotoAttributes.predict` for this catalogue and model."""
        return self.attributes.predict(image, neighbour_share)

    @built_once
    def attributes(self) -> PhotoAttributes:
        return PhotoAttributes(self.catalog, self.embedder, self.index)


def facets_of(search: "ContentSearch", text: str | None, lexical: np.ndarray | None, visual_query, filters, excluded) -> dict:
    """`browsing.facet_counts` over the word matches (``lexical``: the query's BM25 scores, a text in
    hybrid or lexical mode), else — or when no word matches — over the first DEPTH articles by looks
    (photos, "more like this", visual mode)."""
    words = lexical > 0 if lexical is not None else None
    if words is not None and not words.any():
        words, visual_query = None, search._pushed(search.embedder.encode_text([text])[0], None)

    def matching(others: np.ndarray) -> np.ndarray:
        if words is not None:
            return words & others
        found = np.zeros(search.index.size, dtype=bool)
        found[search._visual(visual_query, DEPTH, others)[0]] = True
        return found

    masks = {column: search._allowed({column: values}) for column, values in (filters or {}).items()}
    basis = "words" if words is not None else f"first {DEPTH} by looks"
    return facet_counts(search._codes, FACET_COLUMNS, matching, masks, excluded, basis)
