"""Insights: how well the engine does and what it is built from: recommendation quality per week and
method, catalogue coverage of recommendations, the content index, the model and the dataset."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from recommender import insights
from recommender.config import Settings
from recommender.pipeline import store_for
from web import engine as lifecycle
from web.errors import errors_shown, public_message
from web.layout import check_link, sidebar
from web.text import md

TABS = ["Recommendations", "Search index and model", "Dataset"]
EVALUATION_WEEKS = 4


@st.cache_resource(show_spinner=False)
def evaluation_result(settings: Settings) -> list:
    """One evaluation per process and dataset, shared by every session (a holder filled once computed)."""
    return []


@st.cache_resource(show_spinner="Recommending for a sample of customers…")
def coverage(_collab, settings: Settings) -> dict:
    return insights.recommendation_coverage(_collab)


@st.cache_resource(show_spinner=False)
def dataset(_catalog, settings: Settings) -> tuple[dict, pd.DataFrame]:
    return insights.dataset_facts(_catalog), insights.weekly_sales(_catalog)


@st.cache_resource(show_spinner=False)
def model(_embedder, settings: Settings) -> dict:
    return insights.model_facts(_embedder)


def quality(engine) -> None:
    st.subheader("Recommendation quality")
    st.caption("MAP@12 as in the H&M competition: each test week's buyers get 12 recommendations from a model "
               "trained on the purchases before that week.")
    table = insights.stored_evaluation(store_for(engine.settings))
    holder = evaluation_result(engine.settings)
    if table is None and holder:
        table = holder[0]
    if table is None:
        st.info("No evaluation was stored with this build.", icon=":material/info:")
        if not st.button(f"Evaluate the last {EVALUATION_WEEKS} weeks now", icon=":material/play_arrow:"):
            return
        with st.status("Evaluating", expanded=True) as box:
            bar = st.progress(0.0)
            table = insights.evaluation(engine.catalog, EVALUATION_WEEKS,
                                        progress=lambda done, message: bar.progress(done, text=public_message(message)))
            box.update(label="Evaluated", state="complete", expanded=False)
        holder[:] = [table]
    # MAP@12 as evaluate names it (any case), else its first measure: the chart survives a renamed column.
    measures = [c for c in table.columns
                if c not in ("method", "week", "customers") and pd.api.types.is_numeric_dtype(table[c])]
    metric = next((c for c in measures if c.lower().startswith("map@")), measures[0])
    if "week" in table.columns:
        chart = alt.Chart(table).mark_line(point=True).encode(
            x=alt.X("week:T", title="test week"), y=alt.Y(f"{metric}:Q", title=metric),
            color=alt.Color("method:N", title="method"), tooltip=["week:T", "method:N", f"{metric}:Q", "customers:Q"],
        )  # fmt: skip
    else:
        chart = alt.Chart(table).mark_bar().encode(
            x=alt.X(f"{metric}:Q", title=metric), y=alt.Y("method:N", sort="-x", title=None),
            tooltip=["method:N", f"{metric}:Q", "customers:Q"],
        )  # fmt: skip
    st.altair_chart(chart, width="stretch")
    st.dataframe(table, hide_index=True, key="evaluation_table")


def reach(engine) -> None:
    st.subheader("Catalogue coverage of recommendations")
    facts = coverage(engine.collab, engine.settings)
    share, spread, distinct = st.columns(3)
    share.metric("Share of the catalogue recommended", f"{facts['catalogue_share']:.1%}",
                 help=f"articles in at least one top-{facts['k']} list of {facts['customers']:,} random customers")
    distinct.metric("Different articles recommended", f"{facts['distinct_articles']:,}")
    spread.metric("Places taken by the top 1% of articles", f"{facts['top_percent_share']:.1%}")


def index_and_model(engine) -> None:
    meta = engine.search.index_meta
    st.subheader("Content index")
    kind, size, probe, recall = st.columns(4)
    kind.metric("Kind", "IVF (approximate)" if meta.get("kind") == "ivf" else "exact")
    size.metric("Articles", f"{meta.get('n', meta['by_image'] + meta['by_text']):,}",
                help=f"{meta['by_image']:,} by image, {meta['by_text']:,} by their text")
    probe.metric("nprobe", f"{meta['nprobe']} of {meta['nlist']} lists" if meta.get("nprobe") else "–")
    recall.metric("Recall@100 at build", f"{meta['recall_at_100']:.3f}" if "recall_at_100" in meta else "1 (exact)")

    st.subheader("Model")
    facts = model(engine.embedder, engine.settings)
    st.markdown(f"**{md(facts['model'])}** from {md(public_message(str(facts['source'])))}")
    for notice in engine.notices:
        st.caption(md(public_message(notice)))
    if facts["epoch_losses"]:
        st.caption(f"Trained here on {facts['trained_on_articles']:,} image–caption pairs; training loss per epoch:")
        losses = pd.DataFrame({"epoch": range(1, len(facts["epoch_losses"]) + 1), "loss": facts["epoch_losses"]})
        st.altair_chart(alt.Chart(losses).mark_line(point=True).encode(x="epoch:Q", y="loss:Q"), width="stretch")


def dataset_view(engine) -> None:
    facts, weekly = dataset(engine.catalog, engine.settings)
    articles, with_image, customers, purchases = st.columns(4)
    articles.metric("Articles", f"{facts['articles']:,}")
    with_image.metric("With a photo", f"{facts['with_image']:,}", help=f"{facts['without_image']:,} without")
    customers.metric("Customers", f"{facts['customers']:,}",
                     help=f"{facts['customers_with_purchases']:,} with purchases")
    purchases.metric("Purchases", f"{facts['transactions']:,}")
    if facts["first_day"] is not None:
        st.caption(f"From {facts['first_day']:%d %b %Y} to {facts['last_day']:%d %b %Y}")
        chart = alt.Chart(weekly).mark_area(opacity=0.8).encode(
            x=alt.X("week:T", title=None), y=alt.Y("purchases:Q", title="purchases per week"),
            tooltip=["week:T", "purchases:Q"],
        )  # fmt: skip
        st.altair_chart(chart, width="stretch")


def insights_page() -> None:
    engine = lifecycle.engine()
    sidebar(engine)
    st.title("Insights")
    check_link({"insights_tab": TABS})
    recommendations, index, data = st.tabs(TABS, key="insights_tab", on_change="rerun", bind="query-params")
    if recommendations.open:
        with recommendations:
            if engine.collab is None:
                st.info("This dataset has no transactions, so there are no recommendations to assess.")
            else:
                with errors_shown():
                    quality(engine)
                with errors_shown():
                    reach(engine)
    if index.open:
        with index, errors_shown():
            index_and_model(engine)
    if data.open:
        with data, errors_shown():
            dataset_view(engine)


with errors_shown():
    insights_page()
