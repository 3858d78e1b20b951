"""Merchandising rules a shop sets: pin, boost, bury and exclude, each with an optional date range.

`rules.toml` in the data folder (or the file `LOOKBOOK_RULES` names), one `[[rule]]` table a rule:

    [[rule]]
    name = "new in first"          # shown on every result the rule touched
    action = "boost"               # pin | boost | bury | exclude
    factor = 2.0                   # boost and bury multiply the result's score by this (bury: below 1)
    start = 2026-12-01             # optional: active from this day …
    end = 2026-12-31               # … to this day, both included
    [rule.when]                    # which articles (every condition must hold; none: every article)
    index_group_name = ["Ladieswear"]       # also product_group_name, product_type_name, colour_group_name
    price_min = 0.01               # the article's mean price in the purchases (normalised like the data)
    price_max = 0.05
    new_within_days = 30           # first sold in the last 30 days of the data (new arrivals)
    article_ids = ["0108775015"]

    [[rule]]
    name = "party edit"
    action = "pin"                 # these articles first, in this order — in search, for this query
    query = "party dress"          # the search text it applies to (case and spacing ignored) …
    filter = { index_group_name = "Ladieswear" }   # … or a filter the search uses
    articles = ["0108775015", "0108775044"]

Applied after ranking, at one place per answer type (`Rules.apply`): search and "more like this"
(`ContentSearch.search`), recommendations and complete the look (`CollabModel._listing_of`). Scores are
made positional first (1 / (1 + position): a list's scores may be ranks, fused ranks or log-odds), then
multiplied; exclusions are backfilled from a deeper list, so a list keeps k results while the deeper list
holds k that pass. The file is read again when it changes (`watched.WatchedFile`); one that cannot be used
is refused with one message naming the rule and its line, and the last good rules stay in force. At most
`MAX_RULES` rules: each costs a few vectorised comparisons over the list being answered.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalog import Catalog, normalize_article_id
from .errors import DataError, InputError
from .runtime import built_once
from .watched import WatchedFile

FILE = "rules.toml"
ACTIONS = ("pin", "boost", "bury", "exclude")
COLUMNS = ("index_group_name", "product_group_name", "product_type_name", "colour_group_name")
WHEN_KEYS = COLUMNS + ("price_min", "price_max", "new_within_days", "article_ids")
RULE_KEYS = ("name", "action", "factor", "start", "end", "when", "query", "filter", "articles")
MAX_RULES = 1_000
MAX_BYTES = 1024 * 1024
SLACK = 24  # rows asked beyond k when rules are in force: what exclusions are backfilled from


@dataclass
class Rule:
    name: str
    action: str
    factor: float = 1.0
    start: dt.date | None = None
    end: dt.date | None = None
    when: dict = field(default_factory=dict)
    query: str | None = None
    filter: dict = field(default_factory=dict)
    articles: list[int] = field(default_factory=list)  # pinned article rows, in order

    def active(self, today: dt.date) -> bool:
        return (self.start is None or self.start <= today) and (self.end is None or today <= self.end)


def words(text: str | None) -> str:
    return " ".join(re.findall(r"\w+", (text or "").lower()))


class Rules:
    """The rules in force for one catalogue: `apply` to an answer; `touched` counts per rule and day."""

    def __init__(self, path: Path | None, catalog: Catalog):
        self.catalog = catalog
        self.touched: dict[tuple[str, str], int] = {}  # (day, rule name) → results touched
        self._file = WatchedFile(path, lambda file: read_rules(file, catalog), [])
        self._count_lock = threading.Lock()

    @classmethod
    def for_folder(cls, folder: Path, catalog: Catalog) -> "Rules":
        named = os.environ.get("LOOKBOOK_RULES", "").strip()
        return cls(Path(named).expanduser() if named else Path(folder) / FILE, catalog)

    @property
    def problem(self) -> str | None:
        """Why the file on disk is not the one in force (None: it is)."""
        return self._file.problem

    def current(self, today: dt.date | None = None) -> list[Rule]:
        """The rules in force today (the file read again when it changed)."""
        today = today or dt.date.today()
        return [rule for rule in self._file.value() if rule.active(today)]

    @built_once
    def _codes(self) -> dict[str, np.ndarray]:
        articles = self.catalog.articles
        return {c: articles[c].astype(str).to_numpy() for c in COLUMNS if c in articles.columns}

    @built_once
    def _prices_and_ages(self) -> tuple[np.ndarray, np.ndarray]:
        """Made when a rule first asks (it reads every purchase), not when an engine opens."""
        return _article_prices_and_ages(self.catalog)

    def apply(self, rows: np.ndarray, k: int, *, query: str | None = None, filters: dict | None = None,
              allowed: np.ndarray | None = None, today: dt.date | None = None) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """``rows`` (best first, deeper than k) with the rules applied, cut to k: (rows, positional scores
        after boosts, each row's touching rules). Pins (search only: ``query`` / ``filters`` given) put their
        articles first when ``allowed`` lets them through (None: every row)."""
        rules = self.current(today)
        rows = np.asarray(rows, np.int64)
        scores = 1.0 / (1.0 + np.arange(len(rows)))
        names: list[list[str]] = [[] for _ in rows]
        keep = np.ones(len(rows), bool)
        for rule in rules:
            if rule.action == "pin":
                continue
            hit = self._matches(rule, rows)
            if rule.action == "exclude":
                keep &= ~hit
            else:
                scores = np.where(hit, scores * rule.factor, scores)
            for i in np.flatnonzero(hit):
                names[i].append(rule.name)
        order = [i for i in np.lexsort((np.arange(len(rows)), -scores)) if keep[i]]
        rows, scores, names = rows[order], scores[order], [names[i] for i in order]
        pinned = self._pinned(rules, query, filters, allowed) if query is not None or filters else []
        if pinned:
            front = [row for row, _ in pinned]
            rest = ~np.isin(rows, front)
            top = scores[0] if len(scores) else 1.0
            by_row = dict(zip(rows.tolist(), names))
            pinned_names = [by_row.get(row, []) + [name] for row, name in pinned]
            rows = np.concatenate([np.asarray(front, np.int64), rows[rest]])
            scores = np.concatenate([top + np.arange(len(front), 0, -1, dtype=float), scores[rest]])
            names = pinned_names + [n for n, r in zip(names, rest) if r]
        rows, scores, names = rows[:k], scores[:k], names[:k]
        day = str(today or dt.date.today())
        with self._count_lock:  # answers run on several threads
            for touched in names:
                for name in touched:
                    self.touched[(day, name)] = self.touched.get((day, name), 0) + 1
        return rows, scores, names

    def _matches(self, rule: Rule, rows: np.ndarray) -> np.ndarray:
        hit = np.ones(len(rows), bool)
        for key, value in rule.when.items():
            if key in COLUMNS:
                hit &= np.isin(self._codes[key][rows], value)
            elif key == "price_min":
                hit &= self._prices_and_ages[0][rows] >= value
            elif key == "price_max":
                hit &= self._prices_and_ages[0][rows] <= value
            elif key == "new_within_days":
                hit &= self._prices_and_ages[1][rows] <= value
            elif key == "article_ids":
                hit &= np.isin(rows, value)
        return hit

    def _pinned(self, rules: list[Rule], query, filters, allowed) -> list[tuple[int, str]]:
        """(row, rule name) of every pin that applies, in file order, each article once."""
        asked, seen, out = words(query), set(), []
        chosen = {c: set([v] if isinstance(v, str) else v) for c, v in (filters or {}).items()}
        for rule in rules:
            if rule.action != "pin":
                continue
            by_query = rule.query is not None and words(rule.query) == asked
            by_filter = bool(rule.filter) and all(value in chosen.get(c, set()) for c, value in rule.filter.items())
            if by_query or by_filter:
                for row in rule.articles:
                    if row not in seen and (allowed is None or allowed[row]):
                        seen.add(row)
                        out.append((row, rule.name))
        return out


def _article_prices_and_ages(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """Each article's mean price and the days from its first sale to the data's end (NaN / inf: never sold)."""
    n, tx = len(catalog.articles), catalog.transactions
    if tx is None or tx.empty:
        return np.full(n, np.nan), np.full(n, np.inf)
    articles = tx["article"].to_numpy()
    counts = np.bincount(articles, minlength=n)
    price = np.bincount(articles, weights=tx["price"].to_numpy(np.float64), minlength=n) / np.maximum(counts, 1)
    when = tx["t_dat"].to_numpy()
    days = (when[-1] - when) / np.timedelta64(1, "D")
    first = np.full(n, -np.inf)
    np.maximum.at(first, articles, days)  # the oldest sale: the most days before the end
    return np.where(counts > 0, price, np.nan), np.where(np.isfinite(first), first, np.inf)


def read_rules(path: Path, catalog: Catalog) -> list[Rule]:
    """The rules of ``path``; DataError naming the file, the rule and its line, and the problem."""
    name = path.name
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{name} is larger than {MAX_BYTES // 1024} KB")
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{name}: not valid TOML ({exc})") from None
    unknown = set(document) - {"rule"}
    if unknown:
        raise DataError(f"{name}: unknown table {sorted(unknown)[0]!r}; rules are [[rule]] tables")
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        raise DataError(f"{name}: rules are [[rule]] tables (an array of tables)")
    if len(tables) > MAX_RULES:
        raise DataError(f"{name} holds {len(tables):,} rules; at most {MAX_RULES:,} are allowed")
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip().startswith("[[rule]]")]
    rules, names = [], set()
    for i, table in enumerate(tables):
        where = f"{name} rule {i + 1}" + (f" (line {lines[i]})" if i < len(lines) else "")
        try:
            rule = _rule(table, catalog, i)
        except (InputError, DataError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: {exc}") from None
        if rule.name in names:
            raise DataError(f"{where}: the name {rule.name!r} is taken by an earlier rule")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _rule(table: dict, catalog: Catalog, index: int) -> Rule:
    unknown = set(table) - set(RULE_KEYS)
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}; a rule has {', '.join(RULE_KEYS)}")
    action = table.get("action")
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    rule = Rule(name=str(table.get("name") or f"rule {index + 1}")[:80], action=action)
    for key in ("start", "end"):
        value = table.get(key)
        if value is not None and not isinstance(value, dt.date):
            raise ValueError(f"{key} must be a date like 2026-12-31, not {value!r}")
        setattr(rule, key, value if not isinstance(value, dt.datetime) else value.date())
    if action in ("boost", "bury"):
        factor = table.get("factor")
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not factor > 0:
            raise ValueError(f"{action} needs a factor above 0, not {factor!r}")
        if (action == "boost") != (factor > 1):
            raise ValueError(f"a {action} factor must be {'above' if action == 'boost' else 'below'} 1, not {factor}")
        rule.factor = float(factor)
    rule.when = _when(table.get("when", {}), catalog)
    if action == "pin":
        articles = table.get("articles")
        if not isinstance(articles, list) or not articles:
            raise ValueError("a pin needs articles = [\"<article id>\", …]")
        rule.articles = [_row(catalog, a) for a in articles]
        rule.query = table.get("query")
        rule.filter = table.get("filter", {})
        if rule.query is None and not rule.filter:
            raise ValueError("a pin needs a query or a filter to apply to")
        for column, value in rule.filter.items():
            _check_value(catalog, column, [value])
    elif any(key in table for key in ("articles", "query", "filter")):
        raise ValueError(f"articles, query and filter belong to pins, not to a {action}")
    return rule


def _when(when: dict, catalog: Catalog) -> dict:
    if not isinstance(when, dict):
        raise ValueError("when must be a table of conditions")
    out = {}
    for key, value in when.items():
        if key not in WHEN_KEYS:
            raise ValueError(f"unknown column {key!r} in when; known: {', '.join(WHEN_KEYS)}")
        if key in COLUMNS:
            values = [value] if isinstance(value, str) else list(value)
            _check_value(catalog, key, values)
            out[key] = values
        elif key == "article_ids":
            out[key] = [_row(catalog, a) for a in value]
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a number of 0 or more, not {value!r}")
            out[key] = float(value)
    return out


def _row(catalog: Catalog, article_id) -> int:
    try:
        return catalog.article_row(normalize_article_id(article_id))
    except InputError:
        raise ValueError(f"article {str(article_id)[:20]!r} is not in the catalogue") from None


def _check_value(catalog: Catalog, column: str, values: list) -> None:
    if column not in COLUMNS or column not in catalog.articles.columns:
        raise ValueError(f"unknown column {column!r}; known: {', '.join(COLUMNS)}")
    known = set(catalog.articles[column].astype(str))
    for value in values:
        if str(value) not in known:
            raise ValueError(f"{column} {str(value)[:60]!r} is not in the catalogue")
