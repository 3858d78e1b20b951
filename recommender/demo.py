"""Deterministic demo dataset in the exact H&M Kaggle format, with rendered product images.

`generate_demo` writes articles.csv, customers.csv, transactions_train.csv and
images/<first 3 digits>/<article_id>.jpg for a small catalogue whose pictures (silhouette, colour,
pattern) agree with the metadata, and whose customers have planted tastes (index group, product types,
colours) that drive two years of seasonal purchases, so content search and collaborative filtering both
have a real signal to find. `generate_transactions_only` writes the same CSV format at H&M scale (no
images) for benchmarks. The same options and seed give byte-identical files. `planted_tastes` tells what
each customer was made to like (ground truth for evaluations), `render_article` draws a product picture.

Vocabulary, codes and department rows are real H&M values (taken from the Kaggle articles.csv).
A dataset is written into a temporary sibling folder and renamed into place with a `demo.json` manifest,
so a half-written one is never mistaken for a complete one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from .catalog import ARTICLE_COLUMNS, TRANSACTION_COLUMNS
from .errors import DataError, InputError

Progress = Callable[[float, str], None]

MANIFEST = "demo.json"
FORMAT_VERSION = 1
# Kaggle's full H&M dataset.
HM_ARTICLES, HM_CUSTOMERS, HM_TRANSACTIONS = 105_542, 1_371_980, 31_788_324
TRANSACTIONS_PER_CUSTOMER = 50

TRANSACTIONS_HEADER = (",".join(TRANSACTION_COLUMNS) + "\n").encode()

# Two years of sales, like the Kaggle transactions; "periods" of 30 days bound article lifetimes.
DAYS = pd.date_range("2018-09-20", "2020-09-22", freq="D")
PERIOD_DAYS = 30
N_PERIODS = -(-len(DAYS) // PERIOD_DAYS)
PRICE_SCALE = 590  # Kaggle prices are the shelf price divided by 590 (24.99 -> 0.0423559322033898)

IMAGE_SIZE = (128, 192)  # portrait, like H&M's 171 x 256 photos
RENDER_SCALE = 2  # draw at twice the size, then downsample: smooth edges without antialiased primitives
GRID = (100, 150)  # silhouettes are drawn on this grid, fitted into the image
JPEG_QUALITY = 90


# --- vocabulary ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Colour:
    code: str
    name: str
    value_id: int
    value_name: str
    master_id: int
    master_name: str
    rgb: tuple[int, int, int]
    weight: float  # share of the catalogue: H&M sells far more black than purple


COLOURS = (
    Colour("09", "Black", 4, "Dark", 5, "Black", (28, 28, 30), 3.0),
    Colour("10", "White", 3, "Light", 9, "White", (252, 252, 250), 2.0),
    Colour("07", "Grey", 1, "Dusty Light", 12, "Grey", (138, 138, 138), 1.2),
    Colour("13", "Beige", 2, "Medium Dusty", 11, "Beige", (214, 190, 150), 1.2),
    Colour("17", "Yellowish Brown", 2, "Medium Dusty", 13, "Brown", (150, 98, 42), 0.8),
    Colour("42", "Red", 5, "Bright", 18, "Red", (212, 28, 38), 1.0),
    Colour("43", "Dark Red", 4, "Dark", 18, "Red", (112, 18, 34), 1.0),
    Colour("52", "Pink", 2, "Medium Dusty", 4, "Pink", (240, 150, 182), 1.0),
    Colour("32", "Orange", 7, "Medium", 3, "Orange", (246, 128, 28), 0.8),
    Colour("22", "Yellow", 7, "Medium", 8, "Yellow", (246, 214, 40), 0.8),
    Colour("19", "Greenish Khaki", 4, "Dark", 20, "Khaki green", (108, 112, 58), 0.8),
    Colour("92", "Green", 1, "Dusty Light", 19, "Green", (46, 150, 70), 0.8),
    Colour("71", "Light Blue", 1, "Dusty Light", 2, "Blue", (140, 186, 232), 1.0),
    Colour("72", "Blue", 2, "Medium Dusty", 2, "Blue", (38, 88, 200), 1.0),
    Colour("73", "Dark Blue", 4, "Dark", 2, "Blue", (24, 34, 86), 1.5),
    Colour("62", "Purple", 2, "Medium Dusty", 6, "Lilac Purple", (124, 58, 160), 0.8),
)


@dataclass(frozen=True)
class Pattern:
    no: int
    name: str
    adjective: str  # used in prod_name and detail_desc
    weight: float


PATTERNS = (
    Pattern(1010016, "Solid", "", 0.55),
    Pattern(1010017, "Stripe", "striped", 0.15),
    Pattern(1010006, "Dot", "dotted", 0.15),
    Pattern(1010004, "Check", "checked", 0.15),
)


@dataclass(frozen=True)
class IndexGroup:
    no: int
    name: str
    garments: tuple[str, str]  # (index_code, index_name) for clothes
    accessories: tuple[str, str]  # ... for shoes and accessories
    weight: float  # share of customers
    price_factor: float
    drawing_scale: float  # children's clothes are drawn smaller
    age: tuple[float, float]  # customers' age: mean, standard deviation


GROUPS = (
    IndexGroup(1, "Ladieswear", ("A", "Ladieswear"), ("C", "Ladies Accessories"), 0.40, 1.0, 1.0, (36, 12)),
    IndexGroup(2, "Divided", ("D", "Divided"), ("D", "Divided"), 0.20, 0.75, 1.0, (22, 4)),
    IndexGroup(3, "Menswear", ("F", "Menswear"), ("F", "Menswear"), 0.18, 1.0, 1.0, (35, 12)),
    IndexGroup(4, "Baby/Children", ("H", "Children Sizes 92-140"), ("J", "Children Accessories, Swimwear"),
               0.12, 0.6, 0.8, (33, 6)),
    IndexGroup(26, "Sport", ("S", "Sport"), ("S", "Sport"), 0.10, 1.1, 1.0, (30, 9)),
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """One drawing primitive on the 100 x 150 grid.

    tone "body" shapes form the garment (filled with its colour and pattern, outlined); other tones are
    details drawn on top: shade (darker garment colour), inner (lining / opening), sole, rubber, metal.
    """

    kind: str  # polygon, ellipse, rect, rounded, chord, arc, line
    xy: tuple[float, ...]
    tone: str = "body"
    width: float = 0.0  # line / arc width, rounded-rect radius
    angles: tuple[float, float] = (0.0, 360.0)


def _poly(*xy: float, tone: str = "body") -> Shape:
    return Shape("polygon", xy, tone)


def _line(*xy: float, width: float, tone: str = "shade") -> Shape:
    return Shape("line", xy, tone, width)


def _box(kind: str, x0: float, y0: float, x1: float, y1: float, tone: str = "body", **extra) -> Shape:
    return Shape(kind, (x0, y0, x1, y1), tone, **extra)


_LONG_SLEEVED = _poly(38, 20, 20, 26, 9, 108, 20, 112, 28, 52, 28, 124, 72, 124, 72, 52, 80, 112, 91, 108,
                      80, 26, 62, 20, 50, 27)  # fmt: skip
_KNIT_TRIMS = (
    _box("rect", 28, 117, 72, 124, tone="shade"),
    _line(9.5, 104, 20.5, 108, width=4),
    _line(90.5, 104, 79.5, 108, width=4),
)
SILHOUETTES: dict[str, tuple[Shape, ...]] = {
    "T-shirt": (
        _poly(38, 20, 20, 26, 5, 50, 17, 59, 27, 47, 27, 124, 73, 124, 73, 47, 83, 59, 95, 50, 80, 26, 62, 20,
              50, 28),
        _line(38, 20, 50, 28, 62, 20, width=2.2),
    ),
    "Sweater": (_LONG_SLEEVED, _line(38, 20, 50, 27, 62, 20, width=2.5), *_KNIT_TRIMS),
    "Hoodie": (
        _LONG_SLEEVED,
        _box("ellipse", 31, 2, 69, 38),  # the hood
        *_KNIT_TRIMS,
        _box("ellipse", 39, 9, 61, 33, tone="inner"),
        _poly(35, 92, 65, 92, 70, 116, 30, 116, tone="shade"),  # kangaroo pocket
        _line(45, 34, 44, 56, width=1.2, tone="inner"),
        _line(55, 34, 56, 56, width=1.2, tone="inner"),
    ),
    "Jacket": (
        _poly(36, 18, 18, 25, 7, 112, 19, 116, 27, 55, 27, 128, 73, 128, 73, 55, 81, 116, 93, 112, 82, 25, 64, 18),
        _poly(43, 18, 57, 18, 53, 128, 47, 128, tone="inner"),  # open front
        _poly(43, 18, 36, 19, 38, 44, 47, 62, tone="shade"),  # lapels
        _poly(57, 18, 64, 19, 62, 44, 53, 62, tone="shade"),
        _box("ellipse", 56, 75, 59, 78, tone="rubber"),
        _box("ellipse", 55.5, 95, 58.5, 98, tone="rubber"),
        _line(31, 100, 41, 100, width=2),
        _line(59, 100, 69, 100, width=2),
    ),
    "Trousers": (
        _box("rect", 30, 16, 70, 25),
        _poly(30, 24, 25, 140, 45, 140, 50, 56, 55, 140, 75, 140, 70, 24),
        _box("rect", 30, 16, 70, 24, tone="shade"),
        _line(50, 25, 50, 48, width=1),
    ),
    "Shorts": (
        _box("rect", 27, 40, 73, 49),
        _poly(27, 48, 21, 100, 44, 103, 50, 74, 56, 103, 79, 100, 73, 48),
        _box("rect", 27, 40, 73, 48, tone="shade"),
        _line(50, 49, 50, 66, width=1),
    ),
    "Skirt": (
        _box("rect", 33, 28, 67, 36),
        _poly(33, 35, 17, 112, 83, 112, 67, 35),
        _box("rect", 33, 28, 67, 35, tone="shade"),
        _line(43, 37, 37, 110, width=1),
        _line(57, 37, 63, 110, width=1),
    ),
    "Dress": (
        _poly(37, 8, 40, 8, 41, 27, 38, 27),  # shoulder straps
        _poly(60, 8, 63, 8, 62, 27, 59, 27),
        _poly(36, 26, 44, 26, 50, 37, 56, 26, 64, 26, 61, 60, 39, 60),
        _poly(39, 59, 61, 59, 85, 140, 15, 140),
        _line(39, 60, 61, 60, width=2),
    ),
    "Sneakers": (
        _poly(12, 100, 12, 122, 90, 122, 92, 114, 84, 108, 64, 100, 52, 90, 40, 88, 26, 92),
        _box("rect", 10, 121, 93, 130, tone="sole"),
        _box("rect", 10, 129, 93, 131, tone="rubber"),
        _line(44, 93, 50, 88, width=1.5, tone="sole"),
        _line(49, 96, 55, 91, width=1.5, tone="sole"),
        _line(54, 99, 60, 94, width=1.5, tone="sole"),
        _line(78, 106, 80, 121, width=1.2),
    ),
    "Boots": (
        _poly(28, 30, 55, 30, 57, 92, 86, 106, 88, 124, 24, 124),
        _box("rect", 22, 124, 90, 131, tone="rubber"),
        _box("rect", 22, 124, 38, 137, tone="rubber"),  # block heel
        _box("rect", 28, 30, 55, 36, tone="shade"),
        _line(55, 40, 57, 88, width=1.2),
    ),
    "Bag": (
        _box("rounded", 18, 58, 82, 128, width=7),
        _box("arc", 30, 28, 70, 88, width=5, angles=(180, 360)),  # handle
        _poly(18, 58, 82, 58, 82, 78, 50, 90, 18, 78, tone="shade"),  # flap
        _box("rect", 46, 84, 54, 92, tone="metal"),
    ),
    "Hat/beanie": (
        _box("chord", 20, 36, 80, 116, angles=(180, 360)),  # crown
        _box("rect", 18, 74, 82, 100),  # turn-up
        _box("ellipse", 41, 24, 59, 42),  # pompom
        _box("rect", 18, 74, 82, 79, tone="shade"),
        *(_line(x, 80, x, 99, width=1) for x in range(22, 80, 5)),  # rib knit
    ),
}

# (department_no, department_name, section_no, section_name, garment_group_no, garment_group_name)
Department = tuple[int, str, int, str, int, str]


@dataclass(frozen=True)
class ProductType:
    no: int
    name: str
    product_group: str
    noun: str
    styles: tuple[str, ...]  # prod_name = style + pattern + noun
    descriptions: tuple[str, ...]  # detail_desc = pattern + noun + description
    price: float  # shelf price, before the /590 scaling
    summer: float  # +1 sells in summer, -1 in winter
    weight: float  # share of products
    departments: dict[str, Department]  # index_code -> the real H&M department row

    @property
    def is_accessory(self) -> bool:
        return self.product_group in ("Shoes", "Accessories")


PRODUCT_TYPES = (
    ProductType(255, "T-shirt", "Garment Upper body", "T-shirt",
                ("Regular fit", "Oversized", "Relaxed fit", "Slim fit", "Boxy", "Cropped"),
                (" in soft cotton jersey with a round neckline and short sleeves.",
                 " in organic cotton jersey with a ribbed neckline, dropped shoulders and short sleeves."),
                9.99, 0.6, 1.4,
                {"A": (1676, "Jersey Basic", 16, "Womens Everyday Basics", 1002, "Jersey Basic"),
                 "D": (1640, "Tops Fancy Jersey", 53, "Divided Collection", 1005, "Jersey Fancy"),
                 "F": (5882, "Jersey Fancy", 55, "Contemporary Street", 1005, "Jersey Fancy"),
                 "H": (7616, "Kids Girl Jersey Fancy", 76, "Kids Girl", 1005, "Jersey Fancy"),
                 "S": (8316, "Ladies Sport Bras", 5, "Ladies H&M Sport", 1005, "Jersey Fancy")}),
    ProductType(252, "Sweater", "Garment Upper body", "jumper",
                ("Fine-knit", "Rib-knit", "Oversized", "Wool-blend", "Cable-knit"),
                (" in a soft knit with a round neckline, long sleeves and ribbing at the cuffs and hem.",
                 " in a cotton-blend knit with dropped shoulders, long sleeves and a ribbed hem."),
                24.99, -0.6, 1.1,
                {"A": (1626, "Knitwear", 15, "Womens Everyday Collection", 1003, "Knitwear"),
                 "D": (1647, "Tops Knitwear", 53, "Divided Collection", 1003, "Knitwear"),
                 "F": (5878, "Knitwear", 20, "Contemporary Smart", 1003, "Knitwear"),
                 "H": (7658, "Kids Boy Knitwear", 46, "Kids Boy", 1003, "Knitwear"),
                 "S": (8316, "Ladies Sport Bras", 5, "Ladies H&M Sport", 1005, "Jersey Fancy")}),
    ProductType(308, "Hoodie", "Garment Upper body", "hoodie",
                ("Relaxed", "Oversized", "Cotton", "Fleece", "Cropped"),
                (" in sweatshirt fabric with a lined drawstring hood, a kangaroo pocket and ribbed cuffs and hem.",
                 " in soft fleece with a drawstring hood, long sleeves and a large front pocket."),
                24.99, -0.5, 0.8,
                {"A": (1676, "Jersey Basic", 16, "Womens Everyday Basics", 1002, "Jersey Basic"),
                 "D": (1643, "Basic 1", 51, "Divided Basics", 1002, "Jersey Basic"),
                 "F": (5882, "Jersey Fancy", 55, "Contemporary Street", 1005, "Jersey Fancy"),
                 "H": (7648, "Kids Boy Jersey Fancy", 46, "Kids Boy", 1005, "Jersey Fancy"),
                 "S": (8316, "Ladies Sport Bras", 5, "Ladies H&M Sport", 1005, "Jersey Fancy")}),
    ProductType(262, "Jacket", "Garment Upper body", "jacket",
                ("Padded", "Utility", "Bomber", "Twill", "Corduroy", "Cotton"),
                (" in woven fabric with a collar, an open front, buttons and welt pockets.",
                 " in cotton twill with notch lapels, an open front and long sleeves."),
                49.99, -0.9, 0.9,
                {"A": (1201, "Outwear", 19, "Womens Jackets", 1007, "Outdoor"),
                 "D": (1244, "Outdoor/Blazers", 53, "Divided Collection", 1007, "Outdoor"),
                 "F": (5262, "Jacket Smart", 31, "Mens Outerwear", 1007, "Outdoor"),
                 "H": (7852, "Kids Boy Outdoor", 45, "Kids Outerwear", 1007, "Outdoor"),
                 "S": (8397, "Ladies Sport Woven", 5, "Ladies H&M Sport", 1001, "Unknown")}),
    ProductType(272, "Trousers", "Garment Lower body", "trousers",
                ("Wide", "Straight", "Slim-fit", "Tailored", "Relaxed", "Pull-on"),
                (" in woven fabric with a regular waist, zip fly and button, side pockets and long legs.",
                 " in a soft weave with an elasticated waist, side pockets and straight legs."),
                24.99, -0.2, 1.4,
                {"A": (1722, "Trouser", 15, "Womens Everyday Collection", 1009, "Trousers"),
                 "D": (1747, "Trousers", 53, "Divided Collection", 1009, "Trousers"),
                 "F": (5686, "Trouser", 20, "Contemporary Smart", 1009, "Trousers"),
                 "H": (7956, "Kids Boy Denim", 46, "Kids Boy", 1016, "Trousers Denim"),
                 "S": (8310, "Ladies Sport Bottoms", 5, "Ladies H&M Sport", 1005, "Jersey Fancy")}),
    ProductType(274, "Shorts", "Garment Lower body", "shorts",
                ("Chino", "Linen-blend", "Sweatshirt", "Bermuda", "Cargo", "High-waisted"),
                (" in woven cotton with a regular waist, zip fly, side pockets and short legs.",
                 " in a soft weave with an elasticated drawstring waist and side pockets."),
                14.99, 1.0, 0.8,
                {"A": (1723, "Shorts", 15, "Womens Everyday Collection", 1025, "Shorts"),
                 "D": (1745, "Shorts", 53, "Divided Collection", 1025, "Shorts"),
                 "F": (5687, "Shorts", 20, "Contemporary Smart", 1025, "Shorts"),
                 "H": (7655, "Kids Boy Shorts", 46, "Kids Boy", 1025, "Shorts"),
                 "S": (8310, "Ladies Sport Bottoms", 5, "Ladies H&M Sport", 1005, "Jersey Fancy")}),
    ProductType(275, "Skirt", "Garment Lower body", "skirt",
                ("A-line", "Pleated", "Mini", "Midi", "Flared"),
                (" in woven fabric with a high waist, a concealed zip in one side and a flared hem.",
                 " in soft jersey with an elasticated waist and a gently flared hem."),
                19.99, 0.5, 0.7,
                {"A": (1422, "Skirt", 15, "Womens Everyday Collection", 1012, "Skirts"),
                 "D": (1444, "Skirts", 53, "Divided Collection", 1012, "Skirts"),
                 "H": (7613, "Kids Girl Dresses", 76, "Kids Girl", 1014, "Dresses/Skirts girls")}),
    ProductType(265, "Dress", "Garment Full body", "dress",
                ("Strappy", "Slip", "Midi", "Maxi", "Flared", "Sleeveless"),
                (" in woven fabric with narrow shoulder straps, a V-neck, a seam at the waist and a flared skirt.",
                 " with a V-neckline, thin adjustable shoulder straps and a gently flared skirt."),
                29.99, 0.6, 1.4,
                {"A": (1322, "Dress", 15, "Womens Everyday Collection", 1013, "Dresses Ladies"),
                 "D": (1344, "Dresses", 53, "Divided Collection", 1013, "Dresses Ladies"),
                 "H": (7613, "Kids Girl Dresses", 76, "Kids Girl", 1014, "Dresses/Skirts girls")}),
    ProductType(94, "Sneakers", "Shoes", "trainers",
                ("Low", "Chunky", "Canvas", "Retro", "Running-style"),
                (" in faux leather with lacing at the front, a padded top edge and a white rubber sole.",
                 " in canvas with lacing at the front, a toe cap and a chunky white sole."),
                29.99, 0.2, 0.6,
                {"C": (3828, "Sneakers", 64, "Womens Shoes", 1020, "Shoes"),
                 "D": (3929, "Divided Shoes", 52, "Divided Accessories", 1020, "Shoes"),
                 "F": (3629, "Shoes", 27, "Men Shoes", 1020, "Shoes"),
                 "J": (4221, "Young Boy Shoes", 42, "Kids & Baby Shoes", 1020, "Shoes")}),
    ProductType(87, "Boots", "Shoes", "boots",
                ("Ankle", "Leather", "Block-heeled", "Biker", "Warm-lined"),
                (" in faux suede with a zip in one side, a block heel and a rubber sole.",
                 " in faux leather with a shaft, a zip in one side and a chunky rubber sole."),
                39.99, -0.9, 0.6,
                {"C": (3529, "Boots", 64, "Womens Shoes", 1020, "Shoes"),
                 "D": (3929, "Divided Shoes", 52, "Divided Accessories", 1020, "Shoes"),
                 "F": (3629, "Shoes", 27, "Men Shoes", 1020, "Shoes"),
                 "J": (4321, "Young Girl Shoes", 42, "Kids & Baby Shoes", 1020, "Shoes")}),
    ProductType(66, "Bag", "Accessories", "bag",
                ("Small", "Shopper", "Tote", "Shoulder", "Faux leather"),
                (" with a handle at the top, a flap with a magnetic fastener and one inner compartment.",
                 " in grained faux leather with a top handle, a front flap and a metal clasp."),
                19.99, 0.0, 0.6,
                {"C": (3209, "Bags", 65, "Womens Big accessories", 1019, "Accessories"),
                 "D": (3944, "Bags", 52, "Divided Accessories", 1019, "Accessories"),
                 "F": (7388, "Bags & Items", 25, "Men Accessories", 1019, "Accessories"),
                 "S": (8396, "Ladies Sport Acc", 5, "Ladies H&M Sport", 1019, "Accessories")}),
    ProductType(75, "Hat/beanie", "Accessories", "hat",
                ("Knitted", "Rib-knit", "Fine-knit", "Pompom", "Wool-blend"),
                (" in a soft rib knit with a wide turn-up and a pompom on top.",
                 " in a chunky knit with a turn-up at the hem and a large pompom."),
                9.99, -1.0, 0.5,
                {"C": (3519, "Gloves/Hats", 65, "Womens Big accessories", 1019, "Accessories"),
                 "D": (3945, "Knit & Woven", 52, "Divided Accessories", 1019, "Accessories"),
                 "F": (9985, "Accessories", 25, "Men Accessories", 1019, "Accessories"),
                 "J": (4212, "Kids Boy Big Acc", 45, "Kids Outerwear", 1019, "Accessories"),
                 "S": (8560, "Men Sport Acc", 22, "Men H&M Sport", 1019, "Accessories")}),
)  # fmt: skip


def _index_of(ptype: ProductType, group: IndexGroup) -> tuple[str, str]:
    return group.accessories if ptype.is_accessory else group.garments


# types x groups: which product types each index group sells.
SELLS = np.array([[_index_of(t, g)[0] in t.departments for g in GROUPS] for t in PRODUCT_TYPES])


# --- random streams ------------------------------------------------------------------------------------

STREAMS = {"articles": 1, "images": 2, "customers": 3, "transactions": 4}


def _rng(seed: int, stream: str) -> np.random.Generator:
    """Independent stream per part, so e.g. customers' tastes do not depend on the catalogue size."""
    return np.random.default_rng([seed, STREAMS[stream]])


def _weighted_top_k(rng: np.random.Generator, log_weights: np.ndarray, k: int) -> np.ndarray:
    """Per row, k distinct column indices drawn by weight without replacement (Gumbel top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape).astype(log_weights.dtype)
    return np.argsort(-keys, axis=1, kind="stable")[:, :k]


def _choose_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """Per row of a (n, k) probability matrix, one column index."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cumulative[:, -1]
    return (u[:, None] >= cumulative).sum(axis=1).clip(max=probabilities.shape[1] - 1)


# --- calendar ------------------------------------------------------------------------------------------


def _calendar() -> dict[str, np.ndarray]:
    doy = DAYS.day_of_year.to_numpy()
    # Summer sale (late June-July), Black Friday week, winter sale (after Christmas to mid-January).
    sale = ((doy >= 176) & (doy <= 205)) | ((doy >= 328) & (doy <= 334)) | (doy >= 360) | (doy <= 14)
    weekday = np.array([0.9, 0.9, 0.95, 1.0, 1.05, 1.25, 1.0])[DAYS.day_of_week.to_numpy()]
    growth = 1.0 + 0.25 * np.arange(len(DAYS)) / len(DAYS)
    weight = growth * weekday * np.where(sale, 1.5, 1.0)
    period_doy = doy[np.minimum(np.arange(N_PERIODS) * PERIOD_DAYS + PERIOD_DAYS // 2, len(DAYS) - 1)]
    summer = np.cos(2 * np.pi * (period_doy - 196) / 365.25)  # +1 mid-July, -1 mid-January
    season = np.exp(1.2 * np.outer([t.summer for t in PRODUCT_TYPES], summer))  # types x periods
    return {"cdf": np.cumsum(weight) / weight.sum(), "sale": sale, "season": season}


# --- articles ------------------------------------------------------------------------------------------


@dataclass
class _Articles:
    table: pd.DataFrame  # articles.csv rows
    type: np.ndarray
    colour: np.ndarray
    group: np.ndarray
    pattern: np.ndarray
    popularity: np.ndarray
    intro: np.ndarray  # first period on sale
    retire: np.ndarray  # last period on sale
    price_cents: np.ndarray
    has_image: np.ndarray


def _make_articles(n_articles: int, seed: int) -> _Articles:
    rng = _rng(seed, "articles")
    n_types, n_colours, n_patterns = len(PRODUCT_TYPES), len(COLOURS), len(PATTERNS)

    # Products with 1-5 colour variants each.
    variants = 1 + np.minimum(rng.poisson(1.3, size=n_articles), 4)
    n_products = int(np.searchsorted(np.cumsum(variants), n_articles)) + 1
    variants = variants[:n_products]
    variants[-1] -= variants.sum() - n_articles

    type_weights = np.array([t.weight for t in PRODUCT_TYPES])
    ptype = rng.choice(n_types, n_products, p=type_weights / type_weights.sum())
    pattern = rng.choice(n_patterns, n_products, p=[p.weight for p in PATTERNS])
    # Every type and pattern present however small the catalogue; those first products sell all along.
    covered = min(n_types, n_products)
    ptype[:covered] = rng.permutation(n_types)[:covered]
    pattern[: min(n_patterns, n_products)] = np.arange(min(n_patterns, n_products))
    group_weights = SELLS * np.array([g.weight for g in GROUPS])
    group = _choose_rows(rng, group_weights[ptype] / group_weights[ptype].sum(axis=1, keepdims=True))

    intro = np.where(rng.random(n_products) < 0.55, 0, rng.integers(1, N_PERIODS - 1, n_products))
    retire = np.minimum(intro + rng.integers(6, 40, n_products) - 1, N_PERIODS - 1)
    intro[:covered], retire[:covered] = 0, N_PERIODS - 1
    style = rng.random(n_products)
    description = rng.random(n_products)
    product_popularity = rng.lognormal(0.0, 1.0, n_products)
    shelf_price = (np.array([t.price for t in PRODUCT_TYPES])[ptype]
                   * np.array([g.price_factor for g in GROUPS])[group]
                   * rng.choice([0.7, 0.85, 1.0, 1.2, 1.5], n_products))  # fmt: skip
    price_cents = np.maximum(1, np.round(shelf_price)).astype(np.int32) * 100 - 1  # x.99
    n_without_image = max(1, round(0.03 * n_products))
    without_image = np.zeros(n_products, bool)
    without_image[rng.choice(n_products, n_without_image, replace=False)] = True
    without_description = np.zeros(n_products, bool)
    without_description[rng.choice(n_products, max(1, round(0.005 * n_products)), replace=False)] = True

    # Distinct colours per product; the first products cover every colour.
    log_weights = np.tile(np.log([c.weight for c in COLOURS]).astype(np.float32), (n_products, 1))
    forced = min(n_colours, n_products)
    log_weights[np.arange(forced), np.arange(forced)] = np.inf
    colour_rank = _weighted_top_k(rng, log_weights, int(variants.max()))

    # Product codes rise with the introduction date, as H&M's do; articles come out sorted by id.
    codes = np.sort(rng.choice(860_000, n_products, replace=False) + 100_000)
    order = np.lexsort((np.arange(n_products), intro))
    (ptype, pattern, group, intro, retire, style, description, product_popularity, price_cents, without_image,
     without_description, colour_rank, variants) = (
        a[order] for a in (ptype, pattern, group, intro, retire, style, description, product_popularity,
                           price_cents, without_image, without_description, colour_rank, variants))  # fmt: skip

    product = np.repeat(np.arange(n_products), variants)
    variant = np.arange(n_articles) - np.repeat(np.cumsum(variants) - variants, variants)
    colour = colour_rank[product, variant]
    popularity = product_popularity[product] * rng.lognormal(0.0, 0.5, n_articles)

    names, descriptions = [], []
    for t, p, s, d, empty in zip(ptype, pattern, style, description, without_description):
        ptype_ = PRODUCT_TYPES[t]
        adjective = PATTERNS[p].adjective
        noun = f"{adjective} {ptype_.noun}" if adjective else ptype_.noun
        names.append(_capitalised(f"{ptype_.styles[int(s * len(ptype_.styles))]} {noun}"))
        descriptions.append(
            "" if empty else _capitalised(noun + ptype_.descriptions[int(d * len(ptype_.descriptions))])
        )
    code_text = np.array([f"{c:07d}" for c in codes])
    table = pd.DataFrame({"article_id": np.char.add(code_text[product],
                                                    np.char.zfill((variant + 1).astype(str), 3)),
                          "product_code": code_text[product],
                          "prod_name": np.array(names, dtype=object)[product]})  # fmt: skip
    table = table.join(_vocabulary_columns(ptype[product], group[product], pattern[product], colour))
    table["detail_desc"] = np.array(descriptions, dtype=object)[product]
    return _Articles(
        table=table[ARTICLE_COLUMNS],
        type=ptype[product].astype(np.int16),
        colour=colour.astype(np.int16),
        group=group[product].astype(np.int16),
        pattern=pattern[product].astype(np.int16),
        popularity=popularity,
        intro=intro[product].astype(np.int16),
        retire=retire[product].astype(np.int16),
        price_cents=price_cents[product],
        has_image=~without_image[product],
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _vocabulary_columns(ptype: np.ndarray, group: np.ndarray, pattern: np.ndarray,
                        colour: np.ndarray) -> pd.DataFrame:
    """The Kaggle code/name columns for each article, looked up from the vocabulary tables."""
    def lookup(rows: list[tuple], keys: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        values = np.array(rows, dtype=object)[keys]
        return {name: values[:, i] for i, name in enumerate(names)}

    n_groups = len(GROUPS)
    type_group_rows = []
    for t in PRODUCT_TYPES:
        for g in GROUPS:
            index_code, index_name = _index_of(t, g)
            department = t.departments.get(index_code, (-1, "", -1, "", -1, ""))
            type_group_rows.append((t.no, t.name, t.product_group, *department[:2], index_code, index_name,
                                    g.no, g.name, *department[2:]))
    columns = {
        **lookup(type_group_rows, ptype * n_groups + group,
                 ["product_type_no", "product_type_name", "product_group_name", "department_no", "department_name",
                  "index_code", "index_name", "index_group_no", "index_group_name", "section_no", "section_name",
                  "garment_group_no", "garment_group_name"]),
        **lookup([(p.no, p.name) for p in PATTERNS], pattern,
                 ["graphical_appearance_no", "graphical_appearance_name"]),
        **lookup([(c.code, c.name, c.value_id, c.value_name, c.master_id, c.master_name) for c in COLOURS], colour,
                 ["colour_group_code", "colour_group_name", "perceived_colour_value_id",
                  "perceived_colour_value_name", "perceived_colour_master_id", "perceived_colour_master_name"]),
    }  # fmt: skip
    frame = pd.DataFrame(columns)
    numeric = [c for c in frame.columns if c.endswith(("_no", "_id")) and c != "article_id"]
    return frame.astype({c: np.int64 for c in numeric})


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
    rng = _rng(seed, "images")
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


def _write_images(root: Path, articles: _Articles, seed: int, report: Progress) -> None:
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


# --- customers -----------------------------------------------------------------------------------------


@dataclass
class _Customers:
    ids: np.ndarray  # 64-hex customer_id, in generation order
    group: np.ndarray
    types: np.ndarray  # (n, 2) favourite product types, -1 = none
    colours: np.ndarray  # (n, 3) favourite colours, -1 = none
    online: np.ndarray  # probability of buying online (sales channel 2)
    activity: np.ndarray  # relative number of purchases
    first_day: np.ndarray  # when the customer starts / stops buying
    last_day: np.ndarray
    table: pd.DataFrame  # customers.csv rows, sorted by customer_id


def _hex_ids(seed: int, kind: str, n: int) -> np.ndarray:
    return np.array([hashlib.sha256(f"lookbook-demo/{seed}/{kind}/{i}".encode()).hexdigest() for i in range(n)])


def _make_customers(n_customers: int, seed: int) -> _Customers:
    rng = _rng(seed, "customers")
    n = n_customers
    group = rng.choice(len(GROUPS), n, p=[g.weight for g in GROUPS])

    type_log_weights = np.where(SELLS.T, np.log([t.weight for t in PRODUCT_TYPES]), -np.inf).astype(np.float32)
    types = _weighted_top_k(rng, type_log_weights[group], 2).astype(np.int8)
    types[rng.random(n) < 0.5, 1] = -1
    colour_log_weights = np.log([c.weight for c in COLOURS]).astype(np.float32)
    colours = _weighted_top_k(rng, np.broadcast_to(colour_log_weights, (n, len(COLOURS))), 3).astype(np.int8)
    colours[rng.random(n) < 0.5, 2] = -1

    online = rng.beta(2.5, 1.2, n)
    activity = rng.lognormal(0.0, 0.9, n)
    first_day = np.maximum(0, rng.integers(-500, len(DAYS) - 90, n))
    churned = rng.random(n) < 0.2
    last_day = np.where(churned, np.minimum(first_day + rng.integers(90, 500, n), len(DAYS) - 1), len(DAYS) - 1)

    ids = _hex_ids(seed, "customer", n)
    n_postcodes = max(1, n // 3)
    postcodes = _hex_ids(seed, "postcode", n_postcodes)[(n_postcodes * rng.random(n) ** 2).astype(np.int64)]
    member = rng.random(n) < 0.36
    mean_age, sd_age = np.array([g.age for g in GROUPS], dtype=float)[group].T
    age = pd.array(np.clip(np.round(rng.normal(mean_age, sd_age)), 16, 90).astype(np.int64), dtype="Int64")
    age[rng.random(n) < 0.01] = pd.NA
    table = pd.DataFrame({
        "customer_id": ids,
        "FN": np.where(member, "1.0", ""),
        "Active": np.where(member & (rng.random(n) < 0.96), "1.0", ""),
        "club_member_status": rng.choice(["ACTIVE", "PRE-CREATE", "LEFT CLUB", ""], n, p=[0.92, 0.07, 0.005, 0.005]),
        "fashion_news_frequency": np.where(member, rng.choice(["Regularly", "Monthly"], n, p=[0.97, 0.03]),
                                           rng.choice(["NONE", ""], n, p=[0.985, 0.015])),
        "age": age,
        "postal_code": postcodes,
    }).sort_values("customer_id", kind="stable", ignore_index=True)  # fmt: skip
    return _Customers(ids, group, types, colours, online, activity, first_day, last_day, table)


def planted_tastes(n_customers: int = 500, seed: int = 0) -> pd.DataFrame:
    """The tastes `generate_demo` planted in its customers: what recommendations should recover.

    One row per customer: customer_id, index_group_name, product_types (1-2 product_type_name values),
    colours (2-3 colour_group_name values).
    """
    customers = _make_customers(n_customers, seed)
    return pd.DataFrame({
        "customer_id": customers.ids,
        "index_group_name": [GROUPS[g].name for g in customers.group],
        "product_types": [tuple(PRODUCT_TYPES[t].name for t in row if t >= 0) for row in customers.types],
        "colours": [tuple(COLOURS[c].name for c in row if c >= 0) for row in customers.colours],
    })  # fmt: skip


# --- transactions --------------------------------------------------------------------------------------

TASTE_SHARE = 0.80  # purchases that follow the customer's tastes
REPURCHASE_SHARE = 0.08  # buying again something bought before (when still on sale)
FAVOURITE_COLOUR_SHARE = 0.5
OWN_GROUP_SHARE = 0.7
SEASON_STRICTNESS = 0.5  # 0: tastes ignore the season, 1: a type sells in proportion to its season
BASKET_SHARE = 0.6  # a purchase made on the same day as the customer's previous one
DISCOUNTS = np.array([0.5, 0.6, 0.7, 0.8])
ROWS_PER_BLOCK = 2_000_000  # bounds the memory of the generation
ROWS_PER_WRITE = 1_000_000


class _CellSampler:
    """Draws articles by weight within cells (e.g. period x type x colour), for many rows at once."""

    SIZES = {"period": N_PERIODS, "group": len(GROUPS), "type": len(PRODUCT_TYPES), "colour": len(COLOURS)}

    def __init__(self, fields: tuple[str, ...], entries: dict[str, np.ndarray], weights: np.ndarray):
        self.fields = fields
        cells = self.cell(entries)
        order = np.argsort(cells, kind="stable")
        self.articles = entries["article"][order]
        self.cumulative = np.cumsum(weights[order])
        self.cells, self.start = np.unique(cells[order], return_index=True)
        self.stop = np.append(self.start[1:], len(order))

    def cell(self, values: dict[str, np.ndarray]) -> np.ndarray:
        key = np.zeros(len(values["period"]), np.int64)
        for name in self.fields:
            key = key * self.SIZES[name] + values[name]
        return key

    def sample(self, rows: dict[str, np.ndarray], uniform: np.ndarray) -> np.ndarray:
        """An article per row, -1 where the row's cell is empty."""
        cells = self.cell(rows)
        pos = np.searchsorted(self.cells, cells).clip(max=len(self.cells) - 1)
        found = self.cells[pos] == cells
        start, stop = self.start[pos], self.stop[pos]
        low = np.where(start > 0, self.cumulative[start - 1], 0.0)
        high = self.cumulative[stop - 1]
        hit = np.searchsorted(self.cumulative, low + uniform * (high - low), side="right").clip(start, stop - 1)
        return np.where(found, self.articles[hit], -1)


def _samplers(articles: _Articles, season: np.ndarray) -> list[_CellSampler]:
    """From the most specific cell to the broadest; the last (period only) also serves popular purchases."""
    on_sale = (articles.retire - articles.intro + 1).astype(np.int64)
    article = np.repeat(np.arange(len(on_sale)), on_sale)
    period = articles.intro[article] + np.arange(len(article)) - np.repeat(np.cumsum(on_sale) - on_sale, on_sale)
    entries = {"article": article, "period": period, "group": articles.group[article],
               "type": articles.type[article], "colour": articles.colour[article]}  # fmt: skip
    # New arrivals sell best in their first months: "what is selling now" matters.
    age = period - articles.intro[article]
    launch = np.where(articles.intro[article] > 0, 1 + 2 * np.exp(-age / 4), 1.0)
    weights = articles.popularity[article] * season[entries["type"], period] * launch
    return [_CellSampler(fields, entries, weights) for fields in (
        ("period", "group", "type", "colour"), ("period", "type", "colour"), ("period", "group", "type"),
        ("period", "type"), ("period",))]  # fmt: skip


@dataclass
class _Transactions:
    day: np.ndarray  # int16 index into DAYS
    customer: np.ndarray  # int32, generation order
    article: np.ndarray  # int32 row
    price_cents: np.ndarray  # int16
    channel: np.ndarray  # int8, 1 store / 2 online


def _make_transactions(articles: _Articles, customers: _Customers, n_transactions: int, seed: int,
                       report: Progress) -> _Transactions:
    rng = _rng(seed, "transactions")
    calendar = _calendar()
    samplers = _samplers(articles, calendar["season"])
    counts = rng.multinomial(n_transactions, customers.activity / customers.activity.sum())
    ends = np.cumsum(counts)
    out = _Transactions(np.empty(n_transactions, np.int16), np.empty(n_transactions, np.int32),
                        np.empty(n_transactions, np.int32), np.empty(n_transactions, np.int16),
                        np.empty(n_transactions, np.int8))
    # Blocks of whole customers, so memory stays bounded at any scale.
    thresholds = np.arange(ROWS_PER_BLOCK, n_transactions, ROWS_PER_BLOCK)
    last_customers = np.unique(np.append(np.searchsorted(ends, thresholds), len(counts) - 1))
    first_customer = 0
    for last_customer in last_customers.tolist():
        block = slice(first_customer, last_customer + 1)
        rows = slice(int(ends[first_customer] - counts[first_customer]), int(ends[last_customer]))
        _fill_block(out, rows, block, counts[block], articles, customers, calendar, samplers, rng)
        first_customer = last_customer + 1
        report(rows.stop / max(1, n_transactions), f"simulating purchases ({rows.stop:,}/{n_transactions:,})")
    return out


def _fill_block(out: _Transactions, rows: slice, block: slice, counts: np.ndarray, articles: _Articles,
                customers: _Customers, calendar: dict, samplers: list[_CellSampler],
                rng: np.random.Generator) -> None:
    cust = np.repeat(np.arange(block.start, block.stop, dtype=np.int32), counts)
    n = len(cust)
    if n == 0:
        return
    first_row = np.repeat(np.cumsum(counts) - counts, counts)
    is_first = first_row == np.arange(n)

    # Days within the customer's active span, following the calendar's weights; sorted per customer.
    cdf = calendar["cdf"]
    low = np.where(customers.first_day[cust] > 0, cdf[customers.first_day[cust] - 1], 0.0)
    high = cdf[customers.last_day[cust]]
    day = np.searchsorted(cdf, low + rng.random(n) * (high - low), side="right").clip(
        customers.first_day[cust], customers.last_day[cust])
    key = (cust.astype(np.int64) - block.start) << 10 | day
    key.sort()
    day = key & 1023
    # Baskets: a purchase often shares the day (and the channel) of the customer's previous one.
    same_basket = (rng.random(n) < BASKET_SHARE) & ~is_first
    source = np.where(same_basket, 0, np.arange(n))
    np.maximum.accumulate(source, out=source)
    day = day[source]
    channel = np.where(rng.random(n) < customers.online[cust], 2, 1)[source]
    period = day // PERIOD_DAYS

    # Tastes: one of the favourite types (weighted by season), often a favourite colour and the own group.
    kind = rng.random(n)
    popular = (kind >= TASTE_SHARE) & (kind < 1 - REPURCHASE_SHARE)
    fav_types = customers.types[cust]
    season = calendar["season"]
    first_weight = season[fav_types[:, 0], period]
    second_weight = np.where(fav_types[:, 1] >= 0, season[fav_types[:, 1].clip(0), period], 0.0)
    second = rng.random(n) * (first_weight + second_weight) >= first_weight
    ptype = np.where(second, fav_types[:, 1], fav_types[:, 0])
    # Out of season, a taste purchase often gives way to a popular in-season one (few shorts in January).
    in_season = season[ptype, period] / season.max(axis=1)[ptype]
    popular |= rng.random(n) >= in_season**SEASON_STRICTNESS
    fav_colours = customers.colours[cust]
    n_fav_colours = (fav_colours >= 0).sum(axis=1)
    favourite = fav_colours[np.arange(n), (rng.random(n) * n_fav_colours).astype(np.int64)]
    wanted = {"period": period, "group": customers.group[cust], "type": ptype, "colour": favourite}
    # Soft constraints: a row asks for its colour / group only sometimes, so purchases spread over the
    # catalogue; a sampler serves a row when it asks no more than the row does (empty cells fall through).
    asks = {"colour": rng.random(n) < FAVOURITE_COLOUR_SHARE, "group": rng.random(n) < OWN_GROUP_SHARE}

    article = np.full(n, -1, np.int64)
    uniform = rng.random(n)
    for sampler in samplers:
        eligible = (article < 0) & ~popular
        for name, asked in asks.items():
            if name in sampler.fields:
                eligible &= asked
        todo = np.flatnonzero(eligible)
        article[todo] = sampler.sample({k: v[todo] for k, v in wanted.items()}, uniform[todo])
    todo = np.flatnonzero(popular)
    article[todo] = samplers[-1].sample({"period": period[todo]}, uniform[todo])

    # Repurchases of an earlier purchase that is still on sale.
    earlier = first_row + (rng.random(n) * (np.arange(n) - first_row)).astype(np.int64)
    again = article[earlier]
    repurchase = (kind >= 1 - REPURCHASE_SHARE) & ~is_first
    repurchase &= (articles.intro[again] <= period) & (period <= articles.retire[again])
    article = np.where(repurchase, again, article)

    # Prices: the shelf price, often discounted during sales.
    shelf = articles.price_cents[article]
    discounted = rng.random(n) < np.where(calendar["sale"][day], 0.45, 0.08)
    factor = DISCOUNTS[rng.integers(0, len(DISCOUNTS), n)]
    price = np.where(discounted, (shelf * factor // 100).astype(np.int32) * 100 + 99, shelf)

    out.day[rows], out.customer[rows], out.article[rows] = day, cust, article
    out.price_cents[rows], out.channel[rows] = price, channel


# --- writing -------------------------------------------------------------------------------------------


def _fixed_width(texts: np.ndarray, width: int) -> np.ndarray:
    """ASCII strings of one length as a (n, width) byte matrix, for assembling CSV lines with numpy."""
    return np.frombuffer("".join(texts).encode("ascii"), np.uint8).reshape(len(texts), width)


def price_text(cents: int) -> str:
    """Kaggle's price spelling: shelf price / 590, truncated to 16 decimals (24.99 -> 0.0423559322033898)."""
    value = (Decimal(int(cents)) / (100 * PRICE_SCALE)).quantize(Decimal("1e-16"), rounding=ROUND_DOWN)
    return format(value, "f").rstrip("0")


def _write_transactions(path: Path, tx: _Transactions, customer_ids: np.ndarray, article_ids: np.ndarray,
                        report: Progress) -> None:
    """transactions_train.csv sorted by date, assembled as byte matrices (31.8M rows in seconds)."""
    dates = _fixed_width(DAYS.strftime("%Y-%m-%d").to_numpy(), 10)
    customers = _fixed_width(customer_ids, 64)
    articles = _fixed_width(article_ids, 10)
    price_width = 18  # "0." + 16 decimals; shorter spellings are padded with zero bytes, dropped below
    prices = np.zeros((int(tx.price_cents.max(initial=0)) + 1, price_width), np.uint8)
    for cents in np.unique(tx.price_cents):
        text = price_text(cents).encode("ascii")
        prices[cents, : len(text)] = np.frombuffer(text, np.uint8)
    order = np.argsort(tx.day, kind="stable")
    fields = [(dates, tx.day), (customers, tx.customer), (articles, tx.article), (prices, tx.price_cents)]
    line_width = sum(table.shape[1] + 1 for table, _ in fields) + 2
    with open(path, "wb") as f:
        f.write(TRANSACTIONS_HEADER)
        for start in range(0, len(order), ROWS_PER_WRITE):
            rows = order[start: start + ROWS_PER_WRITE]
            line = np.full((len(rows), line_width), ord(","), np.uint8)
            column = 0
            for table, codes in fields:
                line[:, column: column + table.shape[1]] = table[codes[rows]]
                column += table.shape[1] + 1
            line[:, column] = ord("0") + tx.channel[rows]
            line[:, column + 1] = ord("\n")
            flat = line.reshape(-1)
            f.write(flat[flat != 0].tobytes())
            report(min(1.0, (start + len(rows)) / len(order)), "writing transactions_train.csv")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def _publish(out_dir: Path, manifest: dict, write: Callable[[Path], None]) -> Path:
    """Write into a temporary sibling folder, then rename it into place: never a half-written dataset."""
    out_dir = Path(out_dir).expanduser().resolve()
    if _manifest(out_dir) == manifest:
        return out_dir
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and _manifest(out_dir) is None)):
        raise DataError(f"{out_dir} already exists and is not a generated demo dataset (it has no {MANIFEST}); "
                        "choose another output folder or remove it")  # fmt: skip
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old = None
    try:
        tmp.chmod(0o755)
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if _manifest(out_dir) == manifest:  # another process published the same dataset meanwhile
            return out_dir
        if out_dir.exists():
            old = out_dir.with_name(f"{tmp.name}.old")
            out_dir.rename(old)
        os.rename(tmp, out_dir)
    except OSError:
        if _manifest(out_dir) != manifest:  # not another process having just published the same dataset
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return out_dir


def _manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _check_options(seed: int, **sizes: int) -> None:
    def whole(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not whole(seed) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    for name, value in sizes.items():
        if not whole(value) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}")
    if not 20 <= sizes["n_articles"] <= 1_000_000:
        raise InputError(f"n_articles must be between 20 and 1,000,000 (7-digit product codes), "
                         f"got {sizes['n_articles']}")


def _stages(progress: Progress | None, widths: dict[str, float]) -> Callable[[str], Progress]:
    """Map each stage's own 0..1 progress onto its slice of the overall bar."""
    starts = dict(zip(widths, np.cumsum([0.0, *widths.values()])))

    def stage(name: str) -> Progress:
        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress(float(starts[name] + widths[name] * fraction), message)

        return report

    return stage


# --- public API ----------------------------------------------------------------------------------------


def generate_demo(out_dir: Path, *, n_articles: int = 1200, n_customers: int = 500, seed: int = 0,
                  progress: Progress | None = None) -> Path:
    """Write the demo dataset (CSV files + product images) into out_dir; returns out_dir.

    Nothing is done when out_dir already holds the dataset for these options. Raises InputError for bad
    sizes and DataError when out_dir is a folder that is not a generated demo dataset.
    """
    _check_options(seed, n_articles=n_articles, n_customers=n_customers)
    n_transactions = TRANSACTIONS_PER_CUSTOMER * n_customers
    manifest = {"generator": __name__, "format_version": FORMAT_VERSION, "mode": "demo", "seed": seed,
                "n_articles": n_articles, "n_customers": n_customers, "n_transactions": n_transactions}  # fmt: skip
    stage = _stages(progress, {"articles": 0.02, "images": 0.78, "customers": 0.02, "transactions": 0.18})

    def write(root: Path) -> None:
        stage("articles")(0.0, "designing the catalogue")
        articles = _make_articles(n_articles, seed)
        _write_csv(articles.table, root / "articles.csv")
        _write_images(root, articles, seed, stage("images"))
        stage("customers")(0.0, "planting customer tastes")
        customers = _make_customers(n_customers, seed)
        _write_csv(customers.table, root / "customers.csv")
        tx = _make_transactions(articles, customers, n_transactions, seed, lambda f, m: None)
        _write_transactions(root / "transactions_train.csv", tx, customers.ids,
                            articles.table["article_id"].to_numpy(), stage("transactions"))
        stage("transactions")(1.0, "demo dataset written")

    return _publish(out_dir, manifest, write)


def generate_transactions_only(out_dir: Path, *, n_articles: int = HM_ARTICLES, n_customers: int = HM_CUSTOMERS,
                               n_transactions: int = HM_TRANSACTIONS, seed: int = 0,
                               progress: Progress | None = None) -> Path:
    """Write articles.csv, customers.csv and transactions_train.csv at H&M scale (no images); returns out_dir.

    Same format and purchase model as the demo, generated vectorised in bounded memory, for benchmarks.
    """
    _check_options(seed, n_articles=n_articles, n_customers=n_customers, n_transactions=n_transactions)
    manifest = {"generator": __name__, "format_version": FORMAT_VERSION, "mode": "transactions-only",
                "seed": seed, "n_articles": n_articles, "n_customers": n_customers,
                "n_transactions": n_transactions}  # fmt: skip
    stage = _stages(progress, {"articles": 0.03, "customers": 0.1, "simulate": 0.5, "write": 0.37})

    def write(root: Path) -> None:
        stage("articles")(0.0, "designing the catalogue")
        articles = _make_articles(n_articles, seed)
        _write_csv(articles.table, root / "articles.csv")
        stage("customers")(0.0, "planting customer tastes")
        customers = _make_customers(n_customers, seed)
        _write_csv(customers.table, root / "customers.csv")
        tx = _make_transactions(articles, customers, n_transactions, seed, stage("simulate"))
        _write_transactions(root / "transactions_train.csv", tx, customers.ids,
                            articles.table["article_id"].to_numpy(), stage("write"))

    return _publish(out_dir, manifest, write)
