"""Insights: how well the engine does and what it is built from: recommendation quality per week and
method, catalogue coverage of recommendations, the content index, the model and the dataset."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from recommender import insights
from recommender.config import Settings
from recommender.evaluate import stored_backtest
from recommender.pipeline import run_backtest, store_for
from web import engine as lifecycle
from web.errors import errors_shown, public_message
from web.layout import check_link, sidebar
from web.text import md

TABS = ["Recommendations", "Search index and model", "Dataset"]


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
    st.caption("MAP@12 as in the H&M competition: each backtest week's buyers get 12 recommendations from "
               "models trained on the purchases before that week.")
    collab, result = engine.collab, stored_backtest(store_for(engine.settings))
    if result is None or not result.choice:
        st.info(f"No backtest was stored with this build: recommendations use the {collab.method} (the default).",
                icon=":material/info:")
        if result is not None:
            for note in result.notes:
                st.caption(md(public_message(note)))
        start_backtest(engine)
        return
    choice = result.choice
    st.markdown(f"Recommendations use the **{md(choice['method'])}**, chosen by the build's backtest over "
                f"{len(choice['weeks'])} weeks ({choice['weeks'][0]} to {choice['weeks'][-1]}): {md(choice['rule'])}.")
    weekly = result.weekly.assign(week=pd.to_datetime(result.weekly["week"]))
    chart = alt.Chart(weekly).mark_line(point=True).encode(
        x=alt.X("week:T", title="backtest week"), y=alt.Y("MAP@12:Q", title="MAP@12"),
        color=alt.Color("method:N", title="method"), tooltip=["week:T", "method:N", "MAP@12:Q", "customers:Q"],
    )  # fmt: skip
    st.altair_chart(chart, width="stretch")
    st.caption("Mean over the weeks with its 95% interval (weeks and customers resampled), and the chosen "
               "method against each row (a paired interval above 0: the chosen method is ahead).")
    st.dataframe(result.summary, hide_index=True, key="backtest_summary")
    st.caption("Which method leads in each block of 4 weeks")
    st.dataframe(result.blocks, hide_index=True, key="backtest_blocks")
    for note in result.notes:
        st.caption(md(public_message(note)))
    start_backtest(engine)


def start_backtest(engine) -> None:
    """Run the backtest again from the page: only when the operator allows builds, under the build lock."""
    if not lifecycle.build_allowed():
        st.caption(f"To backtest again, run `{lifecycle.build_command()}` (or allow it from this page with "
                   f"{lifecycle.ALLOW_BUILD}=1).")
        return
    if not st.button("Run the backtest now", icon=":material/play_arrow:"):
        return
    with st.status("Backtesting", expanded=True) as box, errors_shown():
        bar = st.progress(0.0)
        line = run_backtest(engine.settings, progress=lambda done, message: bar.progress(done, text=public_message(message)))
        box.update(label=public_message(line), state="complete", expanded=False)
    st.caption("The app switches to the new choice once it has loaded it (a few seconds).")


def merchandising(engine) -> None:
    """The rules in force today and how many results each touched today (this server process)."""
    rules = engine.rules.current()
    if engine.rules.problem:
        st.warning(public_message(engine.rules.problem) + "; the last good rules stay in force.", icon=":material/rule:")
    if not rules:
        return
    st.subheader("Merchandising rules")
    today = str(pd.Timestamp.today().date())
    st.dataframe(pd.DataFrame({
        "rule": [r.name for r in rules], "action": [r.action for r in rules],
        "from": [str(r.start or "") for r in rules], "to": [str(r.end or "") for r in rules],
        "results touched today": [engine.rules.touched.get((today, r.name), 0) for r in rules],
    }), hide_index=True, key="rules_table")  # fmt: skip


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
            with errors_shown():
                merchandising(engine)
    if index.open:
        with index, errors_shown():
            index_and_model(engine)
    if data.open:
        with data, errors_shown():
            dataset_view(engine)


with errors_shown():
    insights_page()
