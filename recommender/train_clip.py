"""Contrastive training of an open_clip model on the catalogue's own image–caption pairs.

From a pretrained source this fine-tunes it to the retailer's catalogue; without one (offline) it
trains a small open_clip config from scratch (`lookbook-tiny`, recommender/model_configs/), which is
what the build falls back to when no pretrained model can be loaded.

Captions come from the article metadata (captions.caption); each step shows every article with a
random subset of its caption fields half of the time, so short typed queries ("black dress") fall in
the text distribution the model learnt. Images are decoded once and kept in memory as small uint8
tensors at the model's input size (a 15k-image catalogue is ~280 MB), so an epoch costs only the
network. The loss is open_clip's ClipLoss plus, at ATTRIBUTE_WEIGHT, the cross-entropy of linear heads
that name each image's product type and colour group from its embedding: the captions say these too, but
contrast within a batch learns them slowly from a catalogue's few thousand images, and the labels teach
them directly (bench/clip_quality.py measures the gain). The heads (plus pattern and index group) are
saved in the checkpoint as `attribute_heads`, and name a photo's attributes (content.predict_attributes). AdamW with a warm-up + cosine schedule.

The run is resumable: after each epoch the full training state is saved next to `out`
(`<out>.partial`), and a new call with the same settings continues from it. The final checkpoint
(weights + open_clip model config + preprocessing) is written atomically, and
`load_embedder(model_name, str(out))` loads it.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from open_clip import ClipLoss
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import resized_crop

from .captions import CAPTION_FIELDS, caption
from .embed import encode_text_tokens, load_embedder, random_embedder
from .errors import DataError, LookbookError
from .images import load_image
from .progress import Progress

DEFAULT_EPOCHS = 30  # measured on the H&M sample (20: text p@10 0.573, 30: 0.613): bench/clip_quality.py
DEFAULT_BATCH_SIZE = 128
LEARNING_RATE = 2e-3  # from scratch; fine-tuning pretrained weights uses FINE_TUNE_LEARNING_RATE
FINE_TUNE_LEARNING_RATE = 1e-5
WEIGHT_DECAY = 0.2
WARMUP_FRACTION = 0.05
SHORT_CAPTION_RATE = 0.75  # share of captions cut to a random subset of their fields
# What shoppers search by first, and what a photo's attributes show (content.predict_attributes).
ATTRIBUTE_FIELDS = ("product_type_name", "colour_group_name", "graphical_appearance_name", "index_group_name")
ATTRIBUTE_WEIGHT = 1.0  # 0.5 and 2.0 measured worse (bench/clip_quality.py)
CHECKPOINT_FORMAT = 2
DECODE_SHARE = 0.1  # of the progress bar: decoding the images before the first step



def train_clip(
    catalog,
    *,
    out: Path,
    pretrained: str | None = None,
    model_name: str = "lookbook-tiny",
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    article_rows: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Train on the catalogue's articles with images (or only `article_rows` of them); returns `out`.

    `pretrained`: any source load_embedder accepts (tag, hf-hub: id, checkpoint file) to fine-tune;
    None trains `model_name` from scratch. Raises DataError when there is nothing to train on.
    """
    out = Path(out)
    epochs = epochs or DEFAULT_EPOCHS
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    report = progress or (lambda fraction, message: None)
    articles = catalog.articles
    rows = np.arange(len(articles)) if article_rows is None else np.asarray(article_rows, dtype=np.int64)
    rows = rows[articles["has_image"].to_numpy()[rows]]
    if len(rows) < 2:
        raise DataError(
            f"{catalog.root}: training a CLIP model needs at least 2 articles with images, found {len(rows)}"
        )

    if pretrained:
        embedder = load_embedder(model_name, pretrained)
    else:
        embedder = random_embedder(model_name, seed=seed)
    model, device = embedder.model, embedder.device
    model.visual.to(memory_format=torch.channels_last)  # the layout oneDNN convolves fastest on CPU
    identity = {
        "format": CHECKPOINT_FORMAT,
        "model_name": embedder.model_name,
        "pretrained": pretrained or "",
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "articles": _digest(articles["article_id"].to_numpy()[rows]),
    }

    images, kept = _decode_images(catalog, rows, embedder.preprocess, report)
    rows = rows[kept]
    captions = _CaptionSampler(articles.iloc[rows])
    normalize = embedder.preprocess.transforms[-1]
    with torch.random.fork_rng():  # the same start for the same seed: a resumed run matches a straight one
        torch.manual_seed(seed)
        heads = AttributeHeads(articles.iloc[rows], embedder.dim).to(device)

    steps_per_epoch = max(1, len(rows) // batch_size)
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, lr=FINE_TUNE_LEARNING_RATE if pretrained else LEARNING_RATE)
        + [{"params": list(heads.parameters()), "lr": LEARNING_RATE, "weight_decay": 0.0}],  # new either way
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=epochs * steps_per_epoch,
        pct_start=WARMUP_FRACTION,
        anneal_strategy="cos",
        cycle_momentum=False,
    )
    partial = out.with_name(out.name + ".partial")
    state = _resume(partial, identity, model, heads, optimizer, schedule)
    start_epoch, losses = state["epoch"], state["losses"]
    if start_epoch:
        report(_training_share(start_epoch / epochs), f"resuming after epoch {start_epoch} of {epochs}")

    loss_fn = ClipLoss()
    for epoch in range(start_epoch, epochs):
        model.train()
        heads.train()
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)  # resumable: per-epoch RNG
        order = torch.randperm(len(rows), generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            pixels = normalize(_augment(images[batch], generator)).to(device, memory_format=torch.channels_last)
            tokens = embedder.tokenizer(captions.sample(batch.numpy(), generator)).to(device)
            image_embeddings = model.encode_image(pixels)
            image_features = F.normalize(image_embeddings, dim=-1)
            text_features = F.normalize(encode_text_tokens(model, tokens), dim=-1)
            loss = loss_fn(image_features, text_features, model.logit_scale.exp())
            loss = loss + ATTRIBUTE_WEIGHT * heads.loss(image_embeddings, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():  # as open_clip's training: temperature at most 100
                model.logit_scale.clamp_(0, math.log(100))
            epoch_loss += loss.item()
            done = (epoch * steps_per_epoch + step + 1) / (epochs * steps_per_epoch)
            report(_training_share(done), f"epoch {epoch + 1}/{epochs}, loss {loss.item():.3f}")
        losses.append(epoch_loss / steps_per_epoch)
        _atomic_save(
            {"identity": identity, "epoch": epoch + 1, "losses": losses, "model": model.state_dict(),
             "heads": heads.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
            partial,
        )  # fmt: skip

    model.eval()
    _atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_name": embedder.model_name,
            "model_cfg": embedder.model_cfg,
            "preprocess_cfg": dict(model.visual.preprocess_cfg),
            "state_dict": model.state_dict(),
            "trained": {**identity, "n_articles": int(len(rows)), "epoch_losses": losses},
            "attribute_heads": heads.export(),
        },
        out,
    )
    partial.unlink(missing_ok=True)
    report(1.0, f"trained {embedder.model_name} on {len(rows):,} image–caption pairs")
    return out


def _training_share(fraction: float) -> float:
    """Overall progress once the images are decoded (decoding is the first DECODE_SHARE)."""
    return DECODE_SHARE + (1 - DECODE_SHARE) * fraction


class AttributeHeads(torch.nn.Module):
    """A linear classifier per ATTRIBUTE_FIELDS over the (unnormalised) image embedding, with the
    labels of the training articles; missing values are left out of the loss."""

    def __init__(self, articles: pd.DataFrame, dim: int):
        super().__init__()
        factorized = {f: pd.factorize(articles[f].to_numpy()) for f in ATTRIBUTE_FIELDS}  # NaN -> -1
        codes = {f: c for f, (c, _) in factorized.items()}
        self.classes = {f: [str(v) for v in values] for f, (_, values) in factorized.items()}
        for field_name, field_codes in codes.items():
            self.register_buffer(f"labels_{field_name}", torch.as_tensor(field_codes, dtype=torch.long))
        self.heads = torch.nn.ModuleDict(
            {f: torch.nn.Linear(dim, max(1, int(c.max()) + 1)) for f, c in codes.items()}
        )

    def export(self) -> dict:
        """{field: {"classes", "weight", "bias"}}: what content.predict_attributes needs, kept in the checkpoint."""
        return {
            f: {"classes": self.classes[f], "weight": head.weight.detach().cpu(), "bias": head.bias.detach().cpu()}
            for f, head in self.heads.items()
        }

    def loss(self, image_embeddings: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy of the heads for the articles at positions `batch` (0 without labels)."""
        total = image_embeddings.new_zeros(())
        for field_name, head in self.heads.items():
            labels = getattr(self, f"labels_{field_name}")[batch]
            known = labels >= 0
            if known.any():
                total = total + F.cross_entropy(head(image_embeddings[known]), labels[known])
        return total


def _parameter_groups(model, lr: float) -> list[dict]:
    """Weight decay on matrices only (weights, embeddings), as open_clip's training does: not on
    gains, biases, norms or the temperature, which are all vectors or scalars."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    return [
        {"params": decay, "lr": lr, "weight_decay": WEIGHT_DECAY},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]


# --- data --------------------------------------------------------------------------------------------


class _ResizedImages(Dataset):
    """Catalogue images decoded (images.load_image) and resized with the model's eval transform,
    as uint8; an unreadable file yields None and is left out of training."""

    def __init__(self, paths: list[Path], preprocess):
        self.paths = paths
        self.resize = preprocess.transforms[:-1]  # everything but Normalize: float tensors in [0, 1]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            pixels = load_image(self.paths[i])
        except LookbookError:
            return None
        for transform in self.resize:
            pixels = transform(pixels)
        return (pixels * 255).round().to(torch.uint8)


def _decode_images(catalog, rows: np.ndarray, preprocess, report: Progress) -> tuple[torch.Tensor, np.ndarray]:
    ids = catalog.articles["article_id"].to_numpy()[rows]
    dataset = _ResizedImages([catalog.image_path(aid) for aid in ids], preprocess)
    workers = min(2, os.cpu_count() or 1) if len(rows) >= 1000 else 0  # worker start-up costs ~1 s
    loader = DataLoader(dataset, batch_size=64, num_workers=workers, collate_fn=list)
    decoded: list = []
    for batch in loader:
        decoded.extend(batch)
        report(DECODE_SHARE * len(decoded) / len(rows), f"decoded {len(decoded):,} of {len(rows):,} training images")
    kept = np.array([image is not None for image in decoded])
    if kept.sum() < 2:
        raise DataError(f"{catalog.root}: fewer than 2 of the training images could be decoded")
    return torch.stack([image for image in decoded if image is not None]), kept


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Modest augmentation of a uint8 batch: horizontal flips and random crops of 60-100% of the area
    (the aspect kept), resized back. No colour changes: colour is what many queries ask for."""
    images = images.float() / 255
    n, _, height, width = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    images[flip] = images[flip].flip(-1)
    scale = (0.6 + 0.4 * torch.rand(n, generator=generator)).sqrt()
    corner = torch.rand(n, 2, generator=generator)
    out = torch.empty_like(images)
    for i in range(n):
        h, w = max(1, round(height * scale[i].item())), max(1, round(width * scale[i].item()))
        top, left = int(corner[i, 0] * (height - h + 1)), int(corner[i, 1] * (width - w + 1))
        out[i] = resized_crop(images[i], top, left, h, w, [height, width], antialias=True)
    return out


class _CaptionSampler:
    """Each article's caption, or with SHORT_CAPTION_RATE a caption from a random subset of fields."""

    def __init__(self, rows):
        self.records = rows.to_dict("records")
        self.full = [caption(record) for record in self.records]

    def sample(self, batch: np.ndarray, generator: torch.Generator) -> list[str]:
        short = torch.rand(len(batch), generator=generator) < SHORT_CAPTION_RATE
        keep = torch.rand(len(batch), len(CAPTION_FIELDS), generator=generator) < 0.5
        texts = []
        for i, row in enumerate(batch.tolist()):
            fields = [f for f, k in zip(CAPTION_FIELDS, keep[i].tolist()) if k] if short[i] else CAPTION_FIELDS
            texts.append(caption(self.records[row], fields) or self.full[row])
        return texts


# --- checkpoints -------------------------------------------------------------------------------------


def _digest(values) -> str:
    return hashlib.sha1("\n".join(map(str, values)).encode()).hexdigest()[:16]


def _atomic_save(obj: dict, path: Path) -> None:
    from .store import atomic_write

    with atomic_write(path) as handle:
        torch.save(obj, handle)


def _resume(partial: Path, identity: dict, model, heads, optimizer, schedule) -> dict:
    """Restore the state saved after the last finished epoch of the same run, if there is one."""
    if not partial.is_file():
        return {"epoch": 0, "losses": []}
    try:
        state = torch.load(partial, map_location="cpu", weights_only=True)
    except Exception:  # a half-written or foreign file: start over
        return {"epoch": 0, "losses": []}
    if state.get("identity") != identity:
        return {"epoch": 0, "losses": []}
    model.load_state_dict(state["model"])
    heads.load_state_dict(state["heads"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    return {"epoch": int(state["epoch"]), "losses": list(state["losses"])}
