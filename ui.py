"""What both pages share: the engine (built on the first run, loaded once per process), the sidebar,
the product grid and in-page errors. Pages stay thin: they read widgets and ask the engine."""
from __future__ import annotations

import io
import logging
import re
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw

from recommender.config import Settings
from recommender.errors import ArtifactError, LookbookError
from recommender.images import load_image
from recommender.pipeline import Engine, build, open_engine

log = logging.getLogger("lookbook.app")

SEARCH_PAGE = "app.py"
CUSTOMERS_PAGE = "pages/1_Customers.py"
GRID_COLUMNS = 4

# Tiles share one shape whatever the photo's size, so rows line up like a shop's listing.
CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
[class*="st-key-tile_"] { gap: 0.15rem; padding-bottom: 1rem; }
[class*="st-key-tile_"] [data-testid="stImage"] img {
  aspect-ratio: 2 / 3; object-fit: contain; width: 100%; background: #f0efed; border-radius: 6px;
  margin-bottom: 0.35rem;
}
[class*="st-key-tile_"] button { min-height: 1.8rem; padding: 0 0.15rem; }
[class*="st-key-tile_"] button p { font-size: 0.85rem; }
</style>
"""


def page_setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Lookbook", page_icon=":material/checkroom:", layout="wide")
    st.html(CSS)


# --- the engine ----------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the catalogue, the model and the indexes…")
def _open(settings: Settings) -> Engine:
    return open_engine(settings)


@st.cache_resource(show_spinner=False)
def _build_lock() -> threading.Lock:
    return threading.Lock()


def engine() -> Engine:
    """The engine for the configured settings, shared read-only by every session of this process.

    The embedded demo is generated and built on the first run; another dataset whose artifacts are
    missing or stale is only built when the user asks (on the full H&M data that takes long on a CPU).
    """
    settings = Settings()
    demo_missing = settings.is_demo and not (settings.data_dir / "articles.csv").is_file()
    if not demo_missing:
        try:
            return _open(settings)
        except ArtifactError as exc:
            if not settings.is_demo:
                problem = st.empty()
                with problem.container():
                    st.error(str(exc), icon=":material/error:")
                    build_now = st.button("Build it now", type="primary", help="Runs that command here")
                if not build_now:
                    st.stop()
                problem.empty()
    _build(settings)
    return _open(settings)


def _build(settings: Settings) -> None:
    """The build with its progress in the page; once done, the page renders as on any later start."""
    setup = st.empty()
    with setup.container():
        st.title("Lookbook")
        st.markdown(
            f"Building **{md(settings.data_dir.name)}**: the catalogue is read, the CLIP model is loaded "
            "(or, offline, trained on this catalogue), every article is embedded and indexed, and the "
            "customer model is fitted. This happens once per dataset and model; later starts take seconds."
        )
        with st.status("Building the catalogue, the model and the indexes", expanded=True) as box:
            bar = st.progress(0.0, text="starting")
            lock = _build_lock()
            if not lock.acquire(blocking=False):
                bar.progress(0.0, text="another session is building these already; waiting for it")
                lock.acquire()
            try:
                build(settings, log=log.info,
                      progress=lambda done, message: bar.progress(done, text=f"{message} ({done:.0%})"))
            except BaseException:
                box.update(label="The build stopped", state="error")
                raise
            finally:
                lock.release()
    setup.empty()


@st.cache_resource(show_spinner=False)
def engine_status(settings: Settings) -> dict:
    return _open(settings).status()


@st.cache_resource(show_spinner=False)
def filter_values(settings: Settings) -> dict[str, list[str]]:
    return _open(settings).search.filter_values()


@st.cache_resource(max_entries=32, show_spinner=False)
def photo(data: bytes, name: str) -> Image.Image:
    """A user's photo decoded once (InputError naming the file when it is unusable); shared read-only."""
    return load_image(data, name=name)


@st.cache_data(max_entries=256, show_spinner=False)
def predicted_attributes(settings: Settings, data: bytes, name: str) -> dict[str, list[tuple[str, float]]]:
    return _open(settings).search.predict_attributes(photo(data, name))


# --- layout --------------------------------------------------------------------------------------


def sidebar(engine: Engine):
    """Navigation on top, what is loaded at the bottom; returns the space between for the page's controls."""
    status = engine_status(engine.settings)
    with st.sidebar:
        st.page_link(SEARCH_PAGE, label="Search", icon=":material/search:")
        st.page_link(CUSTOMERS_PAGE, label="Customers", icon=":material/group:")
        controls = st.container()
        st.divider()
        st.markdown(f"**Dataset** {md(status['dataset'])}")
        st.caption(md(status["data_dir"]))
        st.markdown(f"**Model** {md(status['model'])}")
        st.caption(md(status["pretrained"]))
        st.markdown(
            f"**{status['articles']:,} articles indexed** — {status['indexed_by_image']:,} by image, "
            f"{status['indexed_by_text']:,} by text"
        )
        if status["customers"]:
            st.markdown(f"**{status['customers']:,} customers** with purchases")
        if engine.notices:
            with st.expander(f"Notices ({len(engine.notices)})", icon=":material/info:"):
                for notice in engine.notices:
                    st.caption(md(notice))
    return controls


@contextmanager
def errors_shown() -> Iterator[None]:
    """Whatever goes wrong inside is shown in the page and the rest of the page still renders."""
    try:
        yield
    except LookbookError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # a bug: say so briefly, keep the details out of the way
        log.exception("unexpected error")
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}", icon=":material/bug_report:")
        with st.expander("Details for a bug report"):
            st.code(traceback.format_exc(), language=None)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#$~|])")


def add_to_list(key: str, item: str) -> None:
    """Append to a list kept in session state (query articles, a new shopper's picks), once."""
    if item not in st.session_state[key]:
        st.session_state[key] = [*st.session_state[key], item]


def remove_from_list(key: str, item: str) -> None:
    st.session_state[key] = [x for x in st.session_state[key] if x != item]


def md(text: object) -> str:
    """Catalogue text shown literally inside markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


# --- product grid --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A button under each tile; ``callback(article_id)`` runs before the rerun."""

    label: str
    callback: Callable[[str], None]
    icon: str | None = None


@st.cache_resource(show_spinner=False)
def placeholder_tile() -> bytes:
    """The tile for an article without a photo (PNG, 2:3 like the photos)."""
    tile = Image.new("RGB", (300, 450), "#eceae6")
    draw = ImageDraw.Draw(tile)
    draw.rounded_rectangle((110, 175, 190, 255), radius=12, outline="#b9b5ad", width=4)
    draw.line((110, 235, 135, 210, 160, 230, 175, 215, 190, 230), fill="#b9b5ad", width=4)
    draw.ellipse((165, 187, 179, 201), outline="#b9b5ad", width=3)
    draw.text((150, 287), "no photo", fill="#8d887f", anchor="mm", font_size=22)
    out = io.BytesIO()
    tile.save(out, format="PNG")
    return out.getvalue()


def product_grid(
    items: pd.DataFrame,
    engine: Engine,
    key: str,
    *,
    detail: Callable[[object], str] | None = None,
    actions: tuple[Action, ...] = (),
    columns: int = GRID_COLUMNS,
    compact: bool = False,
) -> None:
    """Rows of product tiles: photo (or placeholder), name, type · colour, ``detail(row)``, buttons.

    ``items`` needs article_id; names and types come from the catalogue when the frame lacks them.
    """
    items = with_article_columns(items, engine)
    rows = list(items.itertuples(index=False))
    for start in range(0, len(rows), columns):
        for offset, (cell, row) in enumerate(zip(st.columns(columns), rows[start : start + columns])):
            position = start + offset
            with cell.container(key=f"tile_{key}_{position}"):
                _tile(row, engine, f"{key}_{position}", detail, actions, compact)


def _tile(row, engine: Engine, key: str, detail, actions: tuple[Action, ...], compact: bool) -> None:
    path = engine.catalog.image_path(row.article_id)
    if path is not None and path.is_file():
        st.image(str(path), width="stretch", alt=str(row.prod_name))
    else:
        st.image(placeholder_tile(), width="stretch", alt=f"{row.prod_name}: no photo")
    st.markdown(f"**{md(row.prod_name)}**")
    if not compact:
        st.caption(f"{md(row.product_type_name)} · {md(row.colour_group_name)}")
        if getattr(row, "indexed_by", "image") == "text":
            st.caption("no photo · found by its description")
    if detail is not None:
        st.caption(detail(row))
    if actions:
        with st.container(horizontal=True, gap="small"):
            for action in actions:
                st.button(
                    action.label, key=f"{key}_{action.label}", icon=action.icon, on_click=action.callback,
                    args=(row.article_id,), type="tertiary", width="content",
                )


ARTICLE_COLUMNS = ["prod_name", "product_type_name", "colour_group_name"]


def with_article_columns(items: pd.DataFrame, engine: Engine) -> pd.DataFrame:
    missing = [c for c in ARTICLE_COLUMNS if c not in items.columns]
    if not missing:
        return items
    rows = engine.catalog.article_rows(items["article_id"])
    extra = engine.catalog.articles[missing].iloc[rows].reset_index(drop=True)
    return pd.concat([items.reset_index(drop=True), extra], axis=1)


def articles(article_ids, engine: Engine) -> pd.DataFrame:
    """Catalogue rows for these ids, in this order (for grids of picked items)."""
    return with_article_columns(pd.DataFrame({"article_id": list(article_ids)}), engine)
