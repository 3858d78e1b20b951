"""Collaborative recommendations: ALS + HNSW (factors), candidate sources, features, a LightGBM ranker, reasons.

The public interface is `CollabModel` (fit / load / save / is_current, recommend, recommend_for_items,
similar_customers, similar_to_items, history, example_customers) and `CollabParams`.
"""
from .factors import single_threaded_blas
from .model import CollabModel, Profile, used_signals
from .params import SIGNALS, CollabParams, Progress

__all__ = ["CollabModel", "CollabParams", "Profile", "Progress", "SIGNALS", "single_threaded_blas", "used_signals"]
