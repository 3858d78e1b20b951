"""The catalogue's parquet cache: the parsed CSVs as an artifact like any other ("catalog"), so a second
load skips the CSVs and a new cache is swapped in atomically."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .store import ArtifactStore

CACHE_VERSION = 2



def read_cache(store: ArtifactStore, fingerprint: str):
    expect = {"data": fingerprint, "version": CACHE_VERSION}
    if not store.is_current("catalog", expect):
        return None
    art = store.load("catalog", expect)
    try:
        articles = pd.read_parquet(art.path / "articles.parquet")
        customers = pd.read_parquet(art.path / "customers.parquet") if art.meta["has_customers"] else None
        transactions = (
            pd.read_parquet(art.path / "transactions.parquet") if art.meta["has_transactions"] else None
        )
        customer_ids = pq.read_table(art.path / "customer_ids.parquet").column(0)  # Catalog makes the strings
    except (OSError, pa.ArrowException):  # damaged with its size intact: read the CSVs again
        return None
    return articles, customers, transactions, customer_ids, art.meta.get("notices", [])


def write_cache(store: ArtifactStore, fingerprint: str, tables) -> None:
    articles, customers, transactions, customer_ids, notices = tables
    meta = {
        "data": fingerprint,
        "version": CACHE_VERSION,
        "notices": notices,
        "has_customers": customers is not None,
        "has_transactions": transactions is not None,
    }
    with store.write("catalog", meta) as tmp:
        articles.to_parquet(tmp / "articles.parquet", index=False)
        if customers is not None:
            customers.to_parquet(tmp / "customers.parquet", index=False)
        if transactions is not None:
            transactions.to_parquet(tmp / "transactions.parquet", index=False)
        ids = pa.table({"customer_id": pa.array(customer_ids, type=pa.string())})
        pq.write_table(ids, tmp / "customer_ids.parquet")
