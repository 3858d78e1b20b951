"""Deterministic demo dataset in the exact H&M Kaggle format, with rendered product images.

`generate_demo` writes articles.csv, customers.csv, transactions_train.csv and
images/<first 3 digits>/<article_id>.jpg for a small catalogue whose pictures (silhouette, colour,
pattern) agree with the metadata, and whose customers have planted tastes (index group, product types,
colours) that drive two years of seasonal purchases, so content search and collaborative filtering both
have a real signal to find. `generate_transactions_only` writes the same CSV format at H&M scale (no
images) for benchmarks. The same options and seed give byte-identical files. `planted_tastes` tells what
each customer was made to like (ground truth for evaluations), `render_article` draws a product picture.

Vocabulary, codes and department rows are real H&M values (taken from the Kaggle articles.csv).
A dataset is written into a temporary sibling folder and renamed into place with a `demo.json` manifest,
so a half-written one is never mistaken for a complete one.
"""
from __future__ import annotations

from pathlib import Path

from .drawing import render_article, write_images
from .simulation import make_articles, make_customers, make_transactions, planted_tastes
from .vocabulary import FORMAT_VERSION, HM_ARTICLES, HM_CUSTOMERS, HM_TRANSACTIONS, IMAGE_SIZE, TRANSACTIONS_PER_CUSTOMER, Progress
from .writing import check_options, price_text, publish, stages, write_csv, write_transactions

__all__ = ["IMAGE_SIZE", "TRANSACTIONS_PER_CUSTOMER", "generate_demo", "generate_transactions_only", "planted_tastes",
           "price_text", "render_article"]


def generate_demo(out_dir: Path, *, n_articles: int = 1200, n_customers: int = 500, seed: int = 0,
                  progress: Progress | None = None) -> Path:
    """Write the demo dataset (CSV files + product images) into out_dir; returns out_dir.

    Nothing is done when out_dir already holds the dataset for these options. Raises InputError for bad
    sizes and DataError when out_dir is a folder that is not a generated demo dataset.
    """
    check_options(seed, n_articles=n_articles, n_customers=n_customers)
    n_transactions = TRANSACTIONS_PER_CUSTOMER * n_customers
    manifest = {"generator": __name__, "format_version": FORMAT_VERSION, "mode": "demo", "seed": seed,
                "n_articles": n_articles, "n_customers": n_customers, "n_transactions": n_transactions}  # fmt: skip
    stage = stages(progress, {"articles": 0.02, "images": 0.78, "customers": 0.02, "transactions": 0.18})

    def write(root: Path) -> None:
        stage("articles")(0.0, "designing the catalogue")
        articles = make_articles(n_articles, seed)
        write_csv(articles.table, root / "articles.csv")
        write_images(root, articles, seed, stage("images"))
        stage("customers")(0.0, "planting customer tastes")
        customers = make_customers(n_customers, seed)
        write_csv(customers.table, root / "customers.csv")
        tx = make_transactions(articles, customers, n_transactions, seed, lambda f, m: None)
        write_transactions(root / "transactions_train.csv", tx, customers.ids,
                            articles.table["article_id"].to_numpy(), stage("transactions"))
        stage("transactions")(1.0, "demo dataset written")

    return publish(out_dir, manifest, write)


def generate_transactions_only(out_dir: Path, *, n_articles: int = HM_ARTICLES, n_customers: int = HM_CUSTOMERS,
                               n_transactions: int = HM_TRANSACTIONS, seed: int = 0,
                               progress: Progress | None = None) -> Path:
    """Write articles.csv, customers.csv and transactions_train.csv at H&M scale (no images); returns out_dir.

    Same format and purchase model as the demo, generated vectorised in bounded memory, for benchmarks.
    """
    check_options(seed, n_articles=n_articles, n_customers=n_customers, n_transactions=n_transactions)
    manifest = {"generator": __name__, "format_version": FORMAT_VERSION, "mode": "transactions-only",
                "seed": seed, "n_articles": n_articles, "n_customers": n_customers,
                "n_transactions": n_transactions}  # fmt: skip
    stage = stages(progress, {"articles": 0.03, "customers": 0.1, "simulate": 0.5, "write": 0.37})

    def write(root: Path) -> None:
        stage("articles")(0.0, "designing the catalogue")
        articles = make_articles(n_articles, seed)
        write_csv(articles.table, root / "articles.csv")
        stage("customers")(0.0, "planting customer tastes")
        customers = make_customers(n_customers, seed)
        write_csv(customers.table, root / "customers.csv")
        tx = make_transactions(articles, customers, n_transactions, seed, stage("simulate"))
        write_transactions(root / "transactions_train.csv", tx, customers.ids,
                            articles.table["article_id"].to_numpy(), stage("write"))

    return publish(out_dir, manifest, write)
