"""Shared fixtures: the real H&M sample (../shared/hm_sample) and a small generated demo catalogue."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path


def _closed_loopback_endpoint() -> str:
    """http://127.0.0.1:<a port nothing listens on>: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# The tests exercise the offline fallback (the default hub model cannot be loaded → a catalogue-trained
# model), so the Hugging Face hub is made unreachable for this process and every subprocess it starts (CLI
# runs, the Streamlit server): offline mode, an endpoint at a closed loopback port, and an empty cache, so a
# machine with network, or with the default model already downloaded, runs the same tests. Set before
# anything imports huggingface_hub (it reads these once, at import).
HUB_UNREACHABLE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_ENDPOINT": _closed_loopback_endpoint(),
    "HF_HUB_CACHE": tempfile.mkdtemp(prefix="lookbook-test-empty-hf-cache-"),
}
os.environ.update(HUB_UNREACHABLE_ENV)
atexit.register(shutil.rmtree, HUB_UNREACHABLE_ENV["HF_HUB_CACHE"], ignore_errors=True)
if "huggingface_hub" in sys.modules:  # imported early by a plugin: its constants are already read
    from huggingface_hub import constants as _hub_constants

    _hub_constants.HF_HUB_OFFLINE = True
    _hub_constants.ENDPOINT = HUB_UNREACHABLE_ENV["HF_ENDPOINT"]
    _hub_constants.HF_HUB_CACHE = HUB_UNREACHABLE_ENV["HF_HUB_CACHE"]

import pytest  # noqa: E402
import torch  # noqa: E402

from recommender.train_clip import DEFAULT_EPOCHS  # noqa: E402

# Tiny test models gain nothing from intra-op threads, and oversubscribed cores make them much slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
HM_SAMPLE = Path(os.environ.get("LOOKBOOK_HM_SAMPLE", REPO.parent / "shared" / "hm_sample"))
IN_CI = os.environ.get("CI", "").lower() == "true"
# Developers only: a folder that keeps the demo data and its built artifacts between pytest runs, so a
# targeted run does not retrain the demo model each time (the build skips what its manifests say is current).
DEV_CACHE = Path(os.environ["LOOKBOOK_TEST_CACHE"]) if os.environ.get("LOOKBOOK_TEST_CACHE") else None

# A build backtests only where a test asks for it (the shared demo build does): each week trains a ranker.
os.environ.setdefault("LOOKBOOK_BACKTEST_WEEKS", "0")
DEMO_BACKTEST_WEEKS = 3

# Small enough for seconds, large enough that tastes and silhouettes carry a signal.
DEMO_TEST_SIZE = {"n_articles": 400, "n_customers": 200, "seed": 7}


def require_hm_sample() -> Path:
    """The sample's path; skip when it is absent, except in CI where its absence is a failure."""
    if (HM_SAMPLE / "articles.csv").is_file():
        return HM_SAMPLE
    reason = f"real H&M sample data not found at {HM_SAMPLE} (set LOOKBOOK_HM_SAMPLE)"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def hm_sample_dir() -> Path:
    return require_hm_sample()


@pytest.fixture(scope="session")
def hm_catalog(hm_sample_dir, tmp_path_factory):
    from recommender.catalog import load_catalog

    return load_catalog(hm_sample_dir, cache_dir=tmp_path_factory.mktemp("hm_cache"))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from recommender.demo import generate_demo

    if DEV_CACHE and (DEV_CACHE / "demo" / "articles.csv").is_file():
        return DEV_CACHE / "demo"
    return generate_demo((DEV_CACHE or tmp_path_factory.mktemp("demo")) / "demo", **DEMO_TEST_SIZE)


@pytest.fixture(scope="session")
def demo_catalog(demo_dir):
    from recommender.catalog import load_catalog

    return load_catalog(demo_dir)


# lookbook-tiny on the demo trains for the shipped default (30): with 12, at 96×64, whether "red dress"
# finds red dresses depended on the seed.
DEMO_TRAIN_EPOCHS = DEFAULT_EPOCHS


@pytest.fixture(scope="session")
def demo_settings(demo_dir, tmp_path_factory):
    """The small demo built once, as the app's first run does: the default pretrained source (unreachable
    here, so the build falls back) → lookbook-tiny trained on the demo → embeddings → FAISS → ALS + HNSW."""
    from recommender.config import Settings
    from recommender.pipeline import build

    settings = Settings(data_dir=demo_dir, artifacts_dir=DEV_CACHE / "artifacts" if DEV_CACHE else tmp_path_factory.mktemp("artifacts"),
                        train_epochs=DEMO_TRAIN_EPOCHS, backtest_weeks=DEMO_BACKTEST_WEEKS)
    build(settings, log=lambda message: None)
    return settings


@pytest.fixture(scope="session")
def demo_engine(demo_settings):
    from recommender.pipeline import open_engine

    return open_engine(demo_settings)
