"""Each customer's purchases in time proportional to that customer's purchases.

Transactions are sorted by date; a stable sort by customer keeps each customer's rows in date order,
and offsets point at each customer's slice, so a lookup never scans the whole table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


class CustomerHistory:
    def __init__(self, transactions: pd.DataFrame, n_customers: int):
        customers = transactions["customer"].to_numpy()
        self.order = np.argsort(customers, kind="stable").astype(np.int64)
        self.offsets = np.searchsorted(customers[self.order], np.arange(n_customers + 1)).astype(np.int64)
        self.days = transactions["t_dat"].to_numpy()[self.order]
        self.articles = transactions["article"].to_numpy()[self.order]
        self.prices = transactions["price"].to_numpy()[self.order]
        self.channels = transactions["sales_channel_id"].to_numpy()[self.order]

    def rows(self, code: int) -> slice:
        """The customer's rows (oldest first) in this index's arrays."""
        return slice(int(self.offsets[code]), int(self.offsets[code + 1]))

    def transaction_rows(self, code: int) -> np.ndarray:
        """The customer's positions in the original transaction table, oldest first."""
        return self.order[self.rows(code)]

    def count(self, code: int) -> int:
        return int(self.offsets[code + 1] - self.offsets[code])
