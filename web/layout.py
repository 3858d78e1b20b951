"""Page chrome shared by the pages: tile CSS, the sidebar, lists kept in session state, and the parts of
a view that live in the URL (widgets bind their own values with ``bind="query-params"``)."""
from __future__ import annotations

from typing import Callable, Collection

import streamlit as st

from recommender.errors import InputError
from recommender.pipeline import Engine

from . import engine as engine_lifecycle
from .errors import public_message
from .text import md

# Tiles share one shape whatever the photo's size, so rows line up like a shop's listing.
CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
[class*="st-key-tile_"] { gap: 0.15rem; padding-bottom: 1rem; }
[class*="st-key-tile_"] img.tile-photo {
  aspect-ratio: 2 / 3; object-fit: contain; width: 100%; max-width: 100%; display: block; margin: 0 0 0.35rem 0;
  background: #f0efed; border-radius: 6px;
}
[class*="st-key-tile_"] button { min-height: 1.8rem; padding: 0 0.15rem; }
[class*="st-key-tile_"] button p { font-size: 0.85rem; }
</style>
"""


def sidebar(engine: Engine):
    """What is loaded, at the bottom of the sidebar; returns the space above it for the page's controls.

    The dataset is named, never its server path.
    """
    status = engine_lifecycle.status(engine)
    with st.sidebar:
        controls = st.container()
        st.divider()
        st.markdown(f"**Dataset** {md(status['dataset'])}")
        st.markdown(f"**Model** {md(status['model'])}")
        st.caption(md(public_message(status["pretrained"])))
        st.markdown(
            f"**{status['articles']:,} articles indexed** — {status['indexed_by_image']:,} by image, "
            f"{status['indexed_by_text']:,} by text"
        )
        if status["customers"]:
            st.markdown(f"**{status['customers']:,} customers** with purchases")
        st.caption(f"Build {status['build_id']}" + (f", {status['built_at'][:16].replace('T', ' ')}" if status["built_at"] else ""))
        notices = engine.notices + engine.fallbacks
        if notices:
            with st.expander(f"Notices ({len(notices)})", icon=":material/info:"):
                for notice in notices:
                    st.caption(md(public_message(notice)))
    return controls


def add_to_list(key: str, item: str) -> None:
    """Append to a list kept in session state (query articles, a new shopper's picks), once."""
    if item not in st.session_state[key]:
        st.session_state[key] = [*st.session_state[key], item]


def remove_from_list(key: str, item: str) -> None:
    st.session_state[key] = [x for x in st.session_state[key] if x != item]


def linked_list(key: str, known: Callable[[list[str]], list[str]] = list) -> list[str]:
    """A session list that is also in the URL as repeated ``key`` parameters: read from the URL when the
    session starts on this page (``known`` drops, with a message, what the URL names wrongly), written
    back on every run, so the address reopens the view."""
    if key not in st.session_state:
        st.session_state[key] = known([value for value in st.query_params.get_all(key) if value.strip()])
    values = st.session_state[key]
    if values:
        st.query_params[key] = values
    elif key in st.query_params:
        del st.query_params[key]
    return values


def known_articles(catalog, article_ids: list[str]) -> list[str]:
    """The ids (from a shared address) that are in this catalogue; each other one gets a message."""
    known = []
    for article_id in article_ids:
        try:
            catalog.article_row(article_id)
        except InputError as exc:
            st.error(public_message(str(exc)), icon=":material/link_off:")
        else:
            known.append(article_id)
    return known


def check_link(accepted: dict[str, Collection[str] | Callable[[str], bool]]) -> None:
    """A message for each URL parameter (of a shared address) whose value the page cannot take; Streamlit
    then leaves that widget at its default. ``accepted``: parameter → accepted values, or a test."""
    for key, allowed in accepted.items():
        for value in st.query_params.get_all(key):
            ok = allowed(value) if callable(allowed) else value in allowed
            if value and not ok:
                st.warning(f"This link's {key}={value!r} is not a value this page can show, so the default "
                           "is used.", icon=":material/link_off:")
