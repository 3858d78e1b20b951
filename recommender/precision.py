"""The precision photos are encoded in, chosen by timing on this machine.

A CPU that reports native bf16 is not always faster in bf16: one machine ran the vision tower 2.3×
faster than in float32, another (with avx512_bf16) slower. So when a model is loaded with a
half-precision candidate (embed._fast_precision), both are timed on a small batch and the faster
kept; the choice is cached per machine and model in a small JSON file, so only the first load pays.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

BATCH = 4
REPEATS = 3


def machine_key() -> str:
    """CPU model and core count: what decides which precision is faster."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} x{os.cpu_count()}"


def choose_image_precision(embedder, cache_file: Path) -> dict:
    """Set `embedder.image_precision` to the faster of its half-precision candidate and float32.

    Returns {"choice", "timings_ms"} (timings empty when taken from the cache or when there is no
    candidate)."""
    import torch

    candidate = embedder.image_precision
    if candidate is None:
        return {"choice": "float32", "timings_ms": {}}
    key = f"{machine_key()}|{embedder.fingerprint}"
    cache = _read(cache_file)
    if key in cache:
        embedder.image_precision = candidate if cache[key]["choice"] != "float32" else None
        return {**cache[key], "cached": True}
    size = embedder.model.visual.image_size
    height, width = (size, size) if isinstance(size, int) else size
    batch = torch.from_numpy(np.random.default_rng(0).random((BATCH, 3, height, width), dtype=np.float32))
    timings = {}
    for name, dtype in ((str(candidate).removeprefix("torch."), candidate), ("float32", None)):
        embedder.image_precision = dtype
        embedder.encode_image_tensors(batch)  # warm-up: builds the tower copy, oneDNN kernels
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            embedder.encode_image_tensors(batch)
            best = min(best, time.perf_counter() - start)
        timings[name] = round(1000 * best / BATCH, 2)
    choice = min(timings, key=timings.get)
    embedder.image_precision = candidate if choice != "float32" else None
    cache[key] = {"choice": choice, "timings_ms": timings}
    _write(cache_file, cache)
    return {**cache[key], "cached": False}


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, payload: dict) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        os.replace(tmp, path)
    except OSError:  # a read-only artifacts folder: time again next load
        pass
