"""Collaborative recommendations, in layers that import one way:

    params, factors, history, stats, topk  (ALS + HNSW, histories, article stats, top-k selection)
    → state       the trained `CollabState` and its artifact
    → outfits     complete the look: co-purchases across product groups
    → blend       `Profile`, the hand-weighted blend (one shopper or a block)
    → candidates  `Window` at a cut and the candidate sources
    → features    per (customer, candidate) features
    → ranker      LightGBM on weekly windows (given a `fit_state(cut)` callable)
    → methods     the named ways to make a list: ranker, ensemble (rank fusion), blends, baselines
    → reasons     one reason generator for ranked and blended lists
    → model       `CollabModel`, the façade (recommend, recommend_for_items, similar_customers, …)
    → submission  the competition file

The public interface is `CollabModel`, `CollabState` and `CollabParams`.
"""
from .factors import single_threaded_blas
from .model import CollabModel
from .params import SIGNALS, CollabParams, Progress
from .state import CollabState

__all__ = ["CollabModel", "CollabParams", "CollabState", "Progress", "SIGNALS", "single_threaded_blas"]
