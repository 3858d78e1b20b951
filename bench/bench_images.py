"""Decoding a large phone photo: the full picture (images.load_image) against the model-size copy a page
or server should keep (images.thumbnail_for_model). Prints time per decode and the bytes each result holds.

    python bench/bench_images.py [--megapixels 36] [--repeats 7]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recommender.images import load_image, thumbnail_for_model  # noqa: E402


def photo(megapixels: float) -> bytes:
    """A JPEG of a noisy 4:3 scene (noise keeps it from compressing to nothing, like a real photo)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    noise = Image.effect_noise((width // 8, height // 8), 60).convert("RGB").resize((width, height))
    buffer = io.BytesIO()
    noise.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megapixels", type=float, default=36.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = photo(args.megapixels)
    print(f"JPEG: {args.megapixels:.0f} MP, {len(data) / 2**20:.1f} MiB")
    for decode in (load_image, thumbnail_for_model):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            image = decode(data, name="photo.jpg")
            times.append(time.perf_counter() - start)
        held = image.width * image.height * len(image.getbands())
        print(f"{decode.__name__:20s} median {statistics.median(times) * 1000:7.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={args.repeats})  "
              f"→ {image.width}x{image.height}, holds {held / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
