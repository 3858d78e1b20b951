"""The build's model step: the requested open_clip model when its source loads, else a model trained on
this catalogue (`FALLBACK_MODEL`), kept while few of its image–caption pairs changed; the choice is the
`clip_model` artifact, which `open_engine` reads back."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .config import Settings, resolve_device
from .errors import ArtifactError, ModelError
from .progress import Progress
from .store import ArtifactStore

FALLBACK_MODEL = "lookbook-tiny"
# A catalogue-trained model is kept while at most this share of its image–caption pairs changed: a few
# edited names or new photos move it little, and retraining takes hours at H&M scale.
RETRAIN_SHARE = 0.05
PAIRS_FILE = "training_pairs.npz"


def requested_model(settings: Settings) -> str:
    return f"{settings.model} {settings.pretrained}"

def training_pairs(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(article ids, one key per image–caption pair) of the articles a catalogue model trains on."""
    from .captions import CAPTION_FIELDS
    from .digests import column_hashes

    articles = catalog.articles
    with_image = articles["has_image"].to_numpy()
    ids = articles["article_id"].to_numpy(dtype=str)[with_image]
    captions = column_hashes(articles, CAPTION_FIELDS)[with_image]
    keys = np.array([f"{catalog.image_digests.get(a, '')}:{c:016x}" for a, c in zip(ids, captions)], dtype=str)
    return ids, keys


def changed_pairs(old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray]) -> dict:
    """How many pairs were added, removed or changed (photo or caption text) between two catalogues."""
    before, after = dict(zip(*old)), dict(zip(*new))
    changed = sum(1 for a, key in after.items() if a in before and before[a] != key)
    added, removed = len(after.keys() - before.keys()), len(before.keys() - after.keys())
    total = changed + added + removed
    return {"changed": changed, "added": added, "removed": removed,
            "share": total / max(1, len(before)), "total": total}


def _stored_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(folder / PAIRS_FILE) as stored:
            return stored["ids"], stored["keys"]
    except (OSError, ValueError, KeyError):
        return None


def _keep_trained_model(catalog: Catalog, folder: Path, choice: dict, log) -> bool:
    """Whether a catalogue-trained model still fits the catalogue (says what changed and why in the log)."""
    if not (folder / choice["pretrained"]).is_file():
        return True  # a pretrained source: the catalogue is not its training data
    old = _stored_pairs(folder)
    if old is None:
        return True  # built before training pairs were recorded: `prepare_model` records today's
    diff = changed_pairs(old, training_pairs(catalog))
    if not diff["total"]:
        return True
    what = (f"{diff['changed']:,} changed, {diff['added']:,} added, {diff['removed']:,} removed of "
            f"{len(old[0]):,} image–caption pairs ({diff['share']:.1%})")
    if diff["share"] <= RETRAIN_SHARE:
        log(f"model: kept — {what} is within {RETRAIN_SHARE:.0%}; only the changed articles are re-embedded")
        return True
    log(f"model: retraining — {what} is over {RETRAIN_SHARE:.0%}")
    return False


def prepare_model(settings: Settings, catalog: Catalog, store: ArtifactStore, report: Progress, log):
    """The requested pretrained model, or (offline / unavailable) one trained on this catalogue.

    The choice is an artifact too, so opening the engine never retries an unreachable hub. A
    catalogue-trained model is keyed by what was requested, not by the data: it is retrained only when
    its training pairs changed materially (`_keep_trained_model`).
    """
    from .embed import load_embedder

    device = resolve_device(settings.device)
    expect = {"requested": requested_model(settings)}
    if store.is_current("clip_model", expect):
        art = store.load("clip_model", expect)
        choice = read_choice(art.path, store)
        if _keep_trained_model(catalog, art.path, choice, log):
            if _stored_pairs(art.path) is None:
                _record_pairs(store, expect, art.path, catalog)
                art = store.load("clip_model", expect)
            report(1.0, f"model: {choice['model_name']} {choice['pretrained']}")
            return load_choice(art.path, choice, device), choice.get("notice")

    report(0.0, f"loading {settings.pretrained}")
    notice = None
    try:
        embedder = load_embedder(settings.model, settings.pretrained, device=device)
        choice = {"model_name": settings.model, "pretrained": settings.pretrained}
        checkpoint = None
    except ModelError as exc:
        if not settings.fallback:
            raise
        notice = (
            f"{settings.model} {settings.pretrained} could not be loaded ({exc}); "
            f"using a model trained on this catalogue instead"
        )
        log(f"notice: {notice}")
        from .train_clip import train_clip

        work = store.scratch("clip_model")
        checkpoint = train_clip(catalog, out=work / "model.pt", model_name=FALLBACK_MODEL,
                                epochs=settings.train_epochs, progress=report)
        choice = {"model_name": FALLBACK_MODEL, "pretrained": "model.pt", "notice": notice}
    ids, keys = training_pairs(catalog)
    with store.write("clip_model", expect) as tmp:
        if checkpoint is not None:
            shutil.copy2(checkpoint, tmp / "model.pt")
        (tmp / "choice.json").write_text(json.dumps(choice, indent=2))
        np.savez(tmp / PAIRS_FILE, ids=ids, keys=keys)
    store.clear_scratch("clip_model")
    art = store.load("clip_model", expect)
    return (load_choice(art.path, choice, device) if checkpoint is not None else embedder), notice


def _record_pairs(store: ArtifactStore, expect: dict, folder: Path, catalog: Catalog) -> None:
    """Rewrite an artifact "clip_model" from before training pairs were recorded, with today's pairs."""
    ids, keys = training_pairs(catalog)
    with store.write("clip_model", expect) as tmp:
        for path in folder.iterdir():
            shutil.copy2(path, tmp / path.name)
        np.savez(tmp / PAIRS_FILE, ids=ids, keys=keys)


def read_choice(folder: Path, store: ArtifactStore) -> dict:
    try:
        choice = json.loads((folder / "choice.json").read_text())
        choice["model_name"], choice["pretrained"]
        return choice
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"artifact 'clip_model' in {store.root} is damaged (choice.json: {exc}); "
            f"rebuild it with `{store.rebuild_hint}`"
        ) from None


def load_choice(folder: Path, choice: dict, device: str):
    from .embed import load_embedder

    source = choice["pretrained"]
    if (folder / source).is_file():  # a checkpoint stored inside the artifact
        source = str(folder / source)
    return load_embedder(choice["model_name"], source, device=device)
