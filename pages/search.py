"""Search: find articles by words, photos (uploaded or from the camera), or both. The query's text,
filters, mode and liked articles are in the URL, so an address reopens the same results."""
from __future__ import annotations

import html
import inspect
from functools import partial

import streamlit as st

from recommender.errors import LookbookError
from recommender.images import MAX_PHOTOS_PER_QUERY
from web import engine as lifecycle
from web import photos as query_photos
from web.errors import errors_shown, public_message
from web.grid import Action, article_photo, articles, placeholder_tile, product_grid
from web.layout import (
    add_to_list,
    check_link,
    known_articles,
    linked_list,
    remove_from_list,
    sidebar,
)
from web.text import md

LABELS = {  # catalogue columns as the page names them (filters, predicted attributes)
    "index_group_name": "Index group",
    "product_group_name": "Product group",
    "product_type_name": "Type",
    "colour_group_name": "Colour",
    "graphical_appearance_name": "Pattern",
}
MODES = {"hybrid": "Words + looks", "visual": "Looks", "lexical": "Words"}
DETAIL_COLUMNS = ("product_type_name", "product_group_name", "colour_group_name", "graphical_appearance_name",
                  "index_group_name", "section_name", "garment_group_name")
DETAIL_K = 6  # look-alikes and complements in the detail view


def label(column: str) -> str:
    return LABELS.get(column, column.removesuffix("_name").replace("_", " ").capitalize())


# --- query state changes (run before the rerun, so they may set widget values) ---------------------


def more_like_this(article_id: str) -> None:
    """A new query: only this article (filters stay)."""
    clear_query()
    st.session_state.like = [article_id]


def stop_shopping() -> None:
    st.session_state.shopping = None
    st.query_params.pop("customer", None)


def shopper(engine) -> str | None:
    """The customer "shopping": the one last opened on the Customers page, or ?customer= in the address."""
    if st.query_params.get("customer") and not st.session_state.get("shopping"):
        st.session_state.shopping = st.query_params["customer"].strip().lower()
    customer = st.session_state.get("shopping")
    if not customer or engine.collab is None:  # the collaborative model loads only for a shopper
        return None
    try:
        engine.catalog.customer_code(customer)
    except LookbookError:
        st.session_state.shopping = None
        st.warning("That customer is not in this dataset; search is not personalised.")
        return None
    return customer


def searched(engine, query: dict, mode: str | None, photos) -> "pd.DataFrame":
    """The results with their facet counts; the last query's kept, so the full rerun that shows its counts
    in the sidebar does not search again (queries with photos are searched again)."""
    key = None if photos else repr(sorted((name, value) for name, value in query.items() if name != "taste")) + \
        f"{mode}|{st.session_state.get('shopping')}"
    kept = st.session_state.get("last_search")
    if key is not None and kept is not None and kept[0] == key:
        return kept[1]
    results = engine.search.search(**query, facets=True, **({"mode": mode} if mode else {}))
    st.session_state.last_search = (key, results)
    return results


def show_counts(counts: dict | None) -> None:
    """The filters (in the sidebar, outside this fragment) show the query's counts: when they change, the
    whole page runs again once to redraw them (not on a session's first run, whose messages about the
    address a rerun would wipe: its counts show from the next run on)."""
    first = "facet_counts" not in st.session_state
    if first or counts != st.session_state.facet_counts:
        st.session_state.facet_counts = counts
        if not first:
            st.rerun(scope="app")


def show_detail(article_id: str) -> None:
    """The detail view (above the results) shows this article."""
    st.session_state.detail = article_id


def hide_detail() -> None:
    st.session_state.detail = None


def details_label(row) -> str:
    others = len(getattr(row, "other_colours", None) or ())
    return f"Details · +{others} colour{'s' if others > 1 else ''}" if others else "Details"


def add_to_query(article_id: str) -> None:
    add_to_list("like", article_id)


def remove_from_query(article_id: str) -> None:
    remove_from_list("like", article_id)


def clear_query() -> None:
    st.session_state.detail = None
    st.session_state.query_text = ""
    st.session_state.negative_text = ""
    st.session_state.like = []
    round_ = st.session_state.upload_round
    if st.session_state.get(f"uploads_{round_}") or st.session_state.get(f"camera_{round_}") is not None:
        st.session_state.upload_round += 1  # new keys: an empty uploader and camera (else kept as they are)


# --- page ----------------------------------------------------------------------------------------


def is_weight(value: str) -> bool:
    try:
        return 0.0 <= float(value) <= 1.0
    except ValueError:
        return False


def check_address(values: dict[str, list[str]]) -> None:
    """A shared address with values this page cannot take (a filter value this catalogue lacks, k=abc)
    gets a message; those are left out."""
    check_link({"k": [str(k) for k in range(4, 49, 4)], "mode": MODES, "image_weight": is_weight})
    for column, options in values.items():
        unknown = [v for v in st.query_params.get_all(f"filter_{column}") if v not in set(options)]
        if unknown:
            st.warning(f"This link filters {label(column).lower()} by {', '.join(map(repr, unknown))}, which "
                       "this catalogue does not have; that filter is left out.", icon=":material/link_off:")


def filter_controls(engine, sidebar_space) -> tuple[dict[str, list[str]], int, str | None]:
    values = lifecycle.filter_values(engine)
    counts = st.session_state.get("facet_counts") or {}  # the current query's, once it has run

    def counted(column: str):
        return lambda value: f"{value} ({counts[column].get(value, 0)})" if column in counts else value

    with sidebar_space:
        st.subheader("Filters")
        if counts:
            st.caption("How many articles the current query finds with each value (0: none)")
        filters = {
            column: chosen
            for column, options in values.items()
            if (chosen := st.multiselect(label(column), options, key=f"filter_{column}", bind="query-params",
                                         format_func=counted(column)))
        }
        k = st.slider("Results", min_value=4, max_value=48, value=12, step=4, key="k", bind="query-params")
        st.toggle("Include sold-out articles", key="include_unavailable", bind="query-params",
                  help="articles that availability.csv lists as out of stock, marked as such")
        mode = None
        if "mode" in inspect.signature(engine.search.search).parameters:  # hybrid search is available
            mode = st.segmented_control("Search by", list(MODES), format_func=MODES.get, default="hybrid",
                                        key="mode", bind="query-params") or "hybrid"
    return filters, k, mode


def photo_inputs() -> list[query_photos.QueryPhoto]:
    """Uploaded and camera photos that decode (each decoded once per upload); each unusable file gets
    its own message."""
    round_ = st.session_state.upload_round
    uploads = st.file_uploader(
        "Photos", accept_multiple_files=True, key=f"uploads_{round_}", type=query_photos.UPLOAD_TYPES,
        max_upload_size=query_photos.MAX_UPLOAD_MB,
        help=f"Up to {MAX_PHOTOS_PER_QUERY} photos, searched together",
    )
    uploads = list(uploads or [])
    if st.toggle("Take a photo with the camera", key="camera_on"):
        shot = st.camera_input("Camera", key=f"camera_{round_}", label_visibility="collapsed")
        if shot is not None:
            shot.name = "camera photo"
            uploads.append(shot)
    usable = []
    for photo in query_photos.decoded(uploads):
        if isinstance(photo, query_photos.QueryPhoto):
            usable.append(photo)
        else:
            st.error(public_message(str(photo)), icon=":material/error:")
    return query_photos.capped(usable)


def show_attributes(engine, photos: list[query_photos.QueryPhoto]) -> None:
    with st.expander("What Lookbook sees in your photos", expanded=True):
        for photo in photos:
            if photo.attributes is None:  # once per upload
                photo.attributes = engine.search.predict_attributes(photo.image)
            picture, text = st.columns([1, 5])
            picture.image(photo.preview, width="stretch")
            lines = [f"**{md(photo.name)}**"]
            for column, guesses in photo.attributes.items():
                lines.append(f"**{label(column)}** " + " · ".join(f"{md(v)} {p:.0%}" for v, p in guesses))
            text.markdown("  \n".join(lines))


def describe(text: str, photos: list, negative: str, filters: dict) -> str:
    parts = [f"“{md(text.strip())}”"] if text.strip() else []
    if photos:
        parts.append(f"{len(photos)} photo{'s' * (len(photos) > 1)}")
    if st.session_state.like:
        parts.append(f"{len(st.session_state.like)} liked article{'s' * (len(st.session_state.like) > 1)}")
    line = " + ".join(parts)
    if negative.strip():
        line += f", not “{md(negative.strip())}”"
    for column, chosen in filters.items():
        line += f" · {label(column)}: {md(', '.join(chosen))}"
    return line


def search_page() -> None:
    st.session_state.setdefault("upload_round", 0)  # bumped to empty the uploader and camera
    engine = lifecycle.engine()
    check_address(lifecycle.filter_values(engine))
    filters, k, mode = filter_controls(engine, sidebar(engine))
    st.title("Lookbook")
    st.caption("Find articles by describing them, by photos, or both.")
    query_and_results(engine, filters, k, mode)


@st.fragment
def query_and_results(engine, filters: dict, k: int, mode: str | None) -> None:
    """A fragment: a new query, "More like this" or a photo reruns only this part of the page (the
    sidebar and its filters stay as they are); a filter change reruns the page and so this too."""
    with errors_shown():
        linked_list("like", partial(known_articles, engine.catalog))  # article ids added to the query
        words, pictures = st.columns([3, 2], gap="large")
        with words:
            text = st.text_input("Describe what you are looking for", key="query_text", bind="query-params",
                                 placeholder="e.g. black ankle boots, striped summer dress")
            negative = st.text_input("Not like", key="negative_text", bind="query-params",
                                     placeholder="e.g. denim, floral")
        with pictures:
            photos = photo_inputs()
        image_weight = 0.5
        if text.strip() and (photos or st.session_state.like):
            image_weight = st.slider("Words ↔ pictures", 0.0, 1.0, 0.5, 0.05, key="image_weight",
                                     bind="query-params", help="0 searches by the words only, 1 by the pictures only")
        if photos:
            with errors_shown():
                show_attributes(engine, photos)
        if st.session_state.like:
            with errors_shown():
                st.markdown("**Also like these**")
                product_grid(articles(st.session_state.like, engine.catalog), engine.catalog, "like",
                             compact=True, actions=(Action("Remove", remove_from_query, ":material/close:"),))
        if not (text or negative or photos or st.session_state.like):
            show_counts(None)
            st.info("Describe an article, upload a photo or take one, and matching articles appear here.",
                    icon=":material/search:")
            return
        customer = shopper(engine)
        if customer:
            st.button(f"Shopping as {customer[:12]}… — results suit their taste", key="shopping_clear",
                      icon=":material/person:", on_click=stop_shopping, help="clear: the same results for everyone")
        query = dict(text=text or None, images=[photo.image for photo in photos], image_weight=image_weight,
                     negative=negative or None, like=tuple(st.session_state.like), filters=filters or None, k=k,
                     include_unavailable=bool(st.session_state.get("include_unavailable")),
                     taste=engine.collab.taste(customer) if customer else None)
        results = searched(engine, query, mode, photos)
        show_counts(results.attrs["facets"]["counts"])
        if st.session_state.get("detail"):
            with errors_shown():
                article_detail(engine, st.session_state.detail)
        heading, clear = st.columns([5, 1], vertical_alignment="bottom")
        heading.subheader(f"{len(results)} results")
        heading.caption(describe(text, photos, negative, filters))
        clear.button("Clear query", on_click=clear_query, icon=":material/restart_alt:", width="stretch")
        if results.empty:
            why = "these words" if mode == "lexical" and not filters else "these filters"
            st.info(f"Nothing matches {why}; change the query or remove a filter to see more.",
                    icon=":material/filter_alt_off:")
        elif len(results) < k and mode == "lexical":
            st.caption(f"Only {len(results)} articles match these words.")
        product_grid(
            results, engine.catalog, "results",
            detail=lambda row: f"score {row.score:.3f}",
            actions=(
                Action("Details", show_detail, ":material/info:", label_for=details_label),
                Action("More like this", more_like_this, ":material/search:"),
                Action("Add to query", add_to_query, ":material/add:"),
            ),
        )


def article_detail(engine, article_id: str) -> None:
    """One article as a shop's product page: a bigger photo, its attributes, its colours, what looks like it
    and what completes the look (articles of other groups shoppers bought with it)."""
    catalog = engine.catalog
    row = catalog.articles.iloc[catalog.article_row(article_id)]
    heading, close = st.columns([5, 1], vertical_alignment="bottom")
    heading.subheader(str(row["prod_name"]), anchor=False)
    close.button("Close", key="detail_close", on_click=hide_detail, icon=":material/close:", width="stretch")
    photo, facts = st.columns([1, 2], gap="large")
    picture = article_photo(catalog, article_id) or placeholder_tile()
    photo.markdown(f'<img src="{picture}" style="width:100%;border-radius:6px" alt="{html.escape(str(row["prod_name"]))}">',
                   unsafe_allow_html=True)
    attributes = [(label(c), row[c]) for c in DETAIL_COLUMNS if c in row.index and isinstance(row[c], str) and row[c]]
    facts.markdown("\n".join(f"- **{md(name)}**: {md(value)}" for name, value in attributes))
    if isinstance(row.get("detail_desc"), str):
        facts.caption(md(row["detail_desc"]))
    actions = (Action("Details", show_detail, ":material/info:"), Action("Add to query", add_to_query, ":material/add:"))
    colours = engine.search.products.others(catalog.article_row(article_id), None)
    if len(colours):
        st.markdown(f"**Colours** ({1 + len(colours)})")
        product_grid(articles(catalog.articles["article_id"].iloc[colours], catalog), catalog, "colours",
                     compact=True, actions=actions[:1])
    st.markdown("**Looks alike**")
    product_grid(engine.search.search(like=[article_id], k=DETAIL_K), catalog, "alike", compact=True, actions=actions[:1])
    if engine.collab is not None:
        complete = engine.collab.complete_the_look(article_id, k=DETAIL_K)
        st.markdown("**Complete the look**")
        if complete.empty:
            st.caption("Nobody bought anything of another kind with it or with anything that looks like it yet.")
        product_grid(complete, catalog, "complete", detail=lambda item: md(item.reason), actions=actions[:1])
    st.divider()

with errors_shown():
    search_page()
