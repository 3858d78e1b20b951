"""`build` end to end on the demo: offline fallback, resumability, stale-artifact refusal, and the CLI verbs."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.config import Settings
from recommender.errors import ArtifactError, ModelError
from recommender.pipeline import build, open_engine
from recommender.store import ArtifactStore

REPO = Path(__file__).resolve().parents[1]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recommender", *args, "--data", str(settings.data_dir),
         "--artifacts", str(settings.artifacts_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def test_offline_default_falls_back_with_a_visible_notice(demo_engine, demo_settings):
    assert demo_settings.pretrained == "hf-hub:Marqo/marqo-fashionCLIP"  # the real default stays the default
    assert demo_engine.embedder.model_name == "lookbook-tiny"
    assert any("hf-hub:Marqo/marqo-fashionCLIP could not be loaded" in n and "trained on this catalogue" in n
               for n in demo_engine.notices)
    status = demo_engine.status()
    articles = demo_engine.catalog.articles
    assert status["articles"] == len(articles)
    assert status["indexed_by_image"] == int(articles["has_image"].sum())
    assert status["indexed_by_image"] + status["indexed_by_text"] == len(articles)
    assert status["customers"] == demo_engine.catalog.transactions["customer"].nunique()


def test_second_build_is_a_no_op(demo_settings):
    store = ArtifactStore(demo_settings.artifacts_dir)
    before = {name: store.manifest(name)["folder"] for name in store.names()}
    assert {"clip_model", "embeddings", "content_index", "collab"} <= set(before)
    start = time.perf_counter()
    build(demo_settings, log=lambda m: None)
    assert {name: store.manifest(name)["folder"] for name in store.names()} == before
    assert time.perf_counter() - start < 30  # nothing retrained or re-embedded (generous bound, not a benchmark)


def test_killed_build_resumes_without_redoing_finished_steps(demo_settings, tmp_path, monkeypatch):
    import shutil

    from recommender import collab

    artifacts = tmp_path / "artifacts"
    shutil.copytree(demo_settings.artifacts_dir, artifacts)
    settings = demo_settings.with_(artifacts_dir=artifacts)
    store = ArtifactStore(artifacts)
    (artifacts / "collab.json").unlink()  # as if the build was killed before the last step committed
    embeddings_before = store.manifest("embeddings")["folder"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(collab.CollabState, "fit", classmethod(killed))
    with pytest.raises(KeyboardInterrupt):
        build(settings, log=lambda m: None)
    engine = open_engine(settings)  # search works without the collaborative artifact
    assert len(engine.search.search(text="red dress", k=3)) == 3
    with pytest.raises(ArtifactError, match="'collab' has not been built"):
        engine.collab
    with pytest.raises(ArtifactError, match="collaborative model .* is missing or not current"):
        engine.check_built()
    monkeypatch.undo()
    build(settings, log=lambda m: None)
    assert store.manifest("embeddings")["folder"] == embeddings_before
    assert open_engine(settings).collab is not None


def test_artifacts_from_another_model_are_refused_with_the_rebuild_command(demo_settings):
    other = demo_settings.with_(model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(ArtifactError) as err:
        open_engine(other)
    message = str(err.value)
    assert "requested: built with ViT-B-16 hf-hub:Marqo/marqo-fashionCLIP, now ViT-B-32 laion2b_s34b_b79k" in message
    assert f"python -m recommender build --data {demo_settings.data_dir}" in message


def test_no_fallback_fails_fast_with_the_reason(demo_settings, tmp_path):
    settings = demo_settings.with_(artifacts_dir=tmp_path / "fresh", fallback=False)
    start = time.perf_counter()
    with pytest.raises(ModelError, match="hf-hub:Marqo/marqo-fashionCLIP"):
        build(settings, log=lambda m: None)
    assert time.perf_counter() - start < 30


def test_cli_search_json_returns_ids_scores_and_metadata(demo_settings, demo_engine):
    red_dress = demo_engine.catalog.articles.query(
        "product_type_name == 'Dress' and colour_group_name == 'Red' and has_image").iloc[0]
    done = cli(demo_settings, "search", "--like", red_dress.article_id, "-k", "5", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 5
    assert {"article_id", "score", "prod_name", "product_type_name", "colour_group_name"} <= set(rows[0])
    assert all(len(r["article_id"]) == 10 and r["article_id"] != red_dress.article_id for r in rows)
    # the CLI prints the engine's own ranking (its quality is tested in test_content.py)
    expected = demo_engine.search.search(like=[red_dress.article_id], k=5)
    assert [r["article_id"] for r in rows] == list(expected["article_id"])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_cli_recommend_many_customers_and_errors(demo_settings, demo_engine, tmp_path):
    customers = demo_engine.collab.example_customers(2)
    listing = tmp_path / "customers.txt"
    listing.write_text("\n".join(customers) + "\n")
    done = cli(demo_settings, "recommend", "--customers-file", str(listing), "-k", "3", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["customer_id"] for r in rows] == [customers[0]] * 3 + [customers[1]] * 3
    assert all(r["reason"] and len(r["article_id"]) == 10 for r in rows)
    assert {r["method"] for r in rows} == {demo_engine.collab.method}  # the backtest's choice
    done = cli(demo_settings, "recommend", "--customer", customers[0], "-k", "3", "--method", "als")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# {customers[0]} (method: als)\n")
    als = demo_engine.collab.recommend(customers[0], k=3, method="als")["article_id"].tolist()
    assert [line.split()[0] for line in done.stdout.splitlines()[2:]] == als
    article = demo_engine.catalog.articles["article_id"].iat[0]
    done = cli(demo_settings, "complete", "--article", article, "-k", "4", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["article_id"] for r in rows] == demo_engine.collab.complete_the_look(article, k=4)["article_id"].tolist()
    assert all(r["query_article"] == article and r["reason"] for r in rows)
    done = cli(demo_settings, "recommend", "--customer", customers[0], "--method", "best")
    assert done.returncode == 2 and "unknown method 'best'" in done.stderr and "Traceback" not in done.stderr

    done = cli(demo_settings, "recommend", "--customers-file", str(listing), "--submission")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "customer_id,prediction" and [line.split(",")[0] for line in lines[1:]] == customers
    assert all(len(set(line.split(",")[1].split(" "))) == 12 for line in lines[1:])
    assert "submission" in done.stderr  # the progress bar, on stderr: the file on stdout stays clean

    picked = demo_engine.catalog.articles.query("product_type_name == 'Shorts' and has_image")["article_id"][:2]
    done = cli(demo_settings, "recommend", "--items", *picked, "-k", "4", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 4 and all(r["reason"] for r in rows)

    done = cli(demo_settings, "similar-customers", "--customer", "not-a-customer")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: 'not-a-customer' is not a customer id (64 hexadecimal characters)"
    done = cli(demo_settings, "search", "--text", "dress", "--filter", "colour_group_name=Neon")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "colour_group_name 'Neon' is not in the catalogue" in done.stderr


def test_moved_data_and_artifacts_serve_without_a_rebuild(demo_settings, demo_engine, tmp_path):
    # Artifacts match their data by content: the dataset and its artifacts copied elsewhere (a container,
    # a serving machine) are current there, and the moved engine answers as the original does.
    import shutil

    shutil.copytree(demo_settings.data_dir, tmp_path / "elsewhere" / "shop")
    shutil.copytree(demo_settings.artifacts_dir, tmp_path / "mounted" / "artifacts")
    moved = Settings(data_dir=tmp_path / "elsewhere" / "shop", artifacts_dir=tmp_path / "mounted" / "artifacts",
                     train_epochs=demo_settings.train_epochs)
    engine = open_engine(moved)
    engine.check_built()
    assert engine.search.search(text="red dress", k=5)["article_id"].tolist() == \
        demo_engine.search.search(text="red dress", k=5)["article_id"].tolist()
    customer = demo_engine.collab.example_customers(1)[0]
    assert engine.collab.recommend(customer)["article_id"].tolist() == demo_engine.collab.recommend(customer)["article_id"].tolist()
    store = ArtifactStore(moved.artifacts_dir)
    before = {name: store.manifest(name)["folder"] for name in store.names()}
    build(moved, log=lambda m: None)
    assert {name: store.manifest(name)["folder"] for name in store.names()} == before  # nothing rebuilt


def test_artifacts_fingerprinted_by_path_are_relabelled_once_with_a_notice(demo_settings, tmp_path):
    # Earlier versions hashed the data folder's path into the fingerprint: such artifacts are the same
    # data's, so they are kept (relabelled), and the catalogue says so once.
    import shutil

    from recommender.catalog import _path_fingerprint, load_catalog

    artifacts = tmp_path / "artifacts"
    shutil.copytree(demo_settings.artifacts_dir, artifacts)
    catalog = load_catalog(demo_settings.data_dir, cache_dir=artifacts)
    old = _path_fingerprint(catalog.root, catalog.file_digests, catalog.image_digests)
    store = ArtifactStore(artifacts)
    for name in store.names():
        manifest = store.manifest(name)
        if manifest["meta"].get("data") == catalog.fingerprint():
            manifest["meta"]["data"] = old
            (artifacts / f"{name}.json").write_text(json.dumps(manifest))
    assert not store.is_current("collab", {"data": catalog.fingerprint()})
    again = load_catalog(demo_settings.data_dir, cache_dir=artifacts)
    assert store.is_current("collab", {"data": again.fingerprint()})
    assert any("now match their data by content" in notice and "collab" in notice for notice in again.notices)
    assert not any("by content" in notice for notice in load_catalog(demo_settings.data_dir, cache_dir=artifacts).notices)


def test_an_outdated_ranker_is_never_served_silently(demo_settings, tmp_path):
    # A ranker built by older code (another sources/features digest): check_built refuses to serve it
    # (the app shows the build command, the API answers 503 not_built), the loaded model does not use it,
    # and the build retrains it.
    import shutil

    shutil.copytree(demo_settings.artifacts_dir, tmp_path / "artifacts")
    settings = demo_settings.with_(artifacts_dir=tmp_path / "artifacts")
    manifest_path = tmp_path / "artifacts" / "ranker.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["meta"]["schema"] = "an-older-feature-list"
    manifest_path.write_text(json.dumps(manifest))
    engine = open_engine(settings)
    with pytest.raises(ArtifactError, match="the ranker .* is missing or not current .* build it with"):
        engine.check_built()
    assert engine.collab.ranker is None and engine.fallbacks and "hand-weighted blend" in engine.fallbacks[0]
    build(settings, log=lambda m: None)
    rebuilt = open_engine(settings)
    rebuilt.check_built()
    assert rebuilt.collab.ranker is not None and rebuilt.fallbacks == []


def test_build_stores_its_backtest_and_the_engine_serves_its_choice(demo_settings, demo_engine, monkeypatch):
    from conftest import DEMO_BACKTEST_WEEKS

    from recommender.collab import model as collab_model
    from recommender.evaluate import stored_backtest

    store = ArtifactStore(demo_settings.artifacts_dir)
    result = stored_backtest(store)
    choice = result.choice
    assert store.manifest("evaluation")["meta"]["chosen"] == choice["method"] == demo_engine.collab.method
    assert len(choice["weeks"]) == DEMO_BACKTEST_WEEKS == result.weekly["week"].nunique()
    assert choice["lower_bounds"][choice["method"]] == max(choice["lower_bounds"].values())  # the rule
    customer = demo_engine.collab.example_customers(1)[0]
    assert demo_engine.collab.recommend(customer).attrs["method"] == choice["method"]
    # A choice made for other code (another ranker schema) or other data is not served.
    monkeypatch.setattr(collab_model, "SCHEMA", "another")
    assert collab_model.chosen_method(store, demo_engine.catalog) is None
