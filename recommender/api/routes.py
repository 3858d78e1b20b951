"""The /v1 endpoints: each translates HTTP into one engine call (in the bounded pool) and its frame into JSON.

Ids are checked here so that the status says what is wrong: 400 for something that is not an id,
404 for an id the catalogue does not have.
"""
import inspect
import math
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.security import APIKeyHeader

from ..collab.methods import METHODS
from ..embed import MAX_TEXT_CHARS
from ..errors import InputError
from . import schemas
from .errors import ApiError, public
from .uploads import check_photo_count, check_request_pixels, decode_photo

API_KEY_HEADER = "X-API-Key"
IMAGE_MAX_AGE_S = 24 * 3600
MAX_HISTORY = 100
CUSTOMER_ID = re.compile(r"^[0-9a-fA-F]{64}$")
ARTICLE_FIELDS = ("prod_name", "product_type_name", "colour_group_name", "has_image")
ERRORS = {status: {"model": schemas.ErrorBody} for status in (400, 401, 404, 413, 415, 422, 503)}

# --- /v1 ---------------------------------------------------------------------------------------------

K = Annotated[int, Query(ge=1, le=schemas.MAX_K, description="number of results")]
ArticleId = Annotated[str, Path(max_length=64, description="article id, e.g. 0108775015")]
CustomerId = Annotated[str, Path(max_length=128, description="customer id (64 hexadecimal characters)")]
Method = Annotated[Literal[METHODS] | None, Query(description="how the list is made (default: the method the "
                                                              "build's backtest chose)")]


def engine_holder(request: Request):
    """The app's `EngineHolder` (app.py): every route reads the engine through it."""
    return request.app.state.engine


Holder = Annotated[object, Depends(engine_holder)]
key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="required when the server sets LOOKBOOK_API_KEY")


async def check_key(given: Annotated[str | None, Depends(key_header)]) -> None:
    """With a key set (`create_app(api_key=…)`), every /v1 call must carry it: checked by app.BodyLimit
    before the body is read; declared here for the OpenAPI schema."""


router = APIRouter(prefix="/v1", dependencies=[Depends(check_key)], responses=ERRORS)


@router.get("/status", response_model=schemas.Status, tags=["service"])
async def status(holder: Holder):
    """The dataset, model and counts served, and notices (e.g. that a fallback model is in use)."""
    engine = holder.require()
    info = await holder.run(engine.status)
    info = {key: value for key, value in info.items() if not key.endswith(("_dir", "_path"))}
    info = {key: public(value) if isinstance(value, str) else value for key, value in info.items()}
    return {**info, "notices": [public(notice) for notice in engine.notices], "search_modes": _modes(engine),
            "filters": engine.search.filter_values()}


@router.get("/search", response_model=schemas.SearchResults, tags=["search"])
async def search_get(
    holder: Holder,
    q: Annotated[str | None, Query(max_length=MAX_TEXT_CHARS, description="what to look for")] = None,
    mode: schemas.Mode | None = None,
    k: K = 12,
    filter: Annotated[list[str], Query(max_length=20, description="column:value, repeatable")] = [],  # noqa: B006
    negative: Annotated[str | None, Query(max_length=MAX_TEXT_CHARS, description="push results away from this")] = None,
    like: Annotated[list[str], Query(max_length=schemas.MAX_IDS, description="article ids to find more like")] = [],  # noqa: B006
    weight: Annotated[float, Query(ge=0, le=1, description="weight of the liked articles against the text")] = 0.5,
    group: Annotated[schemas.Group, Query(description="product: one result per product, its other colours "
                                                      "listed; article: one per article")] = schemas.Group.product,
    facets: Annotated[bool, Query(description="also count the matches per filter value")] = False,
    include_unavailable: Annotated[bool, Query(description="also articles out of stock (marked available=false)")] = False,
    customer_id: Annotated[str | None, Query(max_length=128, description="personalise for this shopper: the "
                                             "relevant results re-ranked by their taste; for_you says why")] = None,
):
    """Text search (and "more like these" articles), with filters."""
    engine = holder.require()
    taste = None
    if customer_id is not None:
        collab, cid = _customer(engine, customer_id)
        taste = await holder.run(collab.taste, cid)
    return await holder.run(_search, engine, text=q, images=[], weight=weight, negative=negative,
                            like=like, filters=filter, k=k, mode=mode, group=group, facets=facets,
                            include_unavailable=include_unavailable, taste=taste)


@router.post("/search", response_model=schemas.SearchResults, tags=["search"])
async def search_post(
    holder: Holder,
    photos: Annotated[list[UploadFile], File(description="query photos (jpg, png, webp, …)")] = [],  # noqa: B006
    text: Annotated[str | None, Form(max_length=MAX_TEXT_CHARS)] = None,
    weight: Annotated[float, Form(ge=0, le=1, description="weight of the photos against the text")] = 0.5,
    negative: Annotated[str | None, Form(max_length=MAX_TEXT_CHARS)] = None,
    filter: Annotated[list[str], Form(max_length=20, description="column:value, repeatable")] = [],  # noqa: B006
    like: Annotated[list[str], Form(max_length=schemas.MAX_IDS)] = [],  # noqa: B006
    k: Annotated[int, Form(ge=1, le=schemas.MAX_K)] = 12,
    mode: Annotated[schemas.Mode | None, Form()] = None,
    group: Annotated[schemas.Group, Form(description="product (default) or article")] = schemas.Group.product,
    facets: Annotated[bool, Form(description="also count the matches per filter value")] = False,
    include_unavailable: Annotated[bool, Form(description="also articles out of stock")] = False,
):
    """Photo search (multipart): photos, optional text mixed in by weight, negative text, filters, liked ids."""
    engine = holder.require()
    check_photo_count(len(photos))
    uploads = [(await photo.read(), photo.filename or f"photo {n}") for n, photo in enumerate(photos, 1)]
    check_request_pixels(uploads)
    images = [await holder.run(decode_photo, data, name) for data, name in uploads]
    return await holder.run(_search, engine, text=text, images=images, weight=weight, negative=negative,
                            like=like, filters=filter, k=k, mode=mode, group=group, facets=facets,
                            include_unavailable=include_unavailable)


@router.get("/articles/{article_id}", response_model=schemas.Article, tags=["articles"])
async def article(holder: Holder, article_id: ArticleId):
    """Every catalogue column of one article."""
    engine = holder.require()
    row = _article_row(engine, article_id)
    record = _json_safe(engine.catalog.articles.iloc[row].to_dict())
    return {**record, "image_url": _image_url(record["article_id"], record.get("has_image"))}


@router.get("/articles/{article_id}/image", tags=["articles"],
            responses={200: {"content": {"image/jpeg": {}}}, 304: {"description": "not modified"}})
async def article_image(holder: Holder, article_id: ArticleId, request: Request):
    """The product photo (cacheable: ETag and Cache-Control)."""
    engine = holder.require()
    _article_row(engine, article_id)
    path = engine.catalog.image_path(article_id)
    stat = path.stat() if path is not None and path.is_file() else None
    if stat is None:
        raise ApiError(404, "no_image", f"article {article_id} has no image")
    etag = f'"{path.stem}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={IMAGE_MAX_AGE_S}"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers, stat_result=stat)


@router.get("/articles/{article_id}/similar", response_model=schemas.SearchResults, tags=["articles"])
async def similar_articles(holder: Holder, article_id: ArticleId, k: K = 12,
                           filter: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
                           group: Annotated[schemas.Group, Query()] = schemas.Group.product):
    """Articles that look most like this one (itself excluded)."""
    engine = holder.require()
    return await holder.run(_search, engine, text=None, images=[], weight=0.5, negative=None,
                            like=[article_id], filters=filter, k=k, mode=None, group=group)


@router.get("/articles/{article_id}/complete", response_model=schemas.CompleteTheLook, tags=["articles"])
async def complete_the_look(holder: Holder, article_id: ArticleId, k: K = 12):
    """Complete the look: articles of other product groups that shoppers bought with this one in the same
    week (lift over popularity, style coherence), one per product type, each with the reason."""
    engine = holder.require()
    collab = _collab(engine)
    row = _article_row(engine, article_id)
    frame = await holder.run(collab.complete_the_look, article_id, k=k)
    return {"article_id": engine.catalog.articles["article_id"].iat[row], "results": _with_articles(holder, engine, frame)}


@router.get("/customers/{customer_id}", response_model=schemas.Customer, tags=["customers"])
async def customer(holder: Holder, customer_id: CustomerId,
                   limit: Annotated[int, Query(ge=0, le=MAX_HISTORY, description="purchases to list")] = 20):
    """A customer's purchases (training window), newest first."""
    collab, cid = _customer(holder.require(), customer_id)
    history = await holder.run(collab.history, cid)
    latest = history.head(limit).assign(t_dat=lambda f: f["t_dat"].dt.strftime("%Y-%m-%d"))
    return {"customer_id": cid, "purchases": len(history),
            "history": [{**row, "image_url": _image_url(row["article_id"], row.get("has_image"))}
                        for row in _records(latest)]}


@router.get("/customers/{customer_id}/similar", response_model=schemas.SimilarCustomers, tags=["customers"])
async def similar_customers(holder: Holder, customer_id: CustomerId, k: Annotated[int, Query(ge=1, le=schemas.MAX_K)] = 10):
    """Customers with the closest tastes (ALS factors), with what they share."""
    collab, cid = _customer(holder.require(), customer_id)
    try:
        frame = await holder.run(collab.similar_customers, cid, k=k)
    except InputError as exc:  # a known customer without purchases in the training window
        raise ApiError(404, "no_history", str(exc)) from None
    return {"customer_id": cid, "results": _records(frame)}


@router.get("/customers/{customer_id}/recommendations", response_model=schemas.Recommendations,
            tags=["recommendations"])
async def recommendations(holder: Holder, customer_id: CustomerId, k: K = 12, method: Method = None):
    """k articles for a customer, each with the reason it is there, by the method the build's backtest chose
    (or ``method``); ``method`` in the answer names the one that made the list."""
    engine = holder.require()
    collab, cid = _customer(engine, customer_id)
    frame = await holder.run(collab.recommend, cid, k=k, method=method)
    return {"customer_id": cid, "method": frame.attrs["method"], "chosen_method": collab.method,
            "chosen_by_backtest": collab.method_chosen, "results": _with_articles(holder, engine, frame)}


@router.post("/recommendations", response_model=schemas.Recommendations, tags=["recommendations"])
async def recommendations_for_picks(holder: Holder, body: schemas.PickedArticles):
    """A new shopper: recommendations from a few picked articles (folded into the model, no retraining)."""
    engine = holder.require()
    collab = _collab(engine)
    for article_id in body.article_ids:
        _article_row(engine, article_id)
    frame = await holder.run(collab.recommend_for_items, body.article_ids, k=body.k)
    return {"customer_id": None, "method": frame.attrs["method"], "chosen_method": collab.method,
            "chosen_by_backtest": collab.method_chosen, "results": _with_articles(holder, engine, frame)}


# --- engine calls and frames → JSON -------------------------------------------------------------------


def _mode_parameter(engine) -> inspect.Parameter | None:
    """The search's `mode` parameter: engines before hybrid search have none (they answer visually)."""
    return inspect.signature(engine.search.search).parameters.get("mode")


def _modes(engine) -> list[str]:
    return [m.value for m in schemas.Mode] if _mode_parameter(engine) else []


def _search(engine, *, text, images, weight, negative, like, filters, k, mode, group, facets=False,
            include_unavailable=False, taste=None) -> dict:
    for article_id in like:
        _article_row(engine, article_id)
    parameter, options = _mode_parameter(engine), {}
    if parameter is not None and mode is not None:
        options["mode"] = mode.value
    frame = engine.search.search(text=text, images=images, image_weight=weight, negative=negative, like=like,
                                 filters=_filters(filters), k=k, group=group.value, facets=facets,
                                 include_unavailable=include_unavailable, taste=taste, **options)
    results = [{**row, "image_url": _image_url(row["article_id"], row.get("has_image"))} for row in _records(frame)]
    used = options.get("mode") or (parameter.default if parameter is not None else None)
    return {"mode": used if used in schemas.Mode._value2member_map_ else None, "group": group.value,
            "facets": frame.attrs.get("facets"), "results": results}


def _filters(items: list[str]) -> dict[str, list[str]] | None:
    """['colour_group_name:Red', 'colour_group_name:Black'] → {'colour_group_name': ['Red', 'Black']}."""
    filters: dict[str, list[str]] = {}
    for item in items:
        column, sep, value = item.partition(":")
        if not sep or not column.strip():
            raise ApiError(400, "bad_filter", f"filter {item[:80]!r} must look like column:value (e.g. colour_group_name:Red)")
        filters.setdefault(column.strip(), []).append(value.strip())
    return filters or None


def _article_row(engine, article_id: str) -> int:
    """The article's row: 400 for something that is not an article id, 404 for an unknown one."""
    from ..catalog import normalize_article_id

    normalize_article_id(article_id)  # InputError (400) when malformed
    try:
        return engine.catalog.article_row(article_id)
    except InputError as exc:
        raise ApiError(404, "unknown_article", str(exc)) from None


def _collab(engine):
    if engine.collab is None:
        raise ApiError(404, "no_customers", f"the dataset {engine.catalog.name} has no transactions, so no customers")
    return engine.collab


def _customer(engine, customer_id: str):
    """(collab model, normalised id): 400 for a malformed id, 404 for an unknown one."""
    collab = _collab(engine)
    cid = customer_id.strip().lower()
    if not CUSTOMER_ID.match(cid):
        raise ApiError(400, "bad_customer_id", f"'{customer_id[:70]}' is not a customer id (64 hexadecimal characters)")
    try:
        engine.catalog.customer_code(cid)
    except InputError as exc:
        raise ApiError(404, "unknown_customer", str(exc)) from None
    return collab, cid


def _with_articles(holder, engine, frame) -> list[dict]:
    """Recommendation rows with the article's name, type, colour and image URL (for a shop page)."""
    index, columns = holder.article_columns(engine)
    out = []
    for record, row in zip(_records(frame), index.get_indexer(frame["article_id"].to_numpy())):
        merged = {**{column: _json_value(values[row]) for column, values in columns.items()}, **record}
        out.append({**merged, "image_url": _image_url(merged["article_id"], merged.get("has_image"))})
    return out


def _image_url(article_id: str, has_image) -> str | None:
    return f"/v1/articles/{article_id}/image" if has_image else None


def _records(frame) -> list[dict]:
    return [_json_safe(record) for record in frame.to_dict(orient="records")]


def _json_safe(record: dict) -> dict:
    return {str(key): _json_value(value) for key, value in record.items()}


def _json_value(value):
    """numpy scalars → Python, NaN / NA → None (JSON has no NaN)."""
    if hasattr(value, "tolist") and not isinstance(value, (list, dict)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
