"""Lexical search: BM25 (bm25s) over each article's catalogue text, with shopper-query analysis.

Shoppers type the catalogue's own words ("Jade HW Skinny Denim TRS", "push-up", "lace"), which a
small CLIP model knows few of; this leg finds them. Each article is one document made from its text
fields, the telling ones repeated (FIELD_WEIGHTS: BM25 has no fields, and repeating a field's words
raises their term frequency, which BM25 saturates).

Analysis (`Analyzer`), the same for documents and queries: case and accents folded, apostrophes
dropped ("men's" = "mens"), hyphenated compounds joined ("T-shirt" → "tshirt"), stop words left out,
Snowball English stemming (PyStemmer: "dresses" = "dress"). Queries additionally get
- phrases: two query words next to each other also find, in a second BM25 index, the articles that
  have them next to each other within one field ("high waist", "wide leg", "off the shoulder"; stop
  words between are skipped on both sides); that score is added, times PHRASE_WEIGHT;
- compounds joined when the catalogue writes them joined more often than apart ("t shirt" = "tshirt" =
  "t-shirt", while "slim fit" stays a phrase though "slim-fit" occurs);
- synonyms from SYNONYMS, each group cut to the words the catalogue uses ("pants" adds "trousers");
- typo tolerance: a word of TYPO_MIN_LETTERS or more that matches nothing is replaced by the most
  frequent catalogue word at edit distance 1 ("blak" → "black").

Artifact "lexical_index": the two BM25 matrices (words, phrases; bm25s format) and the analyser's
vocabularies; stale when articles.csv changes (its own digest, not the images') or the analysis does.
"""
from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .errors import ArtifactError

Progress = Callable[[float, str], None]

# Column → repetitions in the document. The names shoppers type first weigh most.
FIELD_WEIGHTS = {
    "prod_name": 3,
    "product_type_name": 3,
    "colour_group_name": 2,
    "graphical_appearance_name": 2,
    "perceived_colour_master_name": 1,
    "perceived_colour_value_name": 1,
    "product_group_name": 1,
    "index_group_name": 1,
    "section_name": 1,
    "garment_group_name": 1,
    "detail_desc": 1,
}
# Words that describe nothing: English stop words and the H&M placeholders.
STOP_WORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or so than that the their "
    "this to with without unknown undefined nan none".split()
)
# Groups of words a shopper uses for the same thing; at build each group keeps the words the catalogue
# actually has, and a query word of a group also searches the group's catalogue words.
SYNONYMS = (
    ("sneakers", "trainers", "sneaker", "trainer"),
    ("trousers", "pants", "slacks"),
    ("sweater", "jumper", "pullover"),
    ("hoodie", "hooded"),
    ("vest", "tank", "singlet"),
    ("bag", "purse", "handbag"),
    ("jeans", "denim"),
    ("joggers", "sweatpants"),
    ("pyjamas", "pajamas", "pyjama", "pajama", "pjs"),
    ("jumpsuit", "playsuit", "romper"),
    ("cardigan", "cardi"),
    ("menswear", "mens", "men", "man"),
    ("ladieswear", "ladies", "womens", "women", "woman"),
    ("children", "kids", "kid", "child"),
    ("baby", "infant", "babies"),
    ("swimsuit", "swimwear", "bathing"),
    ("bikini", "swimwear"),
    ("glittering", "glitter", "sparkly", "metallic"),
    ("stripe", "striped", "stripy"),
    ("dot", "dotted", "polka"),
    ("check", "checked", "plaid", "tartan"),
    ("grey", "gray"),
    ("beige", "nude", "camel"),
    ("earring", "earrings"),
    ("sunglasses", "shades"),
    ("hat", "beanie", "cap"),
)
TYPO_MIN_LETTERS = 4
BM25_K1, BM25_B = 1.2, 0.75
PHRASE_WEIGHT = 0.75  # chosen on bench/search_queries.json; bench/search_queries_fit.json held out
ANALYZER_VERSION = 2  # bump when the analysis changes: the artifact then rebuilds
_APOSTROPHES = re.compile(r"['’`´]")
_COMPOUND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
_WORD = re.compile(r"[a-z0-9]+")


def _fold(text: str) -> str:
    """Lower case without accents or apostrophes."""
    text = str(text).lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _APOSTROPHES.sub("", text)


def split_words(text: str) -> list[str]:
    """Folded words, hyphenated compounds joined: "Men's T-shirt, slim-fit" → ["mens", "tshirt", "slimfit"]."""
    folded = _COMPOUND.sub(lambda m: m.group(0).replace("-", ""), _fold(text))
    return [w for w in _WORD.findall(folded) if w not in STOP_WORDS]


class Analyzer:
    """Words → index terms (stems), and query analysis against the catalogue's vocabulary."""

    def __init__(self, vocabulary: Mapping[str, int] | None = None, words: Mapping[str, str] | None = None,
                 phrases: Mapping[str, int] | None = None):
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        self.document_frequency = dict(vocabulary or {})  # term → number of documents
        self.words = dict(words or {})  # catalogue word → its term
        self.phrase_frequency = dict(phrases or {})  # "term_term" → number of documents
        self.synonyms = self._synonym_table()

    def stem(self, words: list[str]) -> list[str]:
        return self._stemmer.stemWords(words) if words else []

    def _synonym_table(self) -> dict[str, list[str]]:
        """term → the terms of its groups that the catalogue has (itself excluded)."""
        table: dict[str, set[str]] = {}
        for group in SYNONYMS:
            terms = self.stem(list(group))
            present = [t for t in dict.fromkeys(terms) if t in self.document_frequency]
            for term in terms:
                table.setdefault(term, set()).update(t for t in present if t != term)
        return {t: sorted(others) for t, others in table.items() if others}

    def analyse_query(self, text: str) -> list[tuple[str, list[str]]]:
        """[(query word as understood, [terms it searches])], e.g. "blak t shirt" →
        [("black", ["black"]), ("tshirt", ["tshirt"])]; words that match nothing keep an empty list."""
        words = split_words(text)
        joined: list[str] = []
        i = 0
        while i < len(words):  # "t shirt" → "tshirt" when the catalogue writes it joined more often
            if i + 1 < len(words) and self._joined_more_often(words[i], words[i + 1]):
                joined.append(words[i] + words[i + 1])
                i += 2
            else:
                joined.append(words[i])
                i += 1
        analysed = []
        for word in joined:
            term = self.stem([word])[0]
            if term not in self.document_frequency and term not in self.synonyms and len(word) >= TYPO_MIN_LETTERS:
                word = self._correction(word) or word
                term = self.stem([word])[0]
            searched = [term] if term in self.document_frequency else []
            searched += [t for t in self.synonyms.get(term, []) if t not in searched]
            analysed.append((word, searched))
        return analysed

    def _joined_more_often(self, first: str, second: str) -> bool:
        joined = self.document_frequency.get(self.stem([first + second])[0], 0)
        return joined > 0 and joined >= self.phrase_frequency.get(phrase(*self.stem([first, second])), 0)

    def phrases(self, analysed: list[tuple[str, list[str]]]) -> list[list[str]]:
        """For each two neighbouring query words, the catalogue's phrases they make (synonyms included)."""
        found = []
        for (_, firsts), (_, seconds) in zip(analysed, analysed[1:]):
            pairs = [phrase(a, b) for a in firsts for b in seconds if phrase(a, b) in self.phrase_frequency]
            if pairs:
                found.append(pairs)
        return found

    def _correction(self, word: str) -> str | None:
        """The most frequent catalogue word at edit distance 1 (deletion, transposition, substitution,
        insertion), or None."""
        letters = string.ascii_lowercase + string.digits
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        edits = {a + b[1:] for a, b in splits if b}
        edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
        edits |= {a + c + b for a, b in splits for c in letters}
        found = [e for e in edits if e in self.words]
        if not found:
            return None
        return max(found, key=lambda e: (self.document_frequency.get(self.words[e], 0), e))


def phrase(first_term: str, second_term: str) -> str:
    return f"{first_term}_{second_term}"


def document_phrases(records: list[Mapping], term_of: Mapping[str, str]) -> list[list[str]]:
    """Each article's neighbouring term pairs, within each field (never across two), once per field."""
    made: dict[str, list[str]] = {}
    documents = []
    for record in records:
        pairs: list[str] = []
        for column in FIELD_WEIGHTS:
            value = record.get(column)
            if isinstance(value, str):
                if value not in made:
                    terms = [term_of[w] for w in split_words(value)]
                    made[value] = [phrase(a, b) for a, b in zip(terms, terms[1:])]
                pairs += made[value]
        documents.append(pairs)
    return documents


def bm25_index(documents: list[list[str]]):
    """bm25s over documents of terms (an empty document gets a placeholder term); returns (index, term ids)."""
    import bm25s

    term_ids = {t: i for i, t in enumerate(sorted({t for doc in documents for t in doc}) + ["_empty_"])}
    corpus = [[term_ids[t] for t in doc] or [term_ids["_empty_"]] for doc in documents]
    index = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    index.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=term_ids), show_progress=False)
    return index


def document_words(records: list[Mapping]) -> list[list[str]]:
    """Each article's document as words, each field repeated by its weight. Field values repeat a lot
    (colour variants share names and descriptions), so each distinct value is split once."""
    split: dict[str, list[str]] = {}
    documents = []
    for record in records:
        words: list[str] = []
        for column, weight in FIELD_WEIGHTS.items():
            value = record.get(column)
            if isinstance(value, str):
                if value not in split:
                    split[value] = split_words(value)
                words += split[value] * weight
        documents.append(words)
    return documents


class LexicalIndex:
    """BM25 over the catalogue rows (document i = row i of Catalog.articles)."""

    def __init__(self, bm25, analyzer: Analyzer, n_documents: int, phrases=None):
        self.bm25 = bm25
        self.phrase_bm25 = phrases
        self.analyzer = analyzer
        self.size = n_documents

    @classmethod
    def build(cls, articles, progress: Progress | None = None) -> "LexicalIndex":
        report = progress or (lambda fraction, message: None)
        columns = [c for c in FIELD_WEIGHTS if c in articles.columns]
        records = [dict(zip(columns, values)) for values in zip(*(articles[c].tolist() for c in columns))]
        documents = document_words(records)
        report(0.3, f"analysing {len(documents):,} article texts")
        distinct = sorted({w for doc in documents for w in doc})
        words = dict(zip(distinct, Analyzer().stem(distinct)))
        phrases = document_phrases(records, words)
        report(0.6, "indexing words and phrases with BM25")
        bm25 = bm25_index([[words[w] for w in doc] for doc in documents])
        frequency = Counter(words[w] for doc in documents for w in set(doc))
        phrase_frequency = Counter(p for doc in phrases for p in set(doc))
        return cls(bm25, Analyzer(frequency, words, phrase_frequency), len(documents), bm25_index(phrases))

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder / "bm25"), show_progress=False)
        self.phrase_bm25.save(str(folder / "phrases"), show_progress=False)
        (folder / "analysis.json").write_text(
            json.dumps({"n_documents": self.size, "document_frequency": self.analyzer.document_frequency,
                        "words": self.analyzer.words, "phrase_frequency": self.analyzer.phrase_frequency})
        )  # fmt: skip

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        try:
            analysis = json.loads((folder / "analysis.json").read_text())
            bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
            phrases = bm25s.BM25.load(str(folder / "phrases"), show_progress=False)
            analyzer = Analyzer(analysis["document_frequency"], analysis["words"], analysis["phrase_frequency"])
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(
                f"lexical index in {folder} is unreadable ({exc}); rebuild with `python -m recommender build`"
            ) from exc
        return cls(bm25, analyzer, int(analysis["n_documents"]), phrases)

    def scores(self, analysed: list[tuple[str, list[str]]]) -> np.ndarray:
        """Σ over the query words of the best BM25 score among the word's terms (a word and its
        synonyms count once), plus PHRASE_WEIGHT × Σ over neighbouring query words of the best BM25
        score among the phrases they make; zeros when nothing is in the index."""
        total = np.zeros(self.size, dtype=np.float32)
        for _, terms in analysed:
            known = [t for t in terms if t in self.analyzer.document_frequency]
            if known:
                total += np.max([self.bm25.get_scores([t]) for t in known], axis=0).astype(np.float32)
        for pairs in self.analyzer.phrases(analysed):
            total += PHRASE_WEIGHT * np.max([self.phrase_bm25.get_scores([p]) for p in pairs], axis=0).astype(np.float32)
        return total

    def query_scores(self, text: str) -> tuple[np.ndarray, list[tuple[str, list[str]]]]:
        analysed = self.analyzer.analyse_query(text)
        return self.scores(analysed), analysed

    def matched(self, record: Mapping, terms: set[str]) -> dict[str, list[str]]:
        """Which of the article's own words, per field, match these query terms."""
        out = {}
        for column in FIELD_WEIGHTS:
            value = record.get(column)
            if not isinstance(value, str) or not terms:
                continue
            words = split_words(value)
            hits = [w for w, t in zip(words, self.analyzer.stem(words)) if t in terms]
            if hits:
                out[column] = list(dict.fromkeys(hits))
        return out


def articles_digest(catalog) -> str:
    """Digest of articles.csv: the lexical index depends on the article texts only."""
    digest = hashlib.sha1()
    with open(Path(catalog.root) / "articles.csv", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def lexical_expect(catalog) -> dict:
    return {"articles": articles_digest(catalog), "n_articles": int(len(catalog.articles)),
            "analyzer": ANALYZER_VERSION, "fields": FIELD_WEIGHTS, "bm25": [BM25_K1, BM25_B]}  # fmt: skip


def build_lexical_index(catalog, store, *, progress: Progress | None = None) -> None:
    """Artifact "lexical_index" for this catalogue's articles.csv; skipped when current."""
    expect = lexical_expect(catalog)
    if store.is_current("lexical_index", expect):
        return
    index = LexicalIndex.build(catalog.articles, progress=progress)
    with store.write("lexical_index", {**expect, "vocabulary": len(index.analyzer.document_frequency)}) as folder:
        index.save(folder)
    if progress:
        progress(1.0, f"lexical index: {len(index.analyzer.document_frequency):,} terms over {index.size:,} articles")


def load_lexical_index(catalog, store) -> LexicalIndex:
    art = store.load("lexical_index", lexical_expect(catalog))
    index = LexicalIndex.load(art.path)
    if index.size != len(catalog.articles):
        raise ArtifactError("the lexical index lists another number of articles; rebuild with `python -m recommender build`")
    return index
