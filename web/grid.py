"""Product tiles in a wrapping row: thumbnail (or a placeholder), name, type · colour, a detail line, buttons.

Thumbnails are made once per photo file and kept, for every session, as small JPEG data URLs: a rerun
neither decodes a photo nor makes Streamlit re-read and register it, and the browser gets each tile's
picture inside the page update instead of asking for it afterwards. A photo that cannot be decoded gets
the placeholder tile, never a broken grid.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw

from recommender.catalog import Catalog
from recommender.errors import InputError
from recommender.images import thumbnail_for_model

from .text import md

log = logging.getLogger("lookbook.app")

TILE_WIDTH = 220  # pixels on screen: four a row beside the sidebar on a laptop, fewer on a phone
COMPACT_TILE_WIDTH = 100
TILE_SIZE = (300, 450)  # 2:3 like the photos; about twice a tile's width on screen, for sharp HiDPI
THUMBNAILS_KEPT = 20_000  # a few KB each, shared by every session
ARTICLE_COLUMNS = ["prod_name", "product_type_name", "colour_group_name"]


@dataclass(frozen=True)
class Action:
    """A button under each tile; ``callback(article_id)`` runs before the rerun. ``label_for(row)``: the
    button's label for that tile, None for no button there (default: ``label`` on every tile)."""

    label: str
    callback: Callable[[str], None]
    icon: str | None = None
    label_for: Callable[[object], str | None] | None = None


def data_url(image: Image.Image) -> str:
    out = io.BytesIO()
    # JPEG over WebP: a few KB more a tile, but about a seventh of the time to make a tile's first showing.
    image.convert("RGB").save(out, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


@st.cache_resource(show_spinner=False)
def placeholder_tile() -> str:
    """The tile for an article without a (usable) photo (2:3 like the photos)."""
    tile = Image.new("RGB", TILE_SIZE, "#eceae6")
    draw = ImageDraw.Draw(tile)
    draw.rounded_rectangle((110, 175, 190, 255), radius=12, outline="#b9b5ad", width=4)
    draw.line((110, 235, 135, 210, 160, 230, 175, 215, 190, 230), fill="#b9b5ad", width=4)
    draw.ellipse((165, 187, 179, 201), outline="#b9b5ad", width=3)
    draw.text((150, 287), "no photo", fill="#8d887f", anchor="mm", font_size=22)
    return data_url(tile)


def thumbnail(path: Path) -> str | None:
    """The photo at ``path`` as a small JPEG data URL, or None when it cannot be decoded."""
    try:
        image = thumbnail_for_model(path, max_side=max(TILE_SIZE))  # JPEGs decoded at a reduced scale
        image.thumbnail(TILE_SIZE, Image.Resampling.LANCZOS)
        return data_url(image)
    except (InputError, OSError, ValueError) as exc:
        log.warning("photo %s cannot be shown: %s", path.name, exc)
        return None


class Thumbnails:
    """Process-wide LRU: (catalogue folder, article id) → (photo path, its mtime, thumbnail). A hit
    costs a stat (a replaced photo is read again), not a catalogue lookup or a decode."""

    def __init__(self, kept: int):
        self.kept = kept
        self.entries: OrderedDict[tuple[str, str], tuple[Path | None, int | None, str | None]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, catalog: Catalog, article_id: str) -> str | None:
        key = (str(catalog.root), article_id)
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
        path = entry[0] if entry is not None else catalog.image_path(article_id)
        modified_ns = _modified_ns(path)
        if entry is not None and entry[1] == modified_ns:
            return entry[2]
        photo = None if modified_ns is None else thumbnail(path)
        with self.lock:
            self.entries[key] = (path, modified_ns, photo)
            self.entries.move_to_end(key)
            while len(self.entries) > self.kept:
                self.entries.popitem(last=False)
        return photo


def _modified_ns(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:  # listed at load, gone since
        return None


_thumbnails = Thumbnails(THUMBNAILS_KEPT)


def article_photo(catalog: Catalog, article_id: str) -> str | None:
    return _thumbnails.get(catalog, article_id)


def product_grid(
    items: pd.DataFrame,
    catalog: Catalog,
    key: str,
    *,
    detail: Callable[[object], str] | None = None,
    actions: tuple[Action, ...] = (),
    compact: bool = False,
) -> None:
    """Tiles keyed ``tile_<key>_<position>`` in one row that wraps (as many a row as the page's width
    holds: one block for the grid, not one per row and column); ``items`` needs article_id (names and
    types come from the catalogue when the frame lacks them); ``detail(row)`` returns markdown."""
    items = with_article_columns(items, catalog)
    with st.container(horizontal=True, gap="medium", key=f"grid_{key}"):
        for position, row in enumerate(items.itertuples(index=False)):
            with st.container(key=f"tile_{key}_{position}", width=COMPACT_TILE_WIDTH if compact else TILE_WIDTH):
                _tile(row, catalog, f"{key}_{position}", detail, actions, compact)


# Catalogue column → the word a shopper knows it by, for "why this result".
FIELD_LABELS = {"prod_name": "name", "product_type_name": "type", "product_group_name": "group",
                "colour_group_name": "colour", "perceived_colour_value_name": "tone",
                "perceived_colour_master_name": "colour", "graphical_appearance_name": "pattern",
                "index_group_name": "for", "index_name": "line", "section_name": "section",
                "garment_group_name": "garment", "detail_desc": "description"}  # fmt: skip


def why_found(row) -> str:
    """The words a search matched, per field, and whether the photo looks alike ("" when neither)."""
    matched = getattr(row, "matched", None)
    by_label: dict[str, list[str]] = {}  # two colour columns read as one "colour" to a shopper
    for field, found in (matched.items() if isinstance(matched, dict) else ()):
        words = by_label.setdefault(FIELD_LABELS.get(field, field), [])
        words += [str(w) for w in found if str(w) not in words]
    words = [f"{md(label)}: {md(', '.join(found))}" for label, found in by_label.items() if found]
    text = "matched " + "; ".join(words) if words else ""
    if getattr(row, "looks_alike", False) is True:
        text = f"{text} · looks alike" if text else "looks alike"
    if getattr(row, "filled", False) is True:
        text = "no word matched · shown for its looks"
    return text


def _tile(row, catalog: Catalog, key: str, detail, actions: tuple[Action, ...], compact: bool) -> None:
    photo = article_photo(catalog, row.article_id)
    alt = str(row.prod_name) if photo is not None else f"{row.prod_name}: no photo"
    picture = f'<img class="tile-photo" src="{photo or placeholder_tile()}" alt="{html.escape(alt, quote=True)}">'
    lines = []
    if not compact:
        lines.append(f"{md(row.product_type_name)} · {md(row.colour_group_name)}")
        lines.append(why_found(row))
        if getattr(row, "indexed_by", "image") == "text":
            lines.append("no photo · found by its description")
        if getattr(row, "available", True) is False:
            lines.append("sold out")
    for_you = getattr(row, "for_you", "")
    if for_you:  # a shopper's search: why it suits them
        lines.append(md(for_you))
    touched = getattr(row, "rules", None)
    if touched:  # a merchandising rule moved it: said on every tile it touched
        lines.append("by rule: " + ", ".join(md(name) for name in touched))
    if detail is not None:
        lines.append(detail(row))
    # Photo, name and small print in one element (every element costs the server and the browser a
    # render): our own <img> (the alt HTML-escaped), then markdown whose catalogue text md() escapes.
    details = "  \n".join(f":small[:gray[{line}]]" for line in lines if line)
    text = f"**{md(row.prod_name)}**" + (f"  \n{details}" if details else "")
    st.markdown(f"{picture}\n\n{text}", unsafe_allow_html=True)
    for action in actions:  # a line each: a tile is too narrow for two side by side
        label = action.label if action.label_for is None else action.label_for(row)
        if label is not None:
            st.button(label, key=f"{key}_{action.label}", icon=action.icon, on_click=action.callback,
                      args=(row.article_id,), type="tertiary", width="content")


def with_article_columns(items: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    missing = [c for c in ARTICLE_COLUMNS if c not in items.columns]
    if not missing:
        return items
    rows = catalog.article_rows(items["article_id"])
    extra = catalog.articles[missing].iloc[rows].reset_index(drop=True)
    return pd.concat([items.reset_index(drop=True), extra], axis=1)


def articles(article_ids, catalog: Catalog) -> pd.DataFrame:
    """Catalogue rows for these ids, in this order (for grids of picked items)."""
    return with_article_columns(pd.DataFrame({"article_id": list(article_ids)}), catalog)
