"""Lookbook front page: find articles by words, photos (uploaded or from the camera), or both."""
from __future__ import annotations

import streamlit as st

import ui
from recommender.errors import InputError
from recommender.images import ACCEPTED_FORMATS

LABELS = {  # catalogue columns as the page names them (filters, predicted attributes)
    "index_group_name": "Index group",
    "product_group_name": "Product group",
    "product_type_name": "Type",
    "colour_group_name": "Colour",
    "graphical_appearance_name": "Pattern",
}

ui.page_setup("Search")
st.session_state.setdefault("like", [])  # article ids added to the query
st.session_state.setdefault("upload_round", 0)  # bumped to empty the uploader and camera


def label(column: str) -> str:
    return LABELS.get(column, column.removesuffix("_name").replace("_", " ").capitalize())


# --- query state changes (run before the rerun, so they may set widget values) ---------------------


def more_like_this(article_id: str) -> None:
    """A new query: only this article (filters stay)."""
    clear_query()
    st.session_state.like = [article_id]


def add_to_query(article_id: str) -> None:
    ui.add_to_list("like", article_id)


def remove_from_query(article_id: str) -> None:
    ui.remove_from_list("like", article_id)


def clear_query() -> None:
    st.session_state.query_text = ""
    st.session_state.negative_text = ""
    st.session_state.like = []
    st.session_state.upload_round += 1


# --- page ----------------------------------------------------------------------------------------


def filter_controls(engine, sidebar) -> tuple[dict[str, list[str]], int]:
    with sidebar:
        st.subheader("Filters")
        values = ui.filter_values(engine.settings)
        filters = {
            column: chosen
            for column, options in values.items()
            if (chosen := st.multiselect(label(column), options, key=f"filter_{column}"))
        }
        k = st.slider("Results", min_value=4, max_value=48, value=12, step=4, key="k")
    return filters, k


def query_photos() -> list[tuple[str, bytes]]:
    """Uploaded and camera photos that decode; each unusable file gets its own message."""
    round_ = st.session_state.upload_round
    uploads = st.file_uploader(
        "Photos", accept_multiple_files=True, key=f"uploads_{round_}",
        help=f"Photos ({ACCEPTED_FORMATS}); several are searched together",
    )
    # Any file is taken: images.load_image names what is wrong with one that is not a usable photo,
    # by its content rather than its file name.
    photos = [(upload.name, upload.getvalue()) for upload in uploads or []]
    if st.toggle("Take a photo with the camera", key="camera_on"):
        shot = st.camera_input("Camera", key=f"camera_{round_}", label_visibility="collapsed")
        if shot is not None:
            photos.append(("camera photo", shot.getvalue()))
    usable = []
    for name, data in photos:
        try:
            ui.photo(data, name)
        except InputError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            usable.append((name, data))
    return usable


def show_attributes(engine, photos: list[tuple[str, bytes]]) -> None:
    with st.expander("What Lookbook sees in your photos", expanded=True):
        for name, data in photos:
            picture, text = st.columns([1, 5])
            picture.image(data, width="stretch")
            lines = [f"**{ui.md(name)}**"]
            for column, guesses in ui.predicted_attributes(engine.settings, data, name).items():
                lines.append(f"**{label(column)}** " + " · ".join(f"{ui.md(v)} {p:.0%}" for v, p in guesses))
            text.markdown("  \n".join(lines))


def query_items(engine) -> None:
    st.markdown("**Also like these**")
    ui.product_grid(
        ui.articles(st.session_state.like, engine), engine, "like", columns=8, compact=True,
        actions=(ui.Action("Remove", remove_from_query, ":material/close:"),),
    )


def describe(text: str, photos: list, negative: str, filters: dict) -> str:
    parts = [f"“{text.strip()}”"] if text.strip() else []
    if photos:
        parts.append(f"{len(photos)} photo{'s' * (len(photos) > 1)}")
    if st.session_state.like:
        parts.append(f"{len(st.session_state.like)} liked article{'s' * (len(st.session_state.like) > 1)}")
    line = " + ".join(parts)
    if negative.strip():
        line += f", not “{negative.strip()}”"
    for column, chosen in filters.items():
        line += f" · {label(column)}: {', '.join(chosen)}"
    return ui.md(line)


def search_page() -> None:
    engine = ui.engine()
    filters, k = filter_controls(engine, ui.sidebar(engine))

    st.title("Lookbook")
    st.caption("Find articles by describing them, by photos, or both.")
    words, pictures = st.columns([3, 2], gap="large")
    with words:
        text = st.text_input("Describe what you are looking for", key="query_text",
                             placeholder="e.g. black ankle boots, striped summer dress")
        negative = st.text_input("Not like", key="negative_text", placeholder="e.g. denim, floral")
    with pictures:
        photos = query_photos()
    image_weight = 0.5
    if text.strip() and (photos or st.session_state.like):
        image_weight = st.slider("Words ↔ pictures", 0.0, 1.0, 0.5, 0.05, key="image_weight",
                                 help="0 searches by the words only, 1 by the pictures only")
    if photos:
        with ui.errors_shown():
            show_attributes(engine, photos)
    if st.session_state.like:
        query_items(engine)

    if not (text or negative or photos or st.session_state.like):
        st.info("Describe an article, upload a photo or take one, and matching articles appear here.",
                icon=":material/search:")
        return
    with ui.errors_shown():
        results = engine.search.search(
            text=text or None, images=[ui.photo(data, name) for name, data in photos],
            image_weight=image_weight, negative=negative or None, like=tuple(st.session_state.like),
            filters=filters or None, k=k,
        )
        heading, clear = st.columns([5, 1], vertical_alignment="bottom")
        heading.subheader(f"{len(results)} results")
        heading.caption(describe(text, photos, negative, filters))
        clear.button("Clear query", on_click=clear_query, icon=":material/restart_alt:", width="stretch")
        if results.empty:
            st.info("Nothing matches these filters; remove one to see more.",
                    icon=":material/filter_alt_off:")
        ui.product_grid(
            results, engine, "results",
            detail=lambda row: f"score {row.score:.3f}",
            actions=(
                ui.Action("More like this", more_like_this, ":material/search:"),
                ui.Action("Add to query", add_to_query, ":material/add:"),
            ),
        )


with ui.errors_shown():
    search_page()
