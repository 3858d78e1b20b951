"""configure_threads: the limits hold process-wide, in threads started later (as a server's are)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recommender.errors import InputError
from recommender.runtime import ITEMS_PER_WORKER, forked_map, thread_plan

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: thread limits are process state, fixed when the libraries load.
PROBE = """
import json, sys, threading
from recommender.runtime import configure_threads
configure_threads(sys.argv[1], cores=2)
import faiss, numpy as np, scipy.linalg, torch
from threadpoolctl import threadpool_info

seen = {"blas": sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})}

def query():  # what a request thread does: encode with torch, then search with FAISS
    torch.ones(64, 64) @ torch.ones(64, 64)
    index = faiss.IndexFlatIP(8)
    index.add(np.ones((16, 8), dtype="float32"))
    index.search(np.ones((4, 8), dtype="float32"), 2)
    seen["faiss_in_thread"] = faiss.omp_get_max_threads()
    seen["torch_in_thread"] = torch.get_num_threads()

worker = threading.Thread(target=query)
worker.start()
worker.join()
seen["torch"] = torch.get_num_threads()
print(json.dumps(seen))
"""


def effective_limits(purpose: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE, purpose], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_serving_limits_blas_and_faiss_to_one_thread_and_lets_torch_use_the_cores():
    assert effective_limits("serve") == {"blas": [1], "faiss_in_thread": 1, "torch_in_thread": 2, "torch": 2}


def test_building_lets_every_library_use_every_core():
    cores = min(2, os.cpu_count() or 1)  # OpenBLAS never runs more threads than the machine has cores
    assert effective_limits("build") == {"blas": [cores], "faiss_in_thread": 2, "torch_in_thread": 2, "torch": 2}


def test_an_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="purpose must be one of serve, build, not 'query'"):
        thread_plan("query", 4)


def test_forked_map_keeps_the_items_order_and_runs_in_other_processes():
    parent = os.getpid()
    items = list(range(4 * ITEMS_PER_WORKER))
    def square(i):
        time.sleep(0.05)  # long enough that both workers take items
        return i * i, os.getpid()

    results = list(forked_map(square, items, workers=2))
    assert [square for square, _ in results] == [i * i for i in items]
    pids = {pid for _, pid in results}
    assert parent not in pids and len(pids) == 2  # both workers took items; the parent took none


def test_forked_map_runs_here_when_there_is_too_little_to_share():
    parent = os.getpid()
    few = list(forked_map(lambda i: os.getpid(), range(2 * ITEMS_PER_WORKER - 1), workers=2))
    assert set(few) == {parent}
    assert list(forked_map(lambda i: os.getpid(), range(100), workers=1)) == [parent] * 100


def test_forked_map_runs_here_outside_the_main_thread():
    # a Streamlit session or a server request: forking beside other threads is unsafe
    out = []
    worker = threading.Thread(target=lambda: out.extend(forked_map(lambda i: os.getpid(), range(40), workers=2)))
    worker.start()
    worker.join()
    assert set(out) == {os.getpid()}


def test_an_error_in_a_forked_worker_reaches_the_caller_with_its_message():
    def check(i):
        if i == 9:
            raise InputError(f"item {i} is malformed")
        return i

    with pytest.raises(InputError, match="item 9 is malformed"):
        list(forked_map(check, range(20), workers=2))
