"""Why a ranked article is recommended: the source whose features pushed its score up most, in words."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .candidates import AGE_LABELS, NEIGHBOUR_DAYS, SOURCES, TOGETHER_DAYS, TOGETHER_SEEDS, Candidates, Window
from .features import FEATURES

# Which source (or "type") each feature speaks for; features of no source (prices, channel) give no reason.
FEATURE_SOURCE = {
    **{f"rank_{s}": s for s in SOURCES}, **{f"score_{s}": s for s in SOURCES},
    "als_score": "als", "neighbour_votes": "neighbours", "days_since_bought_article": "repurchase",
    "times_bought": "repurchase", "days_since_bought_product": "other_colours", "sales_1d": "trending",
    "sales_7d": "trending", "sales_30d": "popular", "age_bucket": "age_trending",
    "index_group_share": "index_group_trending", "type_share": "type",
}  # fmt: skip
REASONS = SOURCES + ("type",)
_FEATURE_REASON = np.array([REASONS.index(FEATURE_SOURCE[f]) if f in FEATURE_SOURCE else -1 for f in FEATURES])


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
    chosen = [REASONS[order[0]]]
    if per_reason[order[1]] >= 0.5 * per_reason[order[0]] > 0:
        chosen.append(REASONS[order[1]])
    return chosen


def explain(w: Window, code: int, cands: Candidates, i: int, contribution: np.ndarray) -> str:
    parts = [_say(reason, w, code, cands, i) for reason in strongest(cands, i, contribution)]
    if not len(cands.mine):
        parts.append("no purchase history yet")
    return "; ".join(parts)


def _say(reason: str, w: Window, code: int, cands: Candidates, i: int) -> str:
    row, mine = int(cands.articles[i]), cands.mine
    names = w.model.catalog.articles["prod_name"]
    if reason == "last_purchases":  # the heuristic's list: your own articles, then the week's best sellers
        reason = "repurchase" if np.isin(row, mine.articles) else "trending"
    if reason == "blend":
        return "matches the taste of your purchases and what sells now"
    if reason == "repurchase":
        bought = mine.age_days[mine.articles == row]
        times = f" ({len(bought)}×)" if len(bought) > 1 else ""
        return f"you bought it {ago(bought.min())}{times}" if len(bought) else "you bought it before"
    if reason == "other_colours":
        same = mine.articles[w.product_codes[mine.articles] == w.product_codes[row]]
        return f"another colour of the {names.iat[int(same[-1])]} you bought" if len(same) else "another colour of a product you bought"
    if reason == "neighbours":
        near = cands.near[0]
        votes = int(w.recent_buyers[near][:, row].sum()) if len(near) else 0
        return f"customers like you bought it ({votes} of your {len(near)} nearest, last {NEIGHBOUR_DAYS} days)"
    if reason == "als":
        return "matches the taste of your purchases"
    if reason == "bought_together":
        seeds = pd.unique(mine.articles[::-1])[:TOGETHER_SEEDS]  # as the source chose them
        together = np.asarray(w.together[seeds][:, row].todense()).ravel()
        seed = int(seeds[np.argmax(together)]) if len(seeds) else None
        with_what = names.iat[seed] if seed is not None and together.max() > 0 else "what you bought"
        return f"often bought with {with_what} that you bought (same week, last {TOGETHER_DAYS // 7} weeks)"
    if reason == "age_trending":
        bucket = int(w.customer_buckets[code])
        return f"trending among {AGE_LABELS[bucket]} year olds" if bucket >= 0 else "trending this week"
    if reason == "index_group_trending":
        return f"trending in {w.group_names[w.group_codes[row]]}, which you buy most"
    if reason == "type":
        type_code = w.type_codes[row]
        share = int(np.sum(w.type_codes[mine.articles] == type_code))
        return f"you buy {w.model.type_names[type_code]} often ({share} of {len(mine)} purchases)"
    if reason == "trending":
        week = int(w.sales_7d[row])
        return f"trending this week ({week} sold in the last 7 days)" if week else "popular lately"
    return f"popular this month ({int(w.sales_30d[row])} sold in the last 30 days)"
