"""Request and response bodies of the HTTP API (they are also its OpenAPI schema).

Result rows allow extra fields: columns the engine adds later pass through unchanged.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 100
MAX_IDS = 100


class Mode(str, Enum):
    hybrid = "hybrid"
    visual = "visual"
    lexical = "lexical"


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable kind of error, e.g. not_found")
    message: str = Field(description="what is wrong, for people")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str


class Ready(Health):
    build_id: str = Field(description="a short id of the artifact versions served (changes with each build)")
    built_at: str | None = Field(None, description="when the newest of those artifacts was built")
    fallbacks: list[str] = Field(default_factory=list, description="what is served in place of a full build's "
                                                                    "parts (e.g. the blend instead of the ranker)")


class Status(BaseModel):
    """What `Engine.status()` reports, less server paths (further fields of newer engines pass through)."""

    model_config = ConfigDict(extra="allow")

    dataset: str
    model: str
    pretrained: str | None = None
    articles: int
    indexed_by_image: int | None = None
    indexed_by_text: int | None = None
    customers: int | None = None
    notices: list[str]
    search_modes: list[Mode] = Field(description="modes this engine answers (`mode` of the search calls)")
    filters: dict[str, list[str]] = Field(description="filterable columns and their values (`filter=column:value`)")


class ArticleSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    article_id: str
    prod_name: str | None = None
    product_type_name: str | None = None
    colour_group_name: str | None = None
    has_image: bool | None = None
    image_url: str | None = Field(None, description="GET this for the photo; null when the article has none")


class SearchHit(ArticleSummary):
    score: float
    indexed_by: str | None = Field(None, description="image, or text for articles placed by their caption")
    matched: Any = Field(None, description="what made it match (hybrid / lexical engines)")
    filled: bool = Field(False, description="no word matched: a hybrid search added it by its looks, since "
                                            "fewer than k articles match the words (lexical searches answer fewer)")
    other_colours: list[str] = Field([], description="group=product: the ids of the product's other articles "
                                                     "that pass the filters (its other colours)")
    available: bool = Field(True, description="in stock per the data folder's availability.csv (out-of-stock "
                                              "articles are answered only with include_unavailable=true)")
    rules: list[str] = Field([], description="the merchandising rules (rules.toml) that pinned, boosted or buried it")
    for_you: str = Field("", description="with customer_id: why it suits the shopper (\"you often buy Trousers\")")


class Group(str, Enum):
    product = "product"
    article = "article"


class Facets(BaseModel):
    basis: str = Field(description="the matching set counted: `words` (every article a word of the text matches) "
                                   "or `first 100 by looks` (photos, more-like-this, visual mode, or no word matched)")
    counts: dict[str, dict[str, int]] = Field(description="per filter column and value: the matching articles that "
                                                          "pass the other columns' filters (0: choosing it empties "
                                                          "the results)")


class SearchResults(BaseModel):
    mode: Mode | None = Field(None, description="the mode used; null for an engine without modes")
    facets: Facets | None = Field(None, description="with facets=true: counts per filter value for this query")
    group: Group = Field(Group.product, description="product: one result per product (its best-ranked colour, "
                                                    "the others in other_colours); article: one per article")
    results: list[SearchHit]


class Article(ArticleSummary):
    """Every column of articles.csv for this article, plus has_image and image_url."""


class Purchase(ArticleSummary):
    t_dat: str
    price: float | None = None
    sales_channel_id: int | None = None


class Customer(BaseModel):
    customer_id: str
    purchases: int = Field(description="purchases in the training window")
    history: list[Purchase] = Field(description="the newest purchases first, up to `limit`")


class SimilarCustomer(BaseModel):
    customer_id: str
    similarity: float
    shared_articles: int
    shared_types: list[str]


class SimilarCustomers(BaseModel):
    customer_id: str
    results: list[SimilarCustomer]


class Recommendation(ArticleSummary):
    score: float
    reason: str
    rules: list[str] = Field([], description="the merchandising rules (rules.toml) that boosted or buried it")


class Recommendations(BaseModel):
    customer_id: str | None = Field(None, description="null for a new shopper (picked articles)")
    method: str = Field(description="the method that made this list (the blend stands in for a ranker-based "
                                    "method when the data was too thin to train a ranker; picks: the blend)")
    chosen_method: str = Field(description="the method the engine serves unless `method` is given")
    chosen_by_backtest: bool = Field(description="whether the build's backtest chose it (false: the default)")
    results: list[Recommendation]


class CompleteTheLook(BaseModel):
    article_id: str
    results: list[Recommendation] = Field(description="other product groups, one per product type; the reason "
                                                      "names what it was bought with")


class PickedArticles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article_ids: list[str] = Field(min_length=1, max_length=MAX_IDS, description="articles a new shopper picked")
    k: int = Field(12, ge=1, le=MAX_K)
