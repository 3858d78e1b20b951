"""`python -m recommender <verb>`: each verb is a thin call into one engine module.

Errors a user can cause print one line (`error: …`) and exit 2; `--json` prints machine-readable results
(one JSON object per line for multi-customer output).
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from .config import DEMO_DATA_DIR, Settings, env_path
from .errors import InputError, LookbookError
from .inputs import MAX_RESULTS, check_count, clean_text


@contextmanager
def tqdm_progress(description: str):
    """A progress(fraction, message) callback drawing one tqdm bar on stderr."""
    from tqdm import tqdm

    with tqdm(total=1000, desc=description, unit="‰", file=sys.stderr, leave=False) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message[:60], refresh=False)
            bar.refresh()

        yield progress


def settings_from(args) -> Settings:
    return Settings().with_(
        data_dir=getattr(args, "data", None),
        artifacts_dir=getattr(args, "artifacts", None),
        model=getattr(args, "model", None),
        pretrained=getattr(args, "pretrained", None),
        fallback=False if getattr(args, "no_fallback", False) else None,
        train_epochs=getattr(args, "epochs", None),
        backtest_weeks=getattr(args, "backtest_weeks", None),
    )


@contextmanager
def pd_wide():
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        yield


def print_frame(frame, as_json: bool, **extra) -> None:
    if as_json:
        for record in frame.to_dict(orient="records"):
            print(json.dumps({**extra, **record}, default=str))
    else:
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_colwidth", 60):
            print(frame.to_string(index=False))


# --- verbs ---------------------------------------------------------------------------------------


def cmd_demo(args) -> None:
    from . import demo

    # Not Settings(): the folder a demo is written to need not exist yet.
    out = Path(args.out) if args.out else (env_path("LOOKBOOK_DATA") or DEMO_DATA_DIR)
    with tqdm_progress("demo") as progress:
        if args.transactions_only:
            sizes = {"n_articles": args.articles, "n_customers": args.customers, "n_transactions": args.transactions}
            demo.generate_transactions_only(out, seed=args.seed, progress=progress,
                                            **{k: v for k, v in sizes.items() if v})
        else:
            sizes = {"n_articles": args.articles, "n_customers": args.customers}
            demo.generate_demo(out, seed=args.seed, progress=progress, **{k: v for k, v in sizes.items() if v})
    print(f"demo dataset written to {out}")


def cmd_build(args) -> None:
    from .pipeline import build

    settings = settings_from(args)
    if args.spark_master and args.engine != "spark":
        raise LookbookError("--spark-master needs --engine spark")
    with tqdm_progress("build") as progress:
        notices = build(settings, progress=progress, log=lambda m: print(m, file=sys.stderr),
                        wait=0 if args.no_wait else args.wait,
                        engine=args.engine, spark_master=args.spark_master)
    print(f"built {settings.data_dir} → {settings.artifacts_dir}")
    for notice in notices:
        print(f"notice: {notice}")


def cmd_train_clip(args) -> None:
    from .catalog import load_catalog
    from .train_clip import train_clip

    settings = settings_from(args)
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
    out = Path(args.out)
    with tqdm_progress("train-clip") as progress:
        path = train_clip(catalog, out=out, pretrained=args.pretrained, model_name=args.model,
                          epochs=args.epochs, progress=progress)
    print(f"checkpoint written to {path}; use it with --model {args.model} --pretrained {path}")


def cmd_search(args) -> None:
    from .images import thumbnail_for_model
    from .pipeline import open_engine

    filters = {}
    for item in args.filter or []:
        column, sep, value = item.partition("=")
        if not sep:
            raise LookbookError(f"--filter {item!r} must look like COLUMN=VALUE (e.g. colour_group_name=Red)")
        filters.setdefault(column, []).append(value)
    # Decoded (small) before the engine opens: a bad photo is reported in a moment, not after model loading.
    images = [thumbnail_for_model(path, name=Path(path).name) for path in args.image or []]
    engine = open_engine(settings_from(args))
    _say_refused_files(engine)
    taste = None
    if args.customer:  # personalised: re-ranked by this shopper's taste
        if engine.collab is None:
            raise LookbookError(f"{engine.catalog.root.name} has no transactions: there is no shopper to personalise for")
        taste = engine.collab.taste(args.customer)
    results = engine.search.search(text=args.text, images=images, image_weight=args.image_weight,
                                   negative=args.negative, like=args.like or (), filters=filters or None, k=args.k,
                                   mode=args.mode, group=args.group, facets=args.facets,
                                   include_unavailable=args.include_unavailable, taste=taste)
    if args.facets:
        _print_facets(results.attrs["facets"], args.json)
    if not args.json:  # a table stays readable: "+N colours" in place of the ids
        results = results.assign(other_colours=[f"+{len(ids)} colours" if ids else "" for ids in results["other_colours"]])
    print_frame(results, args.json)


def _print_facets(facets: dict, as_json: bool) -> None:
    """One line per filter column: each value with its count, most first (0: it would empty the results)."""
    if as_json:
        print(json.dumps({"facets": facets}))
        return
    print(f"# facets over {facets['basis']}")
    for column, counts in facets["counts"].items():
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        print(f"{column}: " + ", ".join(f"{value} {count}" for value, count in ordered))
    print()


def _say_refused_files(engine) -> None:
    """A refused availability.csv or rules.toml is said, never silently ignored."""
    engine.availability.unavailable(), engine.rules.current()  # read now, so a bad file is reported now
    for problem in (engine.availability.problem, engine.rules.problem):
        if problem:
            print(f"notice: {problem}; it is not applied", file=sys.stderr)


def _collab(args):
    from .pipeline import open_engine

    engine = open_engine(settings_from(args))
    _say_refused_files(engine)
    if engine.collab is None:
        raise LookbookError(f"{engine.catalog.root} has no transactions, so there are no customers to compare")
    return engine.collab


def _customer_ids(args) -> list[str]:
    from .textfiles import decode_text

    ids = list(args.customer or [])
    if args.customers_file:
        try:
            data = Path(args.customers_file).read_bytes()
        except OSError as exc:
            raise LookbookError(f"cannot read --customers-file {args.customers_file}: {exc.strerror}") from exc
        text, notice = decode_text(data, f"--customers-file {args.customers_file}")
        if notice:
            print(f"notice: {notice}", file=sys.stderr)
        # One id per line; a submission-style `customer_id,…` header and trailing columns are ignored.
        lines = (line.split(",")[0].strip() for line in text.splitlines())
        ids += [value for value in lines if value and value != "customer_id"]
    if not ids:
        raise LookbookError("give --customer ID (repeatable) or --customers-file FILE")
    return ids


def cmd_similar_customers(args) -> None:
    collab = _collab(args)
    print_frame(collab.similar_customers(args.customer, k=args.k), args.json, query_customer=args.customer)


def cmd_complete(args) -> None:
    collab = _collab(args)
    print_frame(collab.complete_the_look(args.article, k=args.k), args.json, query_article=args.article)


def cmd_recommend(args) -> None:
    customer_ids = [] if args.items else _customer_ids(args)  # bad input is reported before loading
    collab = _collab(args)
    if args.method:
        from .collab.methods import check_method

        collab.method, collab.method_chosen = check_method(args.method), False
    if args.items:  # a new shopper: fold the picked articles in, no retraining
        print_frame(collab.recommend_for_items(args.items, k=args.k), args.json)
        return
    if args.submission:  # streamed: the file may hold every customer of the data
        from .collab.submission import write_submission

        with tqdm_progress("submission") as progress:
            write_submission(collab, customer_ids, sys.stdout, k=args.k, progress=progress, total=len(customer_ids))
        return
    for customer_id in customer_ids:
        frame = collab.recommend(customer_id, k=args.k, exclude_bought=not args.include_bought)
        if not args.json:
            print(f"# {customer_id} ({_method_words(collab, frame.attrs['method'])})")
        print_frame(frame, args.json, customer_id=customer_id, method=frame.attrs["method"])


def _method_words(collab, method: str) -> str:
    """Which method made a list and why that one."""
    if method != collab.method:
        return f"method: {method}, standing in for {collab.method}, which needs a trained ranker"
    return f"method: {method}" + (", chosen by the build's backtest" if collab.method_chosen else "")


def cmd_serve(args) -> None:
    from .api import serve

    serve(settings_from(args), host=args.host, port=args.port, workers=args.workers)


def cmd_evaluate(args) -> None:
    from .catalog import load_catalog
    from .collab.model import chosen_method
    from .lookalikes import load_looks
    from .evaluate import BLOCK_WEEKS, evaluate
    from .pipeline import store_for

    settings = settings_from(args)
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
    store = store_for(settings)
    looks = load_looks(store, catalog)  # the build's content vectors and look-alikes, when there is a build
    with tqdm_progress("evaluate") as progress:
        result = evaluate(catalog, weeks=args.weeks, report_weeks=args.report_weeks, skip_weeks=args.skip_weeks,
                          test_transactions=args.test_transactions, k=args.k, customers=args.customers,
                          shipped=chosen_method(store, catalog), looks=looks, progress=progress)
    if looks is None:
        result.notes.append("no built content vectors and look-alikes for this data: the looks-like source proposed nothing "
                            f"(build first: {store.rebuild_hint})")
    if args.json:
        print(json.dumps({"weekly": result.weekly.to_dict(orient="records"),
                          "summary": result.summary.to_dict(orient="records"),
                          "blocks": result.blocks.to_dict(orient="records"), "choice": result.choice,
                          "notes": result.notes}, default=str))
        return
    with pd_wide():
        print(result.weekly.to_string(index=False), "", "reported weeks:", result.summary.to_string(index=False),
              "", f"blocks of {BLOCK_WEEKS} weeks:", result.blocks.to_string(index=False), sep="\n")
    if result.choice:
        weeks = result.choice["weeks"]
        print(f"\nchosen on {len(weeks)} older weeks ({weeks[0]} … {weeks[-1]}): {result.choice['method']} — "
              f"rule: {result.choice['rule']}")
    for note in result.notes:
        print(f"note: {note}")


# --- parser --------------------------------------------------------------------------------------


def _data_args(parser: argparse.ArgumentParser, model: bool = True) -> None:
    parser.add_argument("--data", help="dataset folder in the H&M format (default: $LOOKBOOK_DATA or data/demo)")
    parser.add_argument("--artifacts", help="artifacts folder (default: data/artifacts/<dataset name>)")
    if model:
        parser.add_argument("--model", help="open_clip model name (default: $LOOKBOOK_MODEL or ViT-B-16)")
        parser.add_argument("--pretrained", help="open_clip tag, hf-hub:ID or checkpoint file "
                                                 "(default: $LOOKBOOK_PRETRAINED or hf-hub:Marqo/marqo-fashionCLIP)")


# --- the verbs: (what runs, its flags, its help) -------------------------------------------------------


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output folder (default: data/demo)")
    p.add_argument("--articles", type=int)
    p.add_argument("--customers", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--transactions-only", action="store_true", help="H&M-scale transactions without images (benchmarks)")
    p.add_argument("--transactions", type=int, help="with --transactions-only: number of rows")


def _build_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--no-fallback", action="store_true", help="fail instead of training a model when the source is unreachable")
    p.add_argument("--epochs", type=int, help="epochs for the catalogue-trained fallback model")
    p.add_argument("--no-wait", action="store_true", help="stop at once when another build holds the artifacts folder")
    p.add_argument("--wait", type=float, metavar="SECONDS", help="wait at most this long for another build (default: until it ends)")
    p.add_argument("--backtest-weeks", type=int,
                   help="weeks backtested to choose the recommendation method (default 8; 0: none, the ranker ships)")
    p.add_argument("--engine", choices=["local", "spark"], default="local",
                   help="where embeddings and ALS run: this process, or Spark (pip install -r requirements-spark.txt)")
    p.add_argument("--spark-master", metavar="URL", help="with --engine spark: local[*] (default), spark://host:7077, …")


def _train_clip_args(p: argparse.ArgumentParser) -> None:
    _data_args(p, model=False)
    p.add_argument("--model", default="lookbook-tiny", help="open_clip config to train (default: lookbook-tiny)")
    p.add_argument("--pretrained", help="start from these weights (fine-tuning); default: from scratch")
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", required=True, help="checkpoint file to write")


def _search_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--text")
    p.add_argument("--image", nargs="+", metavar="PATH")
    p.add_argument("--like", nargs="+", metavar="ARTICLE_ID")
    p.add_argument("--negative", metavar="TEXT", help="push results away from this text")
    p.add_argument("--image-weight", type=float, default=0.5, help="weight of the images against the text (0..1)")
    p.add_argument("--filter", action="append", metavar="COLUMN=VALUE")
    p.add_argument("--mode", choices=("hybrid", "visual", "lexical"), default="hybrid",
                   help="text ranking: words and looks fused (default), CLIP vectors only, or words only")
    p.add_argument("--group", choices=("product", "article"), default="product",
                   help="one result per product, its other colours listed (default), or one per article")
    p.add_argument("--facets", action="store_true", help="also print the matches per filter value")
    p.add_argument("--customer", metavar="ID", help="personalise: re-rank the relevant results by this shopper's taste")
    p.add_argument("--include-unavailable", action="store_true",
                   help="also articles out of stock per availability.csv (column available: False)")
    p.add_argument("-k", type=int, default=12)
    p.add_argument("--json", action="store_true")


def _similar_customers_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--customer", required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")


def _recommend_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--customer", nargs="+")
    p.add_argument("--customers-file", help="one customer id per line")
    p.add_argument("--items", nargs="+", metavar="ARTICLE_ID", help="a new shopper's picked articles (cold start)")
    p.add_argument("--include-bought", action="store_true", help="keep articles the customer already bought")
    p.add_argument("--method", help="ranker, ensemble, blend, als, customers-like-you, last purchases + popular, "
                                    "popular last week (default: the one the build's backtest chose)")
    p.add_argument("--submission", action="store_true",
                   help="stream the competition's customer_id,prediction CSV (bought articles included)")
    p.add_argument("-k", type=int, default=12)
    p.add_argument("--json", action="store_true")


def _complete_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--article", required=True, metavar="ARTICLE_ID")
    p.add_argument("-k", type=int, default=12)
    p.add_argument("--json", action="store_true")


def _serve_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the engine")


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _data_args(p, model=False)
    p.add_argument("--test-transactions", help="CSV of held-out transactions (default: each of the last --weeks)")
    p.add_argument("--weeks", type=int, default=20, help="test weeks, each trained strictly before it")
    p.add_argument("--report-weeks", type=int, default=4,
                   help="the newest weeks reported; the method is chosen on the older ones (0: choose on all)")
    p.add_argument("--customers", type=int, help="at most this many buyers a week (a seeded sample)")
    p.add_argument("--skip-weeks", type=int, default=0,
                   help="end the test weeks this many weeks before the data's end (to choose settings)")
    p.add_argument("-k", type=int, default=12)
    p.add_argument("--json", action="store_true")


VERBS = {
    "demo": (cmd_demo, _demo_args, "write the embedded demo dataset (H&M format)"),
    "build": (cmd_build, _build_args, "build every artifact (model, embeddings, index, ALS, HNSW); resumable"),
    "train-clip": (cmd_train_clip, _train_clip_args, "train an open_clip model on the catalogue's image–caption pairs"),
    "search": (cmd_search, _search_args, "content search: text, images, more-like-this, filters"),
    "similar-customers": (cmd_similar_customers, _similar_customers_args, "customers with similar tastes (ALS factors in HNSW)"),
    "recommend": (cmd_recommend, _recommend_args, "recommendations with reasons for one or many customers"),
    "complete": (cmd_complete, _complete_args, "complete the look: what shoppers bought with an article, other product groups"),
    "serve": (cmd_serve, _serve_args, "the HTTP API (FastAPI + uvicorn); docs at /docs"),
    "evaluate": (cmd_evaluate, _evaluate_args, "MAP@12 / recall@12 / coverage on a time split, with baselines"),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recommender", description="Lookbook: fashion search and recommendations")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (run, add_flags, help_text) in VERBS.items():
        verb = verbs.add_parser(name, help=help_text)
        add_flags(verb)
        verb.set_defaults(run=run)
    return parser


# Whole-number flags: (flag, largest sensible value).
COUNT_FLAGS = {"k": ("-k", MAX_RESULTS), "epochs": ("--epochs", 10_000),
               "articles": ("--articles", 10**7), "customers": ("--customers", 10**8),
               "transactions": ("--transactions", 10**9)}  # fmt: skip


def check_args(args) -> None:
    """Refuse unusable flag values before any data or model is opened; queries are cleaned in place."""
    from .images import MAX_PHOTOS_PER_QUERY

    for name, (flag, limit) in COUNT_FLAGS.items():
        if getattr(args, name, None) is not None:
            check_count(getattr(args, name), flag, limit)
    for name, flag in (("text", "--text"), ("negative", "--negative")):
        if getattr(args, name, None) is not None:
            setattr(args, name, clean_text(getattr(args, name), flag))
    if len(getattr(args, "image", None) or []) > MAX_PHOTOS_PER_QUERY:
        raise InputError(f"--image: {len(args.image)} photos; a query takes at most {MAX_PHOTOS_PER_QUERY}")
    weight = getattr(args, "image_weight", None)
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise InputError(f"--image-weight must be from 0 to 1, not {weight}")


# Verbs that run one big job (every core for every library); the others answer queries.
BUILD_VERBS = {"demo", "build", "train-clip", "evaluate"}


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from .runtime import configure_threads

    try:
        check_args(args)
        configure_threads("build" if args.verb in BUILD_VERBS else "serve")
        args.run(args)
    except LookbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
