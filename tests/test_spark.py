"""The build on Spark (recommender/spark/), against the local path on the demo: real Spark in local[2], and a
real standalone cluster (a master and two workers started with Spark's own scripts on loopback)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

try:
    import pyspark  # noqa: F401
except ImportError:  # required under CI=true: the Spark build is part of what CI proves
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("pip install -r requirements-spark.txt", allow_module_level=True)

from recommender.collab import CollabModel, CollabParams, CollabState
from recommender.collab.blend import blend, profile, signals
from recommender.config import Settings
from recommender.evaluate import map_at_k
from recommender.pipeline import build, open_engine
from recommender.spark.embeddings import embed_catalog_on_spark
from recommender.interactions import Confidence, build_interactions
from recommender.spark.als import (
    confidence_frame, fit_factors, mllib_ratings, save_factors_as_collab, spark_regularization, transactions_parquet,
)
from recommender.spark.session import spark_session
from recommender.store import ArtifactStore

REPO = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).resolve().parent
SPARK_STEPS = ("embeddings", "content_index", "collab")  # what a Spark build redoes from a local one


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    with spark_session("local[2]", tmp_path_factory.mktemp("spark")) as session:
        yield session


def without_spark_steps(settings: Settings, folder: Path) -> Settings:
    """A copy of the demo's artifacts with the catalogue cache and the CLIP model, not the rest."""
    shutil.copytree(settings.artifacts_dir, folder, ignore=shutil.ignore_patterns("scratch"))
    for name in SPARK_STEPS:
        (folder / f"{name}.json").unlink()
    return settings.with_(artifacts_dir=folder)


def test_spark_embeddings_equal_the_local_job(spark, demo_engine, demo_settings, tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    embed_catalog_on_spark(spark, demo_engine.catalog, demo_engine.embedder, store)
    local = ArtifactStore(demo_settings.artifacts_dir).load("embeddings")
    on_spark = store.load("embeddings")
    assert on_spark.meta == local.meta  # same model, data, dimension and image/text counts
    for name in ("article_ids.npy", "indexed_by.npy"):
        assert np.array_equal(np.load(on_spark.path / name), np.load(local.path / name))
    a, b = np.load(on_spark.path / "vectors.npy"), np.load(local.path / "vectors.npy")
    cosine = (a * b).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    assert (on_spark.path / "unreadable_images.txt").read_text() == (local.path / "unreadable_images.txt").read_text()
    assert not (tmp_path / "artifacts" / "scratch" / "embeddings").exists()  # chunks cleared once assembled


def test_spark_als_reaches_implicit_map_on_the_planted_tastes(spark, demo_engine, demo_settings, tmp_path):
    """Both trained on all but the last 4 weeks of the demo; ranked by ALS scores alone; MAP@12 on those weeks."""
    store = ArtifactStore(demo_settings.artifacts_dir)
    catalog = demo_engine.catalog
    days = catalog.transactions["t_dat"]
    until = days.iat[-1].normalize() - np.timedelta64(27, "D")
    test = catalog.transactions[days >= until]
    params = CollabParams()
    local = CollabState.fit(catalog, params, until=until)
    users, items = fit_factors(spark, transactions_parquet(store, catalog), len(catalog.customer_ids),
                               len(catalog.articles), tmp_path, params, until=until)
    trained = np.diff(local.interactions.counts.indptr) > 0
    assert np.abs(users[trained]).sum(axis=1).min() > 0 and not users[~trained].any()
    on_spark = save_factors_as_collab(catalog, ArtifactStore(tmp_path / "artifacts"), users, items, params, until=until)
    local_map, spark_map = als_map(local, test), als_map(on_spark, test)
    print(f"ALS MAP@12 on {len(test):,} held-out purchases: implicit {local_map:.4f}, Spark {spark_map:.4f}")
    assert spark_map >= 0.9 * local_map, (spark_map, local_map)
    truth = test.groupby("customer")["article"].agg(lambda a: set(a.tolist()))
    popular = np.bincount(catalog.transactions[days < until]["article"], minlength=len(catalog.articles))
    popular_map = map_at_k(truth.tolist(), [np.argsort(-popular, kind="stable")[:12].tolist()] * len(truth))
    assert spark_map > 1.5 * popular_map, (spark_map, popular_map)
    # The saved artifact loads as the local one does.
    loaded = CollabModel.load(ArtifactStore(tmp_path / "artifacts"), catalog)
    assert np.array_equal(loaded.state.als.item_factors, items)


@pytest.mark.parametrize("weighting", ["tfidf", "bm25"])
def test_spark_weights_purchases_as_the_local_path(spark, demo_engine, demo_settings, weighting):
    catalog, params = demo_engine.catalog, CollabParams(weighting=weighting)
    inter = build_interactions(catalog.transactions, len(catalog.customer_ids), len(catalog.articles),
                               half_life_days=params.recency_half_life_days)
    _, local = Confidence.fit(inter.recency, weighting)
    parquet = transactions_parquet(ArtifactStore(demo_settings.artifacts_dir), catalog)
    rows = confidence_frame(spark, parquet, len(catalog.articles), params).toPandas()
    on_spark = sp.csr_matrix((rows["confidence"], (rows["customer"], rows["article"])), shape=local.shape)
    assert on_spark.nnz == local.nnz
    np.testing.assert_allclose(on_spark.toarray(), local.toarray(), rtol=1e-4, atol=1e-6)


def als_map(state: CollabState, test) -> float:
    """MAP@12 of ranking by the ALS score alone (bought articles allowed), over the test's customers."""
    truth = test.groupby("customer")["article"].agg(lambda a: set(a.tolist()))
    predicted = []
    for code in truth.index:
        shopper = profile(state, int(code))
        scored = signals(state, shopper, ["als"])
        predicted.append(blend(state, shopper, scored, 12, exclude_bought=False, weights={"als": 1.0})[0].tolist())
    return map_at_k(truth.tolist(), predicted)


def test_alpha_is_converted_to_mllibs_one_plus_alpha_r_confidence(spark):
    # implicit's confidence is alpha·c; MLlib's is 1 + r at alpha 1: r = alpha·c − 1, and every purchase
    # stays a preference (r > 0) even where alpha·c < 1.
    frame = spark.createDataFrame([(0, 0, 3.0), (0, 1, 0.5), (1, 0, 1.0)], "customer int, article int, confidence float")
    ratings = {(row.customer, row.article): row.confidence for row in mllib_ratings(frame, alpha=2.0).collect()}
    assert ratings[(0, 0)] == pytest.approx(5.0) and ratings[(1, 0)] == pytest.approx(1.0)
    assert 0 < ratings[(0, 1)] <= 1e-5


def test_regularisation_is_converted_to_mllibs_per_purchase_scaling():
    assert spark_regularization(CollabParams(regularization=0.05), mean_purchases=25.0) == pytest.approx(0.002)
    assert spark_regularization(CollabParams(regularization=0.05), mean_purchases=0.0) == pytest.approx(0.05)


def test_spark_master_without_the_spark_engine_is_refused(demo_settings):
    done = subprocess.run([sys.executable, "-m", "recommender", "build", "--data", str(demo_settings.data_dir),
                           "--spark-master", "local[2]"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --spark-master needs --engine spark"


def test_missing_java_is_one_clear_line(demo_settings, tmp_path):
    settings = without_spark_steps(demo_settings, tmp_path / "artifacts")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"} | {"PATH": str(tmp_path)}  # no java on it
    done = subprocess.run([sys.executable, "-m", "recommender", "build", "--engine", "spark", "--data",
                           str(settings.data_dir), "--artifacts", str(settings.artifacts_dir)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: build --engine spark needs a Java runtime (17 or later): e.g. apt-get install default-jre-headless")


# --- a standalone cluster on loopback ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_cluster(tmp_path):
    """A master and two workers (1 core, 1 GB each) on 127.0.0.1, started and stopped with Spark's own
    sbin/spark-daemon.sh (what start-master.sh / start-worker.sh call; pyspark's wheel ships only this one)."""
    port = _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_MASTER_HOST": "127.0.0.1",
        "SPARK_PID_DIR": str(tmp_path / "pids"), "SPARK_LOG_DIR": str(tmp_path / "logs"),
        "SPARK_WORKER_DIR": str(tmp_path / "work"), "SPARK_IDENT_STRING": f"lookbook-test-{os.getpid()}",
        "PYSPARK_PYTHON": sys.executable,
    }  # fmt: skip
    master = f"spark://127.0.0.1:{port}"
    daemons = [("org.apache.spark.deploy.master.Master", "1",
                ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(_free_port())])]
    daemons += [("org.apache.spark.deploy.worker.Worker", str(n),
                 ["--host", "127.0.0.1", "--cores", "1", "--memory", "1g", "--webui-port", str(_free_port()), master])
                for n in (1, 2)]  # fmt: skip

    def daemon(action: str, cls: str, instance: str, *args: str) -> None:
        subprocess.run(["bash", str(SPARK_HOME / "sbin" / "spark-daemon.sh"), action, cls, instance, *args],
                       env=env, timeout=120, capture_output=True, text=True, check=True)

    started = []
    try:
        for cls, instance, args in daemons:
            daemon("start", cls, instance, *args)
            started.append((cls, instance))
        yield master, env
    finally:
        for cls, instance in reversed(started):
            daemon("stop", cls, instance)


def test_build_submitted_to_a_standalone_cluster(standalone_cluster, demo_settings, demo_engine, tmp_path):
    """`build --engine spark` on the cluster: embeddings and ALS by its executors, the engine opens the result."""
    master, env = standalone_cluster
    settings = without_spark_steps(demo_settings, tmp_path / "artifacts")
    log = tmp_path / "build.log"
    with open(log, "w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "recommender", "build", "--engine", "spark", "--spark-master", master,
             "--data", str(settings.data_dir), "--artifacts", str(settings.artifacts_dir)],
            cwd=REPO, env={**env, "LOOKBOOK_SPARK_CONF": "spark.executor.memory=768m,spark.cores.max=2"},
            stdout=out, stderr=subprocess.STDOUT, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text()[-3000:]
    # Both workers ran executors of the build (the master's scheduler spread the 2 cores over them).
    executors = list(Path(env["SPARK_WORKER_DIR"]).glob("app-*/*"))  # app-<id>/<executor id>, one per worker
    assert len(executors) >= 2, executors
    store = ArtifactStore(settings.artifacts_dir)
    assert store.manifest("collab")["meta"]["engine"] == "spark"
    assert store.manifest("ranker")["meta"]["factors"] == "spark"  # trained on MLlib's factors, as served
    engine = open_engine(settings)
    for query in ("red dress", "black trousers"):  # embeddings equal the local ones, so the same results
        assert engine.search.search(text=query, k=12)["article_id"].tolist() == \
            demo_engine.search.search(text=query, k=12)["article_id"].tolist()
    customer = engine.collab.example_customers(1)[0]
    recs = engine.collab.recommend(customer, k=12)
    assert len(recs) == 12 and recs["reason"].str.len().gt(0).all()
    similar = engine.collab.similar_customers(customer, k=10)
    assert len(similar) == 10 and customer not in set(similar["customer_id"])
    # A local build over the Spark one finds every artifact current: the formats are the same.
    manifests = {name: store.manifest(name)["folder"] for name in store.names()}
    build(settings, log=lambda message: None)
    assert {name: store.manifest(name)["folder"] for name in store.names()} == manifests
