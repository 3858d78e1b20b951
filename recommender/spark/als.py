"""ALS on Spark: purchases read by Spark from the catalogue's parquet cache → MLlib ALS → the `collab` artifact.

The confidence matrix is the local path's (`interactions.build_interactions` + `Confidence.fit`), computed
as Spark SQL: each purchase decayed by its age (half-life `recency_half_life_days`), summed per customer ×
article, then weighted as implicit weights the item × user matrix (tf-idf: sqrt(r) · idf of the customer;
bm25; none). MLlib's implicit ALS then factorises it, with a checkpoint folder so `checkpointInterval`
really cuts the lineage (Spark ignores it silently without one).

Two differences from implicit are converted: MLlib's confidence is 1 + alpha·r where implicit's is
alpha·r (`mllib_ratings` gives MLlib alpha·r − 1 at alpha 1), and MLlib multiplies the regularisation by
each customer's (article's) number of purchases (ALS-WR), implicit does not (`spark_regularization`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq

from ..catalog import Catalog
from ..collab import CollabParams, CollabState
from ..errors import DataError
from ..store import ArtifactStore

Progress = Callable[[float, str], None]
NS_PER_DAY = 86_400 * 10**9
MIN_RATING = 1e-6  # MLlib's preference is 0 for a rating of 0: a purchase must stay above it
CHECKPOINT_INTERVAL = 5  # iterations between lineage cuts (long lineages overflow the JVM stack at ~30+)


def transactions_parquet(store: ArtifactStore, catalog: Catalog) -> Path:
    """The catalogue's compact transactions cache (written by load_catalog(…, cache_dir=artifacts))."""
    art = store.load("catalog", expect={"data": catalog.fingerprint()})
    path = art.path / "transactions.parquet"
    if not path.is_file():
        raise DataError(f"{catalog.root} has no transactions: the Spark ALS job needs transactions_train.csv rows")
    return path


def spark_regularization(params: CollabParams, mean_purchases: float) -> float:
    """MLlib scales regParam by each row's number of ratings; divide by the mean so the typical customer is
    regularised as implicit regularises everyone."""
    return params.regularization / max(mean_purchases, 1.0)


def confidence_frame(spark, parquet: str | Path, n_articles: int, params: CollabParams, until=None):
    """DataFrame(customer int, article int, confidence float): the local path's weighted matrix, as rows."""
    from pyspark.sql import functions as F

    tx = spark.read.parquet(str(parquet)).select("t_dat", "customer", "article")
    if until is not None:
        until_ns = int(np.datetime64(until, "ns").astype(np.int64))
        tx = tx.where(F.col("t_dat") < F.lit(until_ns))
        now_ns = until_ns
    else:
        last = tx.agg(F.max("t_dat")).first()[0]
        if last is None:
            raise DataError("the transactions cache is empty: nothing to train ALS on")
        now_ns = int(last) + NS_PER_DAY
    if params.recency_half_life_days:
        age_days = (F.lit(now_ns) - F.col("t_dat")) / F.lit(NS_PER_DAY)
        worth = F.pow(F.lit(2.0), -age_days / F.lit(float(params.recency_half_life_days)))
    else:
        worth = F.lit(1.0)
    r = tx.groupBy("customer", "article").agg(F.sum(worth.cast("float")).alias("r"))
    if params.weighting == "none":
        return r.select("customer", "article", F.col("r").cast("float").alias("confidence"))
    # implicit weights item × user, so "document frequency" is the number of distinct articles of a customer.
    per_customer = r.groupBy("customer").agg(F.count("*").alias("n"))
    idf = F.log(F.lit(float(n_articles))) - F.log1p(F.col("n").cast("double"))
    rows = r.join(per_customer, "customer")
    if params.weighting == "tfidf":
        weight = F.sqrt("r") * idf
    elif params.weighting == "bm25":
        from ..interactions import BM25_B, BM25_K1

        totals = r.groupBy("article").agg(F.sum("r").alias("total"))
        mean_total = r.agg(F.sum("r")).first()[0] / n_articles  # over every article, as implicit's row mean
        norm = F.lit(1.0 - BM25_B) + F.lit(BM25_B) * F.col("total") / F.lit(mean_total)
        rows = rows.join(totals, "article")
        weight = F.col("r") * F.lit(BM25_K1 + 1.0) / (F.lit(BM25_K1) * norm + F.col("r")) * idf
    else:
        raise ValueError(f"weighting must be bm25, tfidf or none, not {params.weighting!r}")
    return rows.select("customer", "article", weight.cast("float").alias("confidence"))


def mllib_ratings(confidence, alpha: float):
    """implicit's confidence (alpha · weighted count) as MLlib's rating r, whose confidence is 1 + r at
    alpha 1: r = alpha · c − 1, kept just above 0 so that every purchase stays a preference of 1."""
    from pyspark.sql import functions as F

    converted = F.greatest(F.lit(alpha) * F.col("confidence") - F.lit(1.0), F.lit(MIN_RATING))
    return confidence.withColumn("confidence", converted.cast("float"))


def fit_factors(
    spark, parquet: str | Path, n_customers: int, n_articles: int, work_dir: Path, params: CollabParams = CollabParams(),
    *, until=None, progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(customer factors (n_customers, factors), article factors (n_articles, factors)), float32, in the
    catalogue's code order; rows of customers / articles without purchases are zero, as implicit leaves them."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    report = progress or (lambda fraction, message: None)
    report(0.0, "Spark: weighting purchases")
    blocks = spark.sparkContext.defaultParallelism  # one ALS block per core (MLlib's default 10 fits neither end)
    ratings = mllib_ratings(confidence_frame(spark, parquet, n_articles, params, until), params.alpha)
    ratings = ratings.repartition(blocks).persist()
    counts = ratings.agg(F.count("*"), F.countDistinct("customer")).first()
    if not counts[0]:
        raise DataError("no transactions to train ALS on")
    started = time.perf_counter()
    report(0.1, f"Spark ALS: {params.factors} factors, {params.iterations} iterations")
    als = ALS(
        rank=params.factors, maxIter=params.iterations, alpha=1.0, implicitPrefs=True,
        regParam=spark_regularization(params, counts[0] / counts[1]),
        userCol="customer", itemCol="article", ratingCol="confidence",
        seed=params.random_state, checkpointInterval=CHECKPOINT_INTERVAL, numUserBlocks=blocks, numItemBlocks=blocks,
    )  # fmt: skip
    model = als.fit(ratings)  # ratings already in MLlib's terms (`mllib_ratings`), so alpha stays 1
    out = Path(work_dir) / "spark-factors"
    model.userFactors.write.mode("overwrite").parquet(str(out / "customers"))
    model.itemFactors.write.mode("overwrite").parquet(str(out / "articles"))
    ratings.unpersist()
    report(0.9, f"Spark ALS done in {time.perf_counter() - started:.0f} s")
    users = _dense(out / "customers", n_customers, params.factors)
    items = _dense(out / "articles", n_articles, params.factors)
    return users, items


def _dense(folder: Path, n: int, rank: int) -> np.ndarray:
    """MLlib's (id, features) rows → an (n, rank) float32 array indexed by id (zeros where no row)."""
    table = pq.read_table(folder)
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks().flatten().to_numpy().astype(np.float32)
    out = np.zeros((n, rank), dtype=np.float32)
    out[ids] = features.reshape(len(ids), rank)
    return out


def state_from_factors(
    catalog: Catalog, user_factors: np.ndarray, item_factors: np.ndarray, params: CollabParams = CollabParams(),
    *, until=None, progress: Progress | None = None,
) -> CollabState:
    """The state `CollabState.fit` makes, with these factors in place of implicit's ALS (interactions for
    serving, article statistics, HNSW of customers as usual)."""
    import implicit.cpu.als

    def given_factors(user_items, params: CollabParams, report) -> implicit.cpu.als.AlternatingLeastSquares:
        als = implicit.cpu.als.AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=params.alpha,
            iterations=params.iterations, random_state=params.random_state,
        )
        als.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        als.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        return als

    return CollabState.fit(catalog, params, until=until, progress=progress, factorize=given_factors)


def save_factors_as_collab(
    catalog: Catalog, store: ArtifactStore, user_factors: np.ndarray, item_factors: np.ndarray,
    params: CollabParams = CollabParams(), *, until=None, progress: Progress | None = None,
) -> CollabState:
    """The `collab` artifact exactly as `CollabState.fit(...).save(store)` writes it, with these factors."""
    state = state_from_factors(catalog, user_factors, item_factors, params, until=until, progress=progress)
    state.save(store, meta={"engine": "spark"})
    return state


def fit_state_on_spark(spark, catalog: Catalog, store: ArtifactStore, params: CollabParams, until) -> CollabState:
    """The state trained on the purchases before ``until`` with Spark's factors: what the ranker trains on
    when the served factors are Spark's (train and serve see factors of the same engine)."""
    work = store.scratch("spark_als")
    users, items = fit_factors(spark, transactions_parquet(store, catalog), len(catalog.customer_ids),
                               len(catalog.articles), work, params, until=until)
    return state_from_factors(catalog, users, items, params, until=until)


def fit_collab_on_spark(
    spark, catalog: Catalog, store: ArtifactStore, params: CollabParams = CollabParams(), *,
    until=None, progress: Progress | None = None,
) -> CollabState:
    """Spark ALS on the catalogue's purchases, saved as the `collab` artifact; returns the CollabState."""
    report = progress or (lambda fraction, message: None)
    work = store.scratch("spark_als")
    until = CollabState.training_cut(catalog, until)  # the rows the local fit would train on
    users, items = fit_factors(spark, transactions_parquet(store, catalog), len(catalog.customer_ids),
                               len(catalog.articles), work, params, until=until,
                               progress=lambda f, m: report(0.8 * f, m))
    state = save_factors_as_collab(catalog, store, users, items, params, until=until,
                                   progress=lambda f, m: report(0.8 + 0.2 * f, m))
    store.clear_scratch("spark_als")
    report(1.0, "collaborative model ready (Spark ALS)")
    return state
