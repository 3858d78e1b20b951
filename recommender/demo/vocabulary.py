"""The demo's vocabulary: real H&M colours, patterns, index groups and product types (with the
silhouettes drawn for them), and the dataset's sizes and calendar."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..catalog import TRANSACTION_COLUMNS

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


def index_of(ptype: ProductType, group: IndexGroup) -> tuple[str, str]:
    return group.accessories if ptype.is_accessory else group.garments


# types x groups: which product types each index group sells.
SELLS = np.array([[index_of(t, g)[0] in t.departments for g in GROUPS] for t in PRODUCT_TYPES])
