"""The precision queries are encoded in, chosen by timing on this machine.

What is fastest depends on the CPU: a CPU that reports native bf16 is not always faster in bf16 (one
machine ran the vision tower much faster than in float32, another with avx512_bf16 slower), and int8
weights (recommender/quantize.py) pay off where float32 matrix products are slow. So when the engine
loads, each tower's candidates are timed on a query-sized input and the fastest one whose vectors agree
with float32 (cosine at least AGREEMENT) is kept, if it beats float32 by MIN_GAIN: for photos float32,
the device's half type (embed._fast_precision) and int8; for texts float32 and int8. The margin keeps
small models, where the candidates time alike, on float32 rather than on a coin toss. The choice is
cached per machine and model in a small JSON file beside the artifacts, made under a file lock, so every
process serving those artifacts encodes queries alike and only the first load pays.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .quantize import INT8, int8_available

BATCH = 4  # photos per timed call: a query is one photo; 4 steadies the timing
REPEATS = 3
AGREEMENT = 0.995  # least cosine between a candidate's vectors and float32's
MIN_GAIN = 0.9  # a candidate replaces float32 only when it takes at most this share of float32's time
PROBE_TEXTS = ("black skinny jeans", "red dress", "men's slim fit shirt", "knitted cardigan in beige")
CACHE_VERSION = 2
LOCK_WAIT_S = 120


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


def choose_query_precision(embedder, cache_file: Path) -> dict:
    """Set `embedder.image_precision` and `embedder.text_precision` to the fastest agreeing candidates.

    Returns {"image": choice, "text": choice, "cached": bool}, each choice {"choice", "timings_ms",
    "cosine"} (the timed candidates' milliseconds per query and least cosine to float32)."""
    import torch

    half = embedder.image_precision if isinstance(embedder.image_precision, torch.dtype) else None
    on_cpu = torch.device(embedder.device).type == "cpu"
    image_candidates = {"float32": None}
    if half is not None:
        image_candidates[_name(half)] = half
    text_candidates = {"float32": None}
    if on_cpu and int8_available():
        image_candidates[INT8] = INT8
        text_candidates[INT8] = INT8

    key = f"v{CACHE_VERSION}|{machine_key()}|{embedder.fingerprint}"
    with _locked(cache_file):  # one process times, the others wait and read its choice
        cache = _read(cache_file)
        cached = key in cache and all(
            cache[key].get(tower, {}).get("choice") in candidates
            for tower, candidates in (("image", image_candidates), ("text", text_candidates))
        )
        if not cached:
            size = embedder.model.visual.image_size
            height, width = (size, size) if isinstance(size, int) else size
            pixels = torch.from_numpy(np.random.default_rng(0).random((BATCH, 3, height, width), dtype=np.float32))
            cache[key] = {
                "image": _fastest(embedder, "image_precision", image_candidates, lambda: embedder.encode_image_tensors(pixels), BATCH),
                "text": _fastest(embedder, "text_precision", text_candidates, _one_by_one(embedder), len(PROBE_TEXTS)),
            }  # fmt: skip
            _write(cache_file, cache)
    embedder.image_precision = image_candidates[cache[key]["image"]["choice"]]
    embedder.text_precision = text_candidates[cache[key]["text"]["choice"]]
    return {**cache[key], "cached": cached}


def _one_by_one(embedder):
    return lambda: np.concatenate([embedder.encode_text([text]) for text in PROBE_TEXTS])


def _fastest(embedder, attribute: str, candidates: dict, encode, per_call: int) -> dict:
    timings, cosines, reference = {}, {}, None
    for name, precision in candidates.items():  # float32 first: the reference
        setattr(embedder, attribute, precision)
        vectors = encode()  # also the warm-up: builds the tower copy, oneDNN kernels
        reference = vectors if reference is None else reference
        cosines[name] = round(float((vectors * reference).sum(axis=1).min()), 5)
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            encode()
            best = min(best, time.perf_counter() - start)
        timings[name] = round(1000 * best / per_call, 2)
    faster = [n for n in timings if cosines[n] >= AGREEMENT and timings[n] <= MIN_GAIN * timings["float32"]]
    return {"choice": min(faster, key=timings.get, default="float32"), "timings_ms": timings, "cosine": cosines}


@contextlib.contextmanager
def _locked(cache_file: Path):
    from filelock import FileLock, Timeout

    try:
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{cache_file}.lock", timeout=LOCK_WAIT_S)
        lock.acquire()
    except (OSError, Timeout):  # a read-only folder, or a stuck holder: time it here
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, payload: dict) -> None:
    from .store import atomic_write

    try:
        with atomic_write(path, "w") as handle:
            handle.write(json.dumps(payload, indent=2))
    except OSError:  # a read-only artifacts folder: time again next load
        pass
