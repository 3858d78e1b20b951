"""Why an article is recommended, in words: one generator for the ranker's lists (the source whose
features pushed the score up most, from LightGBM's SHAP contributions) and the blend's (the signal that
carries the score). Both name reasons from one vocabulary (`REASONS`) and word them in `_say`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .blend import Profile
from .candidates import (
    AGE_LABELS, LOOKALIKE_SEEDS, NEIGHBOUR_DAYS, SOURCES, TOGETHER_DAYS, TOGETHER_SEEDS, Candidates, Window,
)  # fmt: skip
from .features import FEATURES
from .outfits import Outfits
from .params import SIGNALS, TREND_WINDOW_DAYS
from .state import CollabState

# Which source (or "type") each feature speaks for; features of no source (prices, channel) give no reason.
FEATURE_SOURCE = {
    **{f"rank_{s}": s for s in SOURCES}, **{f"score_{s}": s for s in SOURCES},
    "als_score": "als", "neighbour_votes": "neighbours", "days_since_bought_article": "repurchase",
    "times_bought": "repurchase", "days_since_bought_product": "other_colours", "sales_1d": "trending",
    "sales_7d": "trending", "sales_30d": "popular", "age_bucket": "age_trending",
    "index_group_share": "index_group_trending", "type_share": "type",
    "content_max_sim": "looks_like", "content_mean_sim": "looks_like",
}  # fmt: skip
REASONS = SOURCES + ("type",)
_FEATURE_REASON = np.array([REASONS.index(FEATURE_SOURCE[f]) if f in FEATURE_SOURCE else -1 for f in FEATURES])
SIGNAL_REASON = {"neighbours": "neighbours", "als": "als", "trend": "trending", "repurchase": "repurchase",
                 "type": "type"}  # the blend's signals in the same words


@dataclass
class Facts:
    """What a reason may quote: the shopper's purchases and neighbours, and the catalogue at the cut."""

    state: CollabState
    articles: np.ndarray  # the shopper's purchases (or picks), one entry a purchase, oldest first
    age_days: np.ndarray | None  # days before the cut of each purchase; None: not known (picks, the blend)
    neighbours: np.ndarray  # the shopper's nearest customers (codes)
    neighbour_bought: sp.csr_matrix  # customer × article: what neighbours' votes count
    neighbour_days: int | None  # the span of ``neighbour_bought`` (None: all history)
    week_sales: np.ndarray  # sales per article in the last 7 days
    window: Window | None = None  # the ranker's cut: its trends, baskets and age buckets
    age_bucket: int = -1

    @classmethod
    def of_candidates(cls, w: Window, code: int, cands: Candidates) -> "Facts":
        mine = cands.mine
        return cls(w.state, mine.articles, mine.age_days, cands.near[0], w.recent_buyers, NEIGHBOUR_DAYS,
                   w.sales_7d, w, int(w.customer_buckets[code]))

    @classmethod
    def of_profile(cls, state: CollabState, profile: Profile) -> "Facts":
        bought = np.repeat(profile.articles, np.maximum(profile.counts, 1).astype(np.int64))
        return cls(state, bought, None, profile.neighbour_codes, state.bought, None, state.stats.week_sales)


def ago(days: float) -> str:
    days = int(days)
    if days <= 1:
        return "yesterday" if days == 1 else "today"
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"


def strongest(cands: Candidates, i: int, contribution: np.ndarray) -> list[str]:
    """The reasons (REASONS names) that carry candidate ``i``: the strongest source that proposed it, and the
    next when it is at least half as strong; the best-ranked source when no feature pushed it up."""
    per_reason = np.zeros(len(REASONS))
    known = _FEATURE_REASON >= 0
    np.add.at(per_reason, _FEATURE_REASON[known], contribution[known])
    proposed = np.append(np.isfinite(cands.ranks[i]), True)  # "type" needs no proposal
    per_reason[~proposed] = -np.inf
    order = np.argsort(-per_reason, kind="stable")
    if not per_reason[order[0]] > 0:
        return [SOURCES[int(np.nanargmin(cands.ranks[i]))]]
    return _top_two([REASONS[j] for j in order[:2]], per_reason[order[:2]])


def strongest_signals(contribution: np.ndarray) -> list[str]:
    """The blend's reasons: the signal that carries the score, and the next when at least half as strong."""
    order = np.argsort(-contribution, kind="stable")
    return _top_two([SIGNAL_REASON[SIGNALS[j]] for j in order[:2]], contribution[order[:2]])


def _top_two(names: list[str], strengths: np.ndarray) -> list[str]:
    return names[:2] if strengths[1] >= 0.5 * strengths[0] > 0 else names[:1]


def explain(facts: Facts, row: int, reasons: list[str]) -> str:
    parts = [_say(reason, facts, row) for reason in reasons]
    if not len(facts.articles):
        parts.append("no purchase history yet")
    return "; ".join(parts)


def explain_ranked(w: Window, code: int, cands: Candidates, i: int, contribution: np.ndarray) -> str:
    """The reason for the ranker's candidate ``i``."""
    return explain(Facts.of_candidates(w, code, cands), int(cands.articles[i]), strongest(cands, i, contribution))


def explain_source(w: Window, code: int, cands: Candidates | None, row: int, source: str) -> str:
    """The reason for an article one source's list placed (the ensemble's ALS or last-purchases list, a
    baseline); ``cands``: the customer's candidates when computed (their purchases and neighbours)."""
    if cands is None:
        mine, near = w.purchases(code), np.zeros(0, np.int64)
    else:
        mine, near = cands.mine, cands.near[0]
    facts = Facts(w.state, mine.articles, mine.age_days, near, w.recent_buyers, NEIGHBOUR_DAYS, w.sales_7d, w,
                  int(w.customer_buckets[code]))
    return explain(facts, row, [source])


def explain_blended(state: CollabState, profile: Profile, row: int, contribution: np.ndarray) -> str:
    """The reason for an article of the blend's list (``contribution``: per signal)."""
    return explain(Facts.of_profile(state, profile), row, strongest_signals(contribution))


def _say(reason: str, facts: Facts, row: int) -> str:
    state, w, mine = facts.state, facts.window, facts.articles
    names = state.catalog.articles["prod_name"]
    if reason == "last_purchases":  # the heuristic's list: your own articles, then the week's best sellers
        reason = "repurchase" if np.isin(row, mine) else "trending"
    if reason == "repurchase" and not np.isin(row, mine):  # the blend's repurchase signal covers other colours
        reason = "other_colours"
    if reason == "blend":
        return "matches the taste of your purchases and what sells now"
    if reason == "repurchase":
        times = int(np.sum(mine == row))
        count = f" ({times}×)" if times > 1 else ""
        if facts.age_days is None:
            return f"you bought it before{count}"
        return f"you bought it {ago(facts.age_days[mine == row].min())}{count}"
    if reason == "other_colours":
        same = mine[state.product_codes[mine] == state.product_codes[row]]
        return f"another colour of the {names.iat[int(same[-1])]} you bought" if len(same) else "another colour of a product you bought"
    if reason == "neighbours":
        near = facts.neighbours
        votes = int(facts.neighbour_bought[near][:, row].sum()) if len(near) else 0
        span = f", last {facts.neighbour_days} days" if facts.neighbour_days else ""
        return f"customers like you bought it ({votes} of your {len(near)} nearest{span})"
    if reason == "als":
        return "matches the taste of your purchases"
    if reason == "type":
        type_code = state.type_codes[row]
        share = int(np.sum(state.type_codes[mine] == type_code))
        return f"you buy {state.type_names[type_code]} often ({share} of {len(mine)} purchases)"
    if reason == "trending":
        week = int(facts.week_sales[row])
        return f"trending this week ({week} sold in the last {TREND_WINDOW_DAYS} days)" if week else "popular lately"
    if reason == "bought_together":
        seeds = pd.unique(mine[::-1])[:TOGETHER_SEEDS]  # as the source chose them
        together = np.asarray(w.together[seeds][:, row].todense()).ravel()
        seed = int(seeds[np.argmax(together)]) if len(seeds) else None
        with_what = names.iat[seed] if seed is not None and together.max() > 0 else "what you bought"
        return f"often bought with {with_what} that you bought (same week, last {TOGETHER_DAYS // 7} weeks)"
    if reason == "looks_like":
        return _looks_like(facts, row)
    if reason == "age_trending":
        bucket = facts.age_bucket
        return f"trending among {AGE_LABELS[bucket]} year olds" if bucket >= 0 else "trending this week"
    if reason == "index_group_trending":
        return f"trending in {w.group_names[w.group_codes[row]]}, which you buy most"
    return f"popular this month ({int(w.sales_30d[row])} sold in the last 30 days)"


def _looks_like(facts: Facts, row: int) -> str:
    """Names the recent purchase the article looks most like (the seeds the source compared it with)."""
    looks, mine = facts.state.looks, facts.articles
    seeds = pd.unique(mine[::-1])[:LOOKALIKE_SEEDS]
    if looks is None or not len(seeds):
        return "looks like what you bought"
    closest = int(seeds[np.argmax(np.asarray(looks.vectors[seeds]) @ np.asarray(looks.vectors[row]))])
    name = facts.state.catalog.articles["prod_name"].iat[closest]
    new = "" if facts.window is None or np.isfinite(facts.window.article_age[row]) else ", new in"
    return f"looks like the {name} you bought{new}"


def explain_outfit(outfits: Outfits, row: int, other: int, via: int) -> str:
    """Why ``other`` completes the look of ``row``: bought with it, or with a look-alike of it (``via``)."""
    if via < 0:
        group = outfits.state.catalog.articles["index_group_name"].iat[row]
        return f"goes with it: sells well in {group} this week"
    together = int(outfits.together[via, other])
    times = f"{together} shopper{'s' if together != 1 else ''}"
    if via == row:
        return f"bought with it in the same week by {times}"
    name = outfits.state.catalog.articles["prod_name"].iat[via]
    return f"bought with the {name}, which looks like it, in the same week by {times}"
