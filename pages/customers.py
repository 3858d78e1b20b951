"""Customers: what a customer bought, who shops like them, and what to show them next;
or, for a new shopper without an id, recommendations from a few picked articles. The customer id, the
open tab and the mode are in the URL, so an address reopens the same view."""
from __future__ import annotations

from functools import partial

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from web import engine as lifecycle
from web.errors import errors_shown
from web.grid import Action, articles, product_grid
from web.layout import add_to_list, check_link, known_articles, linked_list, remove_from_list, sidebar
from web.text import md

HISTORY_PAGE = 24
CANDIDATES = 8
CHART_SERIES = 8
CUSTOMER, NEW_SHOPPER = "A customer", "A new shopper"

# Approximate swatches for the H&M colour groups, so the colour chart shows "Black" in black.
SWATCHES = {
    "off white": "#efeadb", "black": "#161616", "white": "#fafafa", "grey": "#8e8e8e", "beige": "#d6c3a0",
    "blue": "#2f5da8", "pink": "#e58fb0", "red": "#c3122f", "orange": "#ec8a2f", "yellow": "#f0cf36",
    "green": "#3f8d4b", "turquoise": "#35b3ad", "purple": "#7a4f9f", "brown": "#875a2e", "khaki": "#99935c",
    "silver": "#c3c3c3", "gold": "#c9a53a", "copper": "#b06e3a", "transparent": "#e3e3e3",
}  # fmt: skip


TABS = ["Recommended", "Purchase history", "What they buy", "Similar customers"]

st.session_state.setdefault("history_shown", HISTORY_PAGE)
st.session_state.setdefault("candidate_round", 0)


# --- state changes -------------------------------------------------------------------------------


def open_customer(customer_id: str) -> None:
    st.session_state.customer_id = customer_id
    reset_history()


def reset_history() -> None:
    """A newly opened customer's history starts at its first page."""
    st.session_state.history_shown = HISTORY_PAGE


def open_example() -> None:
    if st.session_state.customer_example:
        open_customer(st.session_state.customer_example)


def open_random(transactions: pd.DataFrame, customer_ids: np.ndarray) -> None:
    """A random purchase's customer: active customers come up more often, as in a shop."""
    code = transactions["customer"].iat[np.random.default_rng().integers(len(transactions))]
    open_customer(str(customer_ids[code]))


def open_selected(table_key: str, customer_ids: list[str]) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        open_customer(customer_ids[rows[0]])


def pick(article_id: str) -> None:
    add_to_list("shopper_picks", article_id)


def unpick(article_id: str) -> None:
    remove_from_list("shopper_picks", article_id)


def show_more_history() -> None:
    st.session_state.history_shown += HISTORY_PAGE


def other_candidates() -> None:
    st.session_state.candidate_round += 1


# --- a known customer ----------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def example_customers(_collab, settings) -> list[str]:
    """Computed once per dataset (it ranks every customer); ``settings`` is the cache key."""
    return _collab.example_customers(5)


def choose_customer(engine) -> str:
    typed, examples, random = st.columns([4, 3, 1], vertical_alignment="bottom")
    typed.text_input("Customer id", key="customer_id", placeholder="paste a 64-character customer_id",
                     on_change=reset_history, bind="query-params")
    examples.selectbox(
        "Examples", example_customers(engine.collab, engine.settings), index=None, key="customer_example",
        format_func=lambda cid: f"{cid[:16]}…", placeholder="customers with long histories",
        on_change=open_example,
    )
    random.button("Random", icon=":material/casino:", width="stretch", help="a random customer",
                  on_click=open_random, args=(engine.catalog.transactions, engine.catalog.customer_ids))
    return st.session_state.customer_id.strip()


def customer_view(engine, customer_id: str, k: int) -> None:
    history = engine.collab.history(customer_id)  # validates the id: malformed vs unknown
    st.session_state.shopping = customer_id.strip().lower()  # the search page personalises for them
    bought, different, first, last = st.columns(4)
    bought.metric("Purchases", f"{len(history):,}")
    different.metric("Different articles", f"{history['article_id'].nunique():,}")
    first.metric("First purchase", f"{history['t_dat'].min():%d %b %Y}" if len(history) else "–")
    last.metric("Last purchase", f"{history['t_dat'].max():%d %b %Y}" if len(history) else "–")

    # Only the open tab is computed: the others cost nothing until opened.
    recommended, purchases, taste, similar = st.tabs(TABS, key="tab", on_change="rerun", bind="query-params")
    if recommended.open:
        with recommended, errors_shown():
            recommendations(engine, customer_id, k)
    if purchases.open:
        with purchases, errors_shown():
            purchase_history(engine, history)
    if taste.open:
        with taste, errors_shown():
            if not history.empty:
                by = st.radio("By", ["Type", "Colour"], horizontal=True, key="taste_by")
                taste_chart(history, "product_type_name" if by == "Type" else "colour_group_name", by)
    if similar.open:
        with similar, errors_shown():
            similar_customers(engine, customer_id)


def recommendations(engine, customer_id: str, k: int) -> None:
    collab = engine.collab
    recs = collab.recommend(customer_id, k=k)
    made_by = recs.attrs["method"]
    if made_by != collab.method:
        st.caption(f"Made by the {made_by} (standing in for the {collab.method}, which needs more purchase data).")
    elif collab.method_chosen:
        st.caption(f"Made by the {made_by}: the method the build's backtest chose (see Insights).")
    else:
        st.caption(f"Made by the {made_by} (no backtest was stored with this build).")
    product_grid(recs, engine.catalog, "recs", detail=lambda row: md(row.reason))


@st.fragment
def purchase_history(engine, history) -> None:
    """A fragment: "Show more" reruns only this tab."""
    if history.empty:
        st.info("No purchases in the period the model was trained on.")
    shown = history.head(st.session_state.history_shown)
    with errors_shown():
        product_grid(shown, engine.catalog, "history", detail=lambda row: f"bought {row.t_dat:%d %b %Y}")
    if len(history) > len(shown):
        st.caption(f"{len(shown)} of {len(history)} purchases, newest first")
        st.button("Show more", on_click=show_more_history)


def taste_chart(history: pd.DataFrame, column: str, label: str) -> None:
    """Purchases per month, stacked by the customer's most bought types or colours."""
    top = history[column].value_counts().index[:CHART_SERIES]
    counts = (
        history.assign(month=history["t_dat"].dt.to_period("M").dt.to_timestamp(),
                       series=history[column].where(history[column].isin(top), "Other"))
        .groupby(["month", "series"]).size().rename("purchases").reset_index()
    )  # fmt: skip
    names = [*top, "Other"]
    if column == "colour_group_name":
        scale = alt.Scale(domain=names, range=[swatch(name) for name in names])
    else:
        scale = alt.Scale(domain=names, scheme="tableau10")
    colour = alt.Color("series:N", title=label, scale=scale, sort=names)
    chart = (
        alt.Chart(counts)
        .mark_bar(stroke="#d0d0d0", strokeWidth=0.5)
        .encode(
            x=alt.X("yearmonth(month):T", title=None),
            y=alt.Y("purchases:Q", title="purchases"),
            color=colour,
            tooltip=["yearmonth(month):T", alt.Tooltip("series:N", title=label), "purchases:Q"],
        )
    )
    st.altair_chart(chart, width="stretch")


def swatch(colour_group: str) -> str:
    """'Dark Blue' → a dark blue; unknown names grey. Light/Dark shift the base swatch."""
    name = colour_group.lower().replace("bronze/copper", "copper")
    base = next((SWATCHES[key] for key in SWATCHES if name.endswith(key)), "#b5b5b5")
    rgb = np.array([int(base[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    if name.startswith("light"):
        rgb += (255 - rgb) * 0.45
    elif name.startswith("dark"):
        rgb *= 0.6
    return "#" + "".join(f"{int(round(v)):02x}" for v in rgb)


def similar_customers(engine, customer_id: str) -> None:
    similar = engine.collab.similar_customers(customer_id, k=10)
    table_key = f"similar_{customer_id}"
    st.dataframe(
        similar, hide_index=True, key=table_key, selection_mode="single-row",
        on_select=partial(open_selected, table_key, similar["customer_id"].tolist()),
        column_config={
            "customer_id": st.column_config.TextColumn("Customer"),
            "similarity": st.column_config.ProgressColumn("Similarity", min_value=0.0, max_value=1.0,
                                                          format="%.2f"),
            "shared_articles": st.column_config.NumberColumn("Same articles bought"),
            "shared_types": st.column_config.ListColumn("Both often buy"),
        },
    )  # fmt: skip
    st.caption("Select a row to open that customer.")


# --- a new shopper -------------------------------------------------------------------------------


@st.fragment
def new_shopper(engine, k: int) -> None:
    linked_list("shopper_picks", partial(known_articles, engine.catalog))
    st.markdown("Pick a few articles you like; recommendations follow from them at once, no retraining.")
    query = st.text_input("Find articles", key="shopper_query", placeholder="e.g. white sneakers")
    with errors_shown():
        if query.strip():
            candidates = engine.search.search(text=query, k=CANDIDATES)
        else:
            with_photo = engine.catalog.articles[engine.catalog.articles["has_image"]]
            candidates = with_photo.sample(min(CANDIDATES, len(with_photo)),
                                           random_state=st.session_state.candidate_round)
        product_grid(candidates, engine.catalog, "candidates", compact=True,
                     actions=(Action("I like this", pick, ":material/favorite:"),))
        if not query.strip():
            st.button("Show others", on_click=other_candidates, icon=":material/refresh:")
    picks = st.session_state.shopper_picks
    if not picks:
        return
    st.subheader("You like")
    product_grid(articles(picks, engine.catalog), engine.catalog, "picks", compact=True,
                 actions=(Action("Remove", unpick, ":material/close:"),))
    st.subheader("Recommended for you")
    with errors_shown():
        recs = engine.collab.recommend_for_items(picks, k=k)
        product_grid(recs, engine.catalog, "shopper_recs", detail=lambda row: md(row.reason))


def customers_page() -> None:
    engine = lifecycle.engine()
    controls = sidebar(engine)
    st.title("Customers")
    if engine.collab is None:
        st.info(f"{md(engine.catalog.name)} has no transactions, so there are no customers to show. "
                "Content search works on the Search page.", icon=":material/info:")
        return
    with controls:
        k = st.slider("Recommendations", min_value=4, max_value=48, value=12, step=4, key="k_recs")
    check_link({"tab": TABS, "shopper_mode": [CUSTOMER, NEW_SHOPPER]})
    mode = st.radio("Who is shopping", [CUSTOMER, NEW_SHOPPER], horizontal=True, key="shopper_mode",
                    label_visibility="collapsed", bind="query-params")
    if mode == NEW_SHOPPER:
        new_shopper(engine, k)
        return
    a_customer(engine, k)


@st.fragment
def a_customer(engine, k: int) -> None:
    """A fragment: opening a customer or a tab reruns only this part of the page, not the sidebar."""
    with errors_shown():
        customer_id = choose_customer(engine)
        if not customer_id:
            st.info("Paste a customer id, pick an example or open a random customer.",
                    icon=":material/person_search:")
            return
        customer_view(engine, customer_id, k)


with errors_shown():
    customers_page()
