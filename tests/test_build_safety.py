"""`build` under stress: damaged artifacts, edited data, two builders at once and a builder killed with -9."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recommender.errors import ArtifactError, BuildRunningError
from recommender.pipeline import build, open_engine
from recommender.store import ArtifactStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mini_settings(tmp_path_factory):
    """A small demo (80 articles) built once with a one-epoch catalogue model: every test here rebuilds
    parts of it, so it is kept small; the search quality of the full demo is tested elsewhere."""
    from recommender.config import Settings
    from recommender.demo import generate_demo

    root = tmp_path_factory.mktemp("mini")
    data = generate_demo(root / "shop", n_articles=80, n_customers=40, seed=3)
    settings = Settings(data_dir=data, artifacts_dir=root / "artifacts", pretrained="hf-hub:Marqo/marqo-fashionCLIP",
                        train_epochs=1)
    build(settings, log=lambda message: None)
    return settings


def copy_artifacts(settings, tmp_path: Path, data_dir: Path | None = None):
    """A private copy of the built demo artifacts (and optionally of its data) to damage or rebuild."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(settings.artifacts_dir, artifacts, ignore=shutil.ignore_patterns("scratch", ".build.*"))
    if data_dir is not None:
        shutil.copytree(settings.data_dir, data_dir)
        return settings.with_(data_dir=data_dir, artifacts_dir=artifacts)
    return settings.with_(artifacts_dir=artifacts)


def folders(settings) -> dict[str, str]:
    store = ArtifactStore(settings.artifacts_dir)
    return {name: store.manifest(name)["folder"] for name in store.names()}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# (artifact, file, how the engine is used to reach it)
DAMAGE = [
    ("content_index", "index.faiss", "search"),
    ("content_index", "article_ids.npy", "search"),
    ("collab", "customers.hnsw", "collab"),
    ("collab", "arrays.npz", "collab"),
    ("clip_model", "choice.json", "open"),
    ("catalog", "transactions.parquet", "open"),
    ("collab", None, "collab"),  # an emptied manifest
]


@pytest.mark.parametrize("artifact, file, use", DAMAGE, ids=[f"{a}-{f or 'manifest'}" for a, f, _ in DAMAGE])
def test_damaged_artifact_is_refused_clearly_then_rebuilt_alone(mini_settings, tmp_path, artifact, file, use):
    settings = copy_artifacts(mini_settings, tmp_path)
    before = folders(settings)
    root = settings.artifacts_dir
    if file is None:
        (root / f"{artifact}.json").write_text("")
    else:
        truncate(root / before[artifact] / file)

    if artifact == "catalog":  # the parquet cache repairs itself: the catalogue is read from the CSVs again
        engine = open_engine(settings)
        assert len(engine.catalog.transactions) > 0 and folders(settings)["catalog"] != before["catalog"]
    else:
        with pytest.raises(ArtifactError) as err:
            engine = open_engine(settings)
            getattr(engine, use)
        message = str(err.value)
        assert f"artifact '{artifact}'" in message and f"python -m recommender build --data {settings.data_dir}" in message
        assert ("is damaged" in message and file in message) if file else "unreadable manifest" in message
        if use == "collab":  # a broken collaborative artifact does not block text search
            assert len(open_engine(settings).search.search(text="red dress", k=3)) == 3

    log = []
    build(settings, log=log.append)
    after = folders(settings)
    assert after[artifact] != before.get(artifact)
    if artifact != "catalog":
        assert any(line.startswith(f"artifact '{artifact}' is damaged") for line in log), log
    dependants = {"clip_model": {"embeddings", "content_index", "lookalikes"}, "embeddings": {"content_index", "lookalikes"},
                  "content_index": {"lookalikes"}}.get(artifact, set())  # made from the damaged one
    untouched = set(before) - {artifact, "catalog"} - dependants
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}
    engine = open_engine(settings)
    assert len(engine.search.search(text="red dress", k=3)) == 3 and engine.collab is not None


def test_rebuilds_are_proportional_to_what_changed(mini_settings, tmp_path):
    settings = copy_artifacts(mini_settings, tmp_path, data_dir=tmp_path / "shop")
    copied = folders(settings)
    log = []
    build(settings, log=log.append)  # the same data in another folder: artifacts match by content, none rebuilt
    assert folders(settings) == copied

    articles_csv = settings.data_dir / "articles.csv"
    before = folders(settings)
    os.utime(articles_csv, (time.time() + 60, time.time() + 60))  # touch: same bytes
    log.clear()
    build(settings, log=log.append)
    assert folders(settings) == before and not log

    articles = pd.read_csv(articles_csv, dtype=str, keep_default_na=False)
    with_image = [a for a in articles["article_id"] if (settings.data_dir / "images" / a[:3] / f"{a}.jpg").is_file()]
    articles.loc[articles["article_id"] == with_image[0], "prod_name"] = "Renamed on purpose"
    articles.to_csv(articles_csv, index=False)
    log.clear()
    build(settings, log=log.append)
    after = folders(settings)
    assert after["clip_model"] == before["clip_model"] and after["embeddings"] != before["embeddings"]
    assert f"model: kept — 1 changed, 0 added, 0 removed of {len(with_image)} image–caption pairs ({1 / len(with_image):.1%}) is within 5%; " \
           "only the changed articles are re-embedded" in log
    counts = json.loads((settings.artifacts_dir / "embeddings.json").read_text())["meta"]["counts"]
    assert (counts["embedded_images"], counts["embedded_captions"]) == (0, 1)

    changed = articles["article_id"].isin(with_image[: len(with_image) // 10])
    articles.loc[changed, "prod_name"] = articles.loc[changed, "prod_name"] + " (new season)"
    articles.to_csv(articles_csv, index=False)
    log.clear()
    build(settings, log=log.append)
    assert folders(settings)["clip_model"] != before["clip_model"]
    assert any(line.startswith("model: retraining — ") and "over 5%" in line for line in log), log


def cli_build(settings, output: Path) -> subprocess.Popen:
    """`python -m recommender build` in its own process, its output to a file (a pipe nobody reads
    while this test waits on the lock could fill up and stall the builder)."""
    with open(output, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "recommender", "build", "--data", str(settings.data_dir),
             "--artifacts", str(settings.artifacts_dir), "--epochs", "1"],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_two_builders_one_trains_and_a_killed_one_is_recovered(mini_settings, tmp_path):
    settings = copy_artifacts(mini_settings, tmp_path)
    store = ArtifactStore(settings.artifacts_dir)
    (settings.artifacts_dir / "clip_model.json").unlink()  # both builders find the model missing

    trainer = cli_build(settings, tmp_path / "trainer.txt")  # one builder is a `build` command, the other this test
    wait_for(lambda: (settings.artifacts_dir / ".build.owner").is_file())
    log = []
    build(settings, log=log.append)  # waits for the command's lock, then finds its model built
    trainer.wait(timeout=300)
    err = (tmp_path / "trainer.txt").read_text()
    assert trainer.returncode == 0, err
    assert "notice: ViT-B-16 hf-hub:Marqo/marqo-fashionCLIP could not be loaded" in err  # it trained
    assert log[0].startswith(f"another build is running on {settings.artifacts_dir} (pid {trainer.pid} on ")
    assert log[0].endswith("waiting for it to finish")
    assert not any("could not be loaded" in line for line in log)  # only one of the two trained

    # kill -9 a builder while it trains: the lock dies with it, and the next build finishes the job
    (settings.artifacts_dir / "clip_model.json").unlink()
    victim = cli_build(settings, tmp_path / "victim.txt")
    wait_for(lambda: (settings.artifacts_dir / "scratch" / "clip_model").is_dir())
    with pytest.raises(BuildRunningError, match=rf"a build is already running on .* \(pid {victim.pid} on "):
        build(settings, wait=0)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    build(settings, wait=0, log=lambda message: None)  # the survivor
    assert not list(settings.artifacts_dir.glob(".tmp-*")) and not (settings.artifacts_dir / ".build.owner").exists()
    assert not (settings.artifacts_dir / "scratch" / "clip_model").exists()
    assert store.manifest("clip_model") and len(open_engine(settings).search.search(text="dress", k=2)) == 2


def test_a_file_damaged_with_its_size_intact_is_an_artifact_error_not_a_traceback(mini_settings, tmp_path):
    settings = copy_artifacts(mini_settings, tmp_path)
    arrays = settings.artifacts_dir / folders(settings)["collab"] / "arrays.npz"
    arrays.write_bytes(b"\0" * arrays.stat().st_size)  # same size: only the checksum in `build` sees it
    engine = open_engine(settings)
    with pytest.raises(ArtifactError, match=r"collab.* (is unreadable|cannot be read) .*; rebuild with `python -m recommender build"):
        engine.collab
    assert len(engine.search.search(text="dress", k=2)) == 2
    log = []
    build(settings, log=log.append)
    assert log == ["artifact 'collab' is damaged (arrays.npz has other contents than when built (checksum)); rebuilding it"]
    assert open_engine(settings).collab is not None


def test_engine_parts_load_once_on_first_use_from_many_threads(mini_settings):
    from concurrent.futures import ThreadPoolExecutor

    engine = open_engine(mini_settings)
    with ThreadPoolExecutor(8) as pool:
        searches = list(pool.map(lambda _: engine.search, range(16)))
    assert all(search is searches[0] for search in searches)
    assert "collab" not in engine._parts  # a search never loads the collaborative model
    assert engine.collab is engine.collab is not None
