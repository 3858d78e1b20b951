"""With the hub unreachable (here: its endpoint at a closed loopback port), the default model's load
fails within seconds, so `build` falls back (or, with --no-fallback, says why) instead of hanging."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import HUB_UNREACHABLE_ENV

from recommender.catalog import REQUIRED_ARTICLE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
PROXIES = {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}


def test_default_model_fails_fast_when_the_hub_endpoint_is_a_closed_port(tmp_path):
    data = tmp_path / "shop"
    data.mkdir()
    row = ["0108775015"] + ["x"] * (len(REQUIRED_ARTICLE_COLUMNS) - 1)
    (data / "articles.csv").write_text(f"{','.join(REQUIRED_ARTICLE_COLUMNS)}\n{','.join(row)}\n")
    # Not offline mode: the probe itself must find the endpoint unreachable (as on a machine whose
    # network cannot reach the hub).
    env = {k: v for k, v in os.environ.items() if k not in PROXIES and k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = HUB_UNREACHABLE_ENV["HF_ENDPOINT"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "recommender", "build", "--no-fallback", "--data", str(data),
         "--artifacts", str(tmp_path / "artifacts")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: cannot load hf-hub:Marqo/marqo-fashionCLIP: 127.0.0.1 is unreachable")
    assert "Traceback" not in done.stderr
    assert elapsed < 60  # interpreter start + imports; a hub retry loop would take minutes
