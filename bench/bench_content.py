"""Content search benchmarks: FAISS index choice, query latency, embedding-job throughput.

    python bench/bench_content.py [index] [queries] [embed] [lexical]     (default: the first three)

index    105,542 x 512 vectors, random (worst case: no structure) and a two-level Gaussian mixture
         (130 types -> 47,000 products -> 105,542 articles; cosine ~0.9 within a product, ~0.55 within a
         type, like colour variants and product types; and a looser one): build time, chosen parameters,
         recall@100 vs exact on held-out queries, single-query latency, filtered-query latency;
         flat-scan latency by catalogue size (the basis of EXACT_THRESHOLD).
queries  ViT-B-16 with random weights over the mixture index and a 105,542-article H&M-format catalogue
         (demo generator): text query end to end (validate, tokenize, encode, search, metadata) and
         image query end to end (JPEG bytes -> decode -> preprocess -> encode -> search -> metadata);
         the BM25 index over the catalogue texts (build time, memory) and text queries per search mode;
         hybrid text one result per article, per product with facet counts, and personalised.
         Targets: hybrid text p50 <= 30 ms, lexical build <= 60 s (issue 14), image p50 <= 250 ms;
         per product + facets <= 15 ms, personalised <= 25 ms (issue 24).
lexical  the BM25 index alone on the H&M sample's real article texts repeated to 105,542 rows: build time,
         memory, lexical-leg latency (no model needed).
embed    embedding job (DataLoader workers, chunked to scratch, artifact write) vs forward-only
         (pre-processed tensors straight through the model), ViT-B-16, on --images photos of the H&M
         sample (../shared/hm_sample). Target: job >= 0.9x forward-only.

Other processes sharing the cores distort the figures; the script prints the load average.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HM_SAMPLE = Path(os.environ.get("LOOKBOOK_HM_SAMPLE", REPO.parent / "shared" / "hm_sample"))

from recommender.content import ContentSearch  # noqa: E402
from recommender.content_index import ContentIndex, recall_at  # noqa: E402
from recommender.images import load_image  # noqa: E402

N_ARTICLES, DIM = 105_542, 512
TEXT_QUERIES = [
    "red dress", "black skinny jeans", "white cotton t-shirt", "striped sweater", "denim jacket",
    "floral summer dress", "blue swimsuit", "grey hoodie", "leather boots", "silk blouse",
    "knitted cardigan in beige", "baby romper with print", "men's slim fit shirt", "sports bra",
    "high-waisted trousers", "wool coat", "pink pyjamas", "checked scarf", "yellow raincoat",
    "lace bralette",
]  # fmt: skip


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def noise(rng, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)


def mixture(n: int, seed: int, types: int = 130, products: int = 47_000, loose: bool = False) -> np.ndarray:
    """Two-level mixture: type centres, products around them (cos ~0.6), articles around products (~0.9).

    ``loose``: 2,000 narrower "types" with wider spreads (cos ~0.5 within a type, ~0.8 within a
    product), so the 100 nearest neighbours straddle several clusters: a harder case for IVF.
    """
    types = 2_000 if loose else types
    product_spread, article_spread = (1.0, 0.5) if loose else (0.82, 0.33)
    centres = np.random.default_rng(0)
    type_centres = unit(centres.standard_normal((types, DIM)))
    product_centres = unit(type_centres[centres.integers(0, types, products)] + product_spread * noise(centres, products))
    rng = np.random.default_rng(seed)
    return unit(product_centres[rng.integers(0, products, n)] + article_spread * noise(rng, n))


def percentiles(times: list[tuple[float, float]]) -> str:
    """Wall-clock p50/p95, and the p50 of the process's CPU time (with one thread, what an idle core
    would take: a figure other processes on the machine hardly disturb)."""
    wall, cpu = (np.array(t) * 1000 for t in zip(*times))
    return (f"p50 {np.percentile(wall, 50):7.1f} ms   p95 {np.percentile(wall, 95):7.1f} ms   "
            f"(CPU p50 {np.percentile(cpu, 50):7.1f} ms)")


def timed(fn, repeats: int) -> list[tuple[float, float]]:
    times = []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start, time.process_time() - start_cpu))
    return times


def bench_index() -> None:
    ids = np.array([f"{i:010d}" for i in range(N_ARTICLES)])
    print("\n== index: 105,542 x 512, single query, k=12 (latency) / k=100 (recall) ==")
    for name, vectors, queries in [
        ("random", unit(np.random.default_rng(1).standard_normal((N_ARTICLES, DIM))),
         unit(np.random.default_rng(2).standard_normal((200, DIM)))),
        ("mixture", mixture(N_ARTICLES, seed=1), mixture(200, seed=2)),
        ("loose mixture", mixture(N_ARTICLES, seed=1, loose=True), mixture(200, seed=2, loose=True)),
    ]:  # fmt: skip
        start = time.perf_counter()
        exact = ContentIndex.build(vectors, ids, exact_threshold=N_ARTICLES + 1)
        exact_build = time.perf_counter() - start
        truth, _ = exact.search(queries, 100)
        start = time.perf_counter()
        chosen = ContentIndex.build(vectors, ids, exact_threshold=0)
        chosen_build = time.perf_counter() - start
        found, _ = chosen.search(queries, 100)
        print(f"[{name}] exact  build {exact_build:5.1f} s  "
              f"{percentiles(timed(lambda: exact.search(queries[0], 12), 50))}")
        params = {k: v for k, v in chosen.params.items() if k != "n"}
        print(f"[{name}] chosen build {chosen_build:5.1f} s  "
              f"{percentiles(timed(lambda: chosen.search(queries[1], 12), 200))}  {params}")
        print(f"[{name}] chosen recall@100 on 200 held-out queries: {recall_at(found, truth):.3f}")
        if chosen.params["kind"] == "ivf":
            rng = np.random.default_rng(3)
            for share in (0.1, 0.01, 0.001):
                allowed = rng.random(N_ARTICLES) < share
                subset = np.flatnonzero(allowed)
                got, _ = chosen.search(queries[:50], 12, allowed)
                want = subset[np.argsort(-(queries[:50] @ vectors[subset].T), axis=1)[:, :12]]
                t = timed(lambda: chosen.search(queries[2], 12, allowed), 50)
                print(f"[{name}] filter keeping {share:6.1%}: {percentiles(t)}  recall@12 {recall_at(got, want):.3f}")
    print("\n== flat scan latency by catalogue size (single query, k=12) ==")
    vectors = mixture(N_ARTICLES, seed=1)
    for n in (10_000, 30_000, 50_000, N_ARTICLES):
        flat = ContentIndex.build(vectors[:n], ids[:n], exact_threshold=n + 1)
        print(f"n={n:>7,}  {percentiles(timed(lambda: flat.search(vectors[7], 12), 50))}")


def random_vit(device: str = "cpu"):
    from recommender.embed import load_embedder

    return load_embedder("ViT-B-16", None, device=device)


def scale_catalog(folder: Path):
    from recommender.catalog import load_catalog
    from recommender.demo import generate_transactions_only

    if not (folder / "articles.csv").is_file():
        generate_transactions_only(folder, n_articles=N_ARTICLES, n_customers=100, n_transactions=1_000)
    return load_catalog(folder)


def scale_taste(catalog):
    """A shopper's taste over the scale catalogue (ALS fitted on its purchases; its cost per query does not
    depend on how many customers there are)."""
    from recommender.collab import CollabModel

    collab = CollabModel.fit(catalog)
    return collab.taste(collab.example_customers(1)[0])


def query_images(count: int) -> list[bytes]:
    paths = sorted((HM_SAMPLE / "images").glob("*/*.jpg"))[:count]
    if paths:
        return [p.read_bytes() for p in paths]
    import io

    from PIL import Image

    print("(H&M sample absent: random-pixel JPEGs as query images)")
    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 171, 3), dtype=np.uint8)).save(buffer, "JPEG")
        images.append(buffer.getvalue())
    return images


def bench_queries() -> None:
    import torch

    print(f"\n== queries: ViT-B-16 (random weights), torch threads {torch.get_num_threads()}, "
          f"105,542-article catalogue ==")
    catalog = scale_catalog(Path(tempfile.gettempdir()) / "lookbook_content_bench")
    embedder = random_vit()
    index = ContentIndex.build(mixture(N_ARTICLES, seed=1), catalog.articles["article_id"].to_numpy(), exact_threshold=0)
    lexical = bench_lexical_build(catalog)
    search = ContentSearch(catalog, embedder, index, lexical)
    print(f"index: {index.params}")
    from recommender.precision import choose_query_precision

    choice = choose_query_precision(embedder, Path(tempfile.mkdtemp()) / "query_precision.cache")  # fresh: times all
    for tower in ("text", "image"):
        print(f"{tower} precision chosen at load: {choice[tower]['choice']:8}  ms per query "
              f"{choice[tower]['timings_ms']}  least cosine to float32 {choice[tower]['cosine']}")
    for q in TEXT_QUERIES[:3]:
        search.search(text=q)  # warm-up
    for mode in ("hybrid", "visual", "lexical"):
        times = [t for q in TEXT_QUERIES * 5 for t in timed(lambda: search.search(text=q, mode=mode), 1)]
        print(f"text query end to end, {mode:7} ({len(times)} queries): {percentiles(times)}")
    taste = scale_taste(catalog)
    for name, options in (("one per article (group=article)", dict(group="article")),
                          ("one per product + facets", dict(facets=True)),
                          ("one per product + facets, personalised", dict(facets=True, taste=taste))):
        times = [t for q in TEXT_QUERIES * 5 for t in timed(lambda: search.search(text=q, **options), 1)]
        print(f"hybrid text, {name:39}: {percentiles(times)}")
    stage = timed(lambda: embedder.encode_text(["black skinny jeans"]), 50)
    print(f"  of which encode_text ({embedder.text_precision or 'float32'}) : {percentiles(stage)}")
    filtered = timed(lambda: search.search(text="red dress", filters={"colour_group_name": "Red"}), 30)
    print(f"text query + colour filter           : {percentiles(filtered)}")
    liked = catalog.articles["article_id"][:50].tolist()
    times = [t for a in liked for t in timed(lambda: search.search(like=[a]), 1)]
    print(f"more like this (no model)            : {percentiles(times)}")
    images = query_images(20)
    search.search(images=[images[0]])  # warm-up
    times = [t for image in images for t in timed(lambda: search.search(images=[image]), 1)]
    print(f"image query end to end  ({len(times)} queries): {percentiles(times)}")
    print(f"  image encoding precision            : {embedder.image_precision or torch.float32}")
    chosen_text, chosen_image = embedder.text_precision, embedder.image_precision
    fast_text = embedder.encode_text(TEXT_QUERIES)
    fast = embedder.encode_images([load_image(image) for image in images])
    embedder.image_precision, embedder.text_precision = None, None  # float32 from here on
    exact_text = embedder.encode_text(TEXT_QUERIES)
    exact = embedder.encode_images([load_image(image) for image in images])
    stage = [t for image in images[:10] for t in timed(lambda: search.search(images=[image]), 1)]
    print(f"  same queries in float32             : {percentiles(stage)}")
    times = [t for q in TEXT_QUERIES * 2 for t in timed(lambda: search.search(text=q, mode="hybrid"), 1)]
    print(f"hybrid text query in float32  ({len(times)} queries): {percentiles(times)}")
    for name, a, b in (("text", fast_text, exact_text), ("image", fast, exact)):
        found, _ = index.search(a, 10)
        truth, _ = index.search(b, 10)
        print(f"  {name} vectors in {chosen_text if name == 'text' else chosen_image}: least cosine to float32 "
              f"{(a * b).sum(1).min():.5f}, top-10 overlap with float32's {recall_at(found, truth):.3f}")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_lexical_build(catalog):
    """The BM25 index over the catalogue's texts: build time and memory (its arrays, and the process's
    resident-memory growth while building, which includes the temporary token lists)."""
    from recommender.lexical import LexicalIndex

    before, start, start_cpu = rss_mb(), time.perf_counter(), time.process_time()
    lexical = LexicalIndex.build(catalog.articles)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    arrays = sum(a.nbytes for a in lexical.bm25.scores.values() if isinstance(a, np.ndarray)) / 2**20
    print(f"lexical index build ({lexical.size:,} articles, {len(lexical.analyzer.document_frequency):,} terms): "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU; BM25 matrix {arrays:.1f} MB, resident memory +{rss_mb() - before:.0f} MB")
    return lexical


def bench_lexical() -> None:
    """The lexical leg alone at H&M scale: the sample's real article texts repeated to 105,542 rows."""
    import pandas as pd

    from recommender.search import lexical_ranking

    print("\n== lexical: BM25 over the H&M sample's article texts, repeated to 105,542 articles ==")
    sample = pd.read_csv(HM_SAMPLE / "articles.csv", dtype=str, keep_default_na=False)
    articles = sample.iloc[np.arange(N_ARTICLES) % len(sample)].reset_index(drop=True)

    class Texts:  # what LexicalIndex.build reads of a catalogue
        pass

    catalog = Texts()
    catalog.articles = articles
    lexical = bench_lexical_build(catalog)
    times = [t for q in TEXT_QUERIES * 5 for t in timed(lambda: lexical_ranking(lexical.query_scores(q)[0], None, 100), 1)]
    print(f"lexical leg (analyse, BM25, top 100)     : {percentiles(times)}")


def bench_embed(n_images: int, batch_size: int) -> None:
    import torch

    from recommender.catalog import load_catalog
    from recommender.embed_job import default_workers, embed_catalog
    from recommender.store import ArtifactStore

    if not (HM_SAMPLE / "images").is_dir():
        print(f"\n(embed skipped: no H&M sample at {HM_SAMPLE})")
        return
    print(f"\n== embedding job vs forward-only: ViT-B-16, {n_images} H&M photos, batch {batch_size}, "
          f"{default_workers()} loader worker(s) ==")
    work = Path(tempfile.mkdtemp(prefix="lookbook_embed_bench_"))
    try:
        paths = sorted((HM_SAMPLE / "images").glob("*/*.jpg"))[:n_images]
        wanted = {p.stem for p in paths}
        data = work / "data"
        (data / "images").mkdir(parents=True)
        with open(HM_SAMPLE / "articles.csv") as src, open(data / "articles.csv", "w") as dst:
            dst.write(next(src))
            dst.writelines(line for line in src if line[:10] in wanted)
        for p in paths:
            (data / "images" / p.parent.name).mkdir(exist_ok=True)
            os.symlink(p, data / "images" / p.parent.name / p.name)
        catalog = load_catalog(data)
        embedder = random_vit()

        pixels = torch.stack([embedder.preprocess(load_image(p)) for p in paths])
        embedder.encode_image_tensors(pixels[:batch_size])  # warm-up

        def forward_only() -> float:
            start = time.perf_counter()
            for i in range(0, len(pixels), batch_size):
                embedder.encode_image_tensors(pixels[i : i + batch_size])
            return len(pixels) / (time.perf_counter() - start)

        # Forward-only before and after the job, so a change in the machine's load shows.
        before = forward_only()
        start = time.perf_counter()
        embed_catalog(catalog, embedder, ArtifactStore(work / "artifacts"), batch_size=batch_size)
        job = len(paths) / (time.perf_counter() - start)
        after = forward_only()
        forward = (before + after) / 2
        print(f"forward only : {before:6.2f} / {after:6.2f} images/s (before / after the job)")
        print(f"embedding job: {job:6.2f} images/s  ({job / forward:.2f}x forward-only)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", choices=["index", "queries", "embed", "lexical"], default=[])
    parser.add_argument("--images", type=int, default=256, help="photos for the embed section")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    sections = args.sections or ["index", "queries", "embed"]  # lexical: its figures are also in queries
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if "index" in sections:
        bench_index()
    if "queries" in sections:
        bench_queries()
    if "embed" in sections:
        bench_embed(args.images, args.batch_size)
    if "lexical" in sections:
        bench_lexical()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
