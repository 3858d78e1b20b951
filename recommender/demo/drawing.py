"""Product pictures for the demo: a type's silhouette in a colour and a pattern, drawn at twice the size
and downsampled."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from ..errors import InputError
from .simulation import Articles, random_stream
from .vocabulary import (
    COLOURS,
    GRID,
    GROUPS,
    IMAGE_SIZE,
    JPEG_QUALITY,
    PATTERNS,
    RENDER_SCALE,
    SILHOUETTES,
    Progress,
    Shape,
)

# --- images --------------------------------------------------------------------------------------------


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]) / 255)


def _blend(rgb: np.ndarray, towards: float, amount: float) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.round(rgb + (towards - rgb) * amount))


def _tones(base: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """Detail colours that stay visible on this garment colour."""
    light = _luminance(base)
    return {
        "body": tuple(int(v) for v in base),
        "pattern": _blend(base, 255, 0.7) if light < 0.55 else _blend(base, 0, 0.5),
        "shade": _blend(base, 255, 0.25) if light < 0.2 else _blend(base, 0, 0.2),
        "outline": _blend(base, 0, 0.6) if light > 0.2 else (8, 8, 8),
        "inner": (46, 46, 50) if light > 0.55 else (232, 232, 228),
        "sole": (214, 214, 208),
        "rubber": (38, 38, 38),
        "metal": (198, 172, 88),
    }


def _draw(draw: ImageDraw.ImageDraw, shape: Shape, to_px: Callable, scale: float, fill) -> None:
    xy = to_px(shape.xy)
    if shape.kind == "polygon":
        draw.polygon(xy, fill=fill)
    elif shape.kind == "ellipse":
        draw.ellipse(xy, fill=fill)
    elif shape.kind == "rect":
        draw.rectangle(xy, fill=fill)
    elif shape.kind == "rounded":
        draw.rounded_rectangle(xy, radius=shape.width * scale, fill=fill)
    elif shape.kind == "chord":
        draw.chord(xy, *shape.angles, fill=fill)
    elif shape.kind == "arc":
        draw.arc(xy, *shape.angles, fill=fill, width=round(shape.width * scale))
    elif shape.kind == "line":
        draw.line(xy, fill=fill, width=max(1, round(shape.width * scale)), joint="curve")
    else:
        raise ValueError(f"unknown shape kind {shape.kind!r}")


@lru_cache(maxsize=None)
def _silhouette_box(type_name: str) -> tuple[float, float, float, float]:
    """Bounding box (grid units) of a silhouette's body, so every type is centred and fills the frame."""
    scale = 4
    mask = Image.new("L", (GRID[0] * scale, GRID[1] * scale), 0)
    draw = ImageDraw.Draw(mask)
    for shape in SILHOUETTES[type_name]:
        if shape.tone == "body":
            _draw(draw, shape, lambda xy: [v * scale for v in xy], scale, 255)
    x0, y0, x1, y1 = mask.getbbox()
    return x0 / scale, y0 / scale, x1 / scale, y1 / scale


def _texture(pattern: str, tones: dict, size: tuple[int, int], period: float, phase: float) -> Image.Image:
    """The garment's fabric over the whole canvas: its colour with stripes / dots / checks in a contrast tone."""
    width, height = size
    y = (np.arange(height, dtype=np.float32)[:, None] + phase)
    x = (np.arange(width, dtype=np.float32)[None, :] + phase)
    fabric = np.empty((height, width, 3), np.uint8)
    fabric[:] = tones["body"]
    if pattern == "Stripe":
        fabric[(y % period < 0.38 * period)[:, 0]] = tones["pattern"]
    elif pattern == "Dot":
        stagger = (y // period) % 2 * period / 2
        dx, dy = (x + stagger) % period - period / 2, y % period - period / 2
        fabric[dx * dx + dy * dy < (0.26 * period) ** 2] = tones["pattern"]
    elif pattern == "Check":
        horizontal, vertical = y % period < 0.3 * period, x % period < 0.3 * period
        fabric[horizontal ^ vertical] = np.round((np.array(tones["body"]) + tones["pattern"]) / 2).astype(np.uint8)
        fabric[horizontal & vertical] = tones["pattern"]
    return Image.fromarray(fabric)


def _outline(mask: Image.Image, width: int) -> Image.Image:
    """The band of pixels just outside the mask (a dilation minus the mask)."""
    inside = np.asarray(mask) > 0
    grown = inside.copy()
    for shift in range(1, width + 1):
        grown[shift:] |= inside[:-shift]
        grown[:-shift] |= inside[shift:]
        grown[:, shift:] |= inside[:, :-shift]
        grown[:, :-shift] |= inside[:, shift:]
    return Image.fromarray(((grown & ~inside) * 255).astype(np.uint8))


@dataclass(frozen=True)
class Look:
    """Per-article variation, so no two pictures are identical (the defaults: a plain, centred picture)."""

    scale: float = 0.92
    dx: float = 0.0  # offset, grid units
    dy: float = 0.0
    shade: tuple[int, int, int] = (0, 0, 0)  # added to the colour's RGB
    background: int = 238  # grey level
    period: float = 7.5  # pattern repeat, grid units
    phase: float = 0.0  # pattern offset, fraction of the period


def _looks(n: int, seed: int) -> list[Look]:
    rng = random_stream(seed, "images")
    scale, dx, dy = rng.uniform(0.86, 0.98, n), rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)
    shade = rng.integers(-7, 8, (n, 3))
    background = rng.integers(232, 245, n)
    period = rng.uniform(6.0, 9.0, n)  # grid units
    phase = rng.random(n)
    return [Look(*v) for v in zip(scale, dx, dy, map(tuple, shade), background, period, phase)]


def render_article(product_type: str, colour: str, pattern: str = "Solid", index_group: str = "Ladieswear",
                   look: Look = Look()) -> Image.Image:
    """A product picture like the demo's: the silhouette of `product_type` (a product_type_name) in the
    `colour` (colour_group_name) and `pattern` (graphical_appearance_name) on a light background.

    Also handy to make query pictures, e.g. render_article("Dress", "Red").
    """
    shapes = _named(SILHOUETTES, "product type", product_type)
    rgb = _named({c.name: c.rgb for c in COLOURS}, "colour", colour)
    pattern = _named({p.name: p.name for p in PATTERNS}, "pattern", pattern)
    drawing_scale = _named({g.name: g.drawing_scale for g in GROUPS}, "index group", index_group)
    width, height = IMAGE_SIZE[0] * RENDER_SCALE, IMAGE_SIZE[1] * RENDER_SCALE
    unit = width / GRID[0]  # pixels per grid unit
    x0, y0, x1, y1 = _silhouette_box(product_type)
    fit = min(0.9 * GRID[0] / (x1 - x0), 0.9 * GRID[1] / (y1 - y0)) * look.scale * drawing_scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ox, oy = GRID[0] / 2 + look.dx, GRID[1] / 2 + look.dy

    def to_px(xy: tuple[float, ...]) -> list[float]:
        return [((v - cx) * fit + ox if i % 2 == 0 else (v - cy) * fit + oy) * unit for i, v in enumerate(xy)]

    tones = _tones(np.clip(np.array(rgb) + look.shade, 0, 255))
    canvas = Image.new("RGB", (width, height), (look.background,) * 3)
    mask = Image.new("L", (width, height), 0)
    mask_draw = ImageDraw.Draw(mask)
    for shape in shapes:
        if shape.tone == "body":
            _draw(mask_draw, shape, to_px, fit * unit, 255)
    period = look.period * unit
    canvas.paste(_texture(pattern, tones, (width, height), period, look.phase * period), mask=mask)
    canvas.paste(tones["outline"], mask=_outline(mask, RENDER_SCALE))
    draw = ImageDraw.Draw(canvas)
    for shape in shapes:
        if shape.tone != "body":
            _draw(draw, shape, to_px, fit * unit, tones[shape.tone])
    return canvas.reduce(RENDER_SCALE)


def _named(table: dict, kind: str, name: str):
    if name not in table:
        raise InputError(f"the demo has no {kind} {name!r}; it knows {', '.join(sorted(table))}")
    return table[name]


def write_images(root: Path, articles: Articles, seed: int, report: Progress) -> None:
    looks = _looks(len(articles.table), seed)
    rows = articles.table
    todo = np.flatnonzero(articles.has_image)
    step = max(1, len(todo) // 50)
    for done, row in enumerate(todo):
        image = render_article(rows["product_type_name"].iat[row], rows["colour_group_name"].iat[row],
                               rows["graphical_appearance_name"].iat[row], rows["index_group_name"].iat[row],
                               looks[row])
        article_id = rows["article_id"].iat[row]
        path = root / "images" / article_id[:3] / f"{article_id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, "JPEG", quality=JPEG_QUALITY)
        if done % step == 0:
            report(done / len(todo), f"rendering product images ({done:,}/{len(todo):,})")
