"""Quality of the from-scratch catalogue-trained CLIP model on products it has never seen.

Splits the articles with images by product_code (a fixed seed; every colour variant of a product on
the same side), trains `lookbook-tiny` from scratch on the training share, then on the held-out
products measures
  text  -> image: the query "<colour_group_name> <product_type_name>" for every combination with at
                  least --min-items held-out articles; precision@10, relevant = same colour group and
                  product type, averaged over the combinations (targets: >= 0.6);
  image -> image: every held-out image queries the other held-out images; precision@10, relevant =
                  same product_type_name (target: >= 0.7); also reported with the query's own product
                  (its colour variants) left out of the candidates, the stricter reading.
Prints a table with the figures, the chance levels, training time and the command.

    python bench/clip_quality.py                      # ../shared/hm_sample, default epochs
    python bench/clip_quality.py --epochs 2           # a quick look
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.catalog import load_catalog  # noqa: E402
from recommender.embed import load_embedder  # noqa: E402
from recommender.images import load_image  # noqa: E402
from recommender.train_clip import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, train_clip  # noqa: E402

K = 10


def split_by_product(articles, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) among the articles with images, split by product_code."""
    rows = np.flatnonzero(articles["has_image"].to_numpy())
    codes = np.unique(articles["product_code"].to_numpy()[rows])
    test_codes = np.random.default_rng(seed).permutation(codes)[: int(round(test_share * len(codes)))]
    is_test = np.isin(articles["product_code"].to_numpy()[rows], test_codes)
    return rows[~is_test], rows[is_test]


def embed_images(embedder, catalog, rows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    ids = catalog.articles["article_id"].to_numpy()[rows]
    out = []
    for start in tqdm(range(0, len(ids), batch_size), desc="embedding held-out images", leave=False):
        images = [load_image(catalog.image_path(aid)) for aid in ids[start : start + batch_size]]
        out.append(embedder.encode_images(images))
    return np.concatenate(out)


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = K) -> np.ndarray:
    """Per query row: the share of relevant items among the k best-scored (scores -inf = excluded)."""
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return np.take_along_axis(relevant, top, axis=1).mean(axis=1)


def text_to_image(embedder, test, vectors, min_items: int):
    combos = test.groupby(["colour_group_name", "product_type_name"]).size()
    combos = combos[combos >= min_items]
    queries = [f"{colour} {ptype}" for colour, ptype in combos.index]
    scores = embedder.encode_text(queries) @ vectors.T
    colour, ptype = test["colour_group_name"].to_numpy(), test["product_type_name"].to_numpy()
    relevant = np.array([(colour == c) & (ptype == p) for c, p in combos.index])
    precision = precision_at_k(scores, relevant)
    chance = float(np.mean(combos.to_numpy() / len(test)))  # a random candidate's chance per query
    return precision, queries, chance


def image_to_image(vectors, test, exclude_same_product: bool):
    ptype = test["product_type_name"].to_numpy()
    product = test["product_code"].to_numpy()
    relevant = ptype[:, None] == ptype[None, :]
    scores = vectors @ vectors.T
    excluded = product[:, None] == product[None, :] if exclude_same_product else np.eye(len(test), dtype=bool)
    scores[excluded] = -np.inf
    relevant = relevant & ~excluded
    counts = test["product_type_name"].value_counts()
    chance = float(((counts / len(test)) ** 2).sum())  # a random candidate's chance to share the type
    return precision_at_k(scores, relevant), chance


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "hm_sample")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "bench" / "clip_quality",
                        help="checkpoint and catalogue cache folder")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--min-items", type=int, default=10, help="held-out items a text query needs")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    catalog = load_catalog(args.data, cache_dir=args.work / "catalog")
    articles = catalog.articles
    train_rows, test_rows = split_by_product(articles, args.test_share, args.seed)
    checkpoint = args.work / f"lookbook-tiny-e{args.epochs}-b{args.batch_size}-s{args.seed}.pt"

    with tqdm(total=1000, desc="train-clip", unit="‰") as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message[:50], refresh=True)

        started = time.perf_counter()
        train_clip(catalog, out=checkpoint, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                   article_rows=train_rows, progress=progress)  # fmt: skip
        train_seconds = time.perf_counter() - started

    embedder = load_embedder("lookbook-tiny", str(checkpoint))
    test = articles.iloc[test_rows].reset_index(drop=True)
    vectors = embed_images(embedder, catalog, test_rows)
    text_p, queries, text_chance = text_to_image(embedder, test, vectors, args.min_items)
    image_p, image_chance = image_to_image(vectors, test, exclude_same_product=False)
    strict_p, strict_chance = image_to_image(vectors, test, exclude_same_product=True)

    worst = np.argsort(text_p)[:5]
    lines = [
        ("training articles (products)",
         f"{len(train_rows):,} ({articles['product_code'].iloc[train_rows].nunique():,})"),
        ("held-out articles (products)",
         f"{len(test_rows):,} ({articles['product_code'].iloc[test_rows].nunique():,})"),
        ("epochs x batch size", f"{args.epochs} x {args.batch_size}"),
        ("torch threads", str(torch.get_num_threads())),
        ("training time (incl. image decoding)", f"{train_seconds / 60:.1f} min"),
        (f"text->image p@{K} (colour+type, {len(queries)} queries)",
         f"{text_p.mean():.3f}  (target 0.6, chance {text_chance:.3f})"),
        (f"image->image p@{K} (product type)", f"{image_p.mean():.3f}  (target 0.7, chance {image_chance:.3f})"),
        (f"image->image p@{K}, own product left out", f"{strict_p.mean():.3f}  (chance {strict_chance:.3f})"),
        ("weakest text queries", ", ".join(f"{queries[i]} {text_p[i]:.1f}" for i in worst)),
    ]  # fmt: skip
    width = max(len(name) for name, _ in lines)
    print(f"\nCLIP quality on unseen products — {args.data}")
    for name, value in lines:
        print(f"  {name:<{width}}  {value}")
    print("  command: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
