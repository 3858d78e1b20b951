"""What a photo shows: its product type, colour, pattern and index group, each with a probability.

From the attribute heads trained with a catalogue model (train_clip.AttributeHeads) where it has them,
zero-shot from the catalogue's own values otherwise, mixed with the labels of the most alike catalogue
photos; the photo and its mirror image are averaged (training flips photos, so which way a garment faces
says nothing about it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .images import pictures
from .runtime import built_once
from .vectors import normalise

# Zero-shot attributes: the catalogue's own values of each column, each embedded as the mean of its
# prompts (CLIP's prompt ensembling): the bare value, as in the captions a catalogue-trained model
# learnt from, and a sentence of the kind pretrained CLIP models saw.
ATTRIBUTE_PROMPTS = {
    "product_type_name": ("{}", "a photo of a {}"),
    "colour_group_name": ("{}", "a photo of {} clothing"),
    "graphical_appearance_name": ("{}", "a photo of a {} garment"),
    "index_group_name": ("{}", "a photo of {} fashion"),
}
ATTRIBUTE_TOP = 3
ATTRIBUTE_NEIGHBOURS = 20  # the most alike catalogue photos whose labels vote on a photo's attributes
NEIGHBOUR_TEMPERATURE = 20.0  # softmax of their cosines: the nearest count most
NEIGHBOUR_SHARE = 0.5  # of an attribute's probability from those votes (bench/photo_attributes.py)
UNLABELLED = {"Unknown", "undefined", ""}  # H&M placeholders, not something to predict


class PhotoAttributes:
    """Attribute predictions for photos, over one catalogue, model and content index."""

    def __init__(self, catalog, embedder, index):
        self.catalog = catalog
        self.embedder = embedder
        self.index = index  # content.ContentIndex: the alike photos' lookup
        self._by_image = index.indexed_by == "image"

    def predict(self, image, neighbour_share: float = NEIGHBOUR_SHARE) -> dict[str, list[tuple[str, float]]]:
        """The top values of each attribute for a photo, with probabilities: from the attribute heads
        trained with the model (train_clip.AttributeHeads) where it has them, zero-shot otherwise, mixed
        with the labels of the most alike catalogue photos (`neighbour_share` of the probability); the photo
        and its mirror image are averaged."""
        picture = pictures([image])[0]
        views = [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]  # training flips photos too
        heads = self.models
        # Trained heads read the unnormalised embedding, as in training; one pass serves the rest too.
        raw = self._raw_image_embeddings(views) if any(bias is not None for *_, bias in heads.values()) else None
        vectors = self.embedder.encode_images(views) if raw is None else normalise(raw)
        neighbours = self._photo_neighbours(normalise(vectors.mean(axis=0))) if neighbour_share > 0 else None
        predictions = {}
        for column, (values, weights, bias) in heads.items():
            if bias is None:  # zero-shot: prompts' text vectors at CLIP's trained temperature
                logits = vectors @ weights.T
            else:
                logits = raw @ weights.T + bias
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = (probabilities / probabilities.sum(axis=1, keepdims=True)).mean(axis=0)
            if neighbours is not None:
                votes = self._neighbour_votes(column, values, *neighbours)
                if votes.sum() > 0:
                    probabilities = (1 - neighbour_share) * probabilities + neighbour_share * votes
            top = np.argsort(-probabilities)[:ATTRIBUTE_TOP]
            predictions[column] = [(values[i], float(probabilities[i])) for i in top]
        return predictions

    def _photo_neighbours(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The ATTRIBUTE_NEIGHBOURS most alike photographed articles and their vote weights (a softmax
        of their cosines at NEIGHBOUR_TEMPERATURE), or None when the catalogue has no photos."""
        if not self._by_image.any():
            return None
        rows, scores = self.index.search(vector, ATTRIBUTE_NEIGHBOURS, self._by_image)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep], scores[0][keep]
        if not len(rows):
            return None
        weights = np.exp(NEIGHBOUR_TEMPERATURE * (scores - scores.max()))
        return rows, weights / weights.sum()

    def _neighbour_votes(self, column: str, values: list[str], rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Over `values`: the weighted share of the neighbours labelled with each (unknown labels drop out)."""
        position = {value: i for i, value in enumerate(values)}
        votes = np.zeros(len(values))
        for label, weight in zip(self.catalog.articles[column].to_numpy()[rows].astype(str), weights):
            if label in position:
                votes[position[label]] += weight
        return votes

    def _raw_image_embeddings(self, pictures: list) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pixels = torch.stack([self.embedder.preprocess(p) for p in pictures]).to(self.embedder.device)
            return self.embedder.model.encode_image(pixels).float().cpu().numpy()

    @built_once
    def models(self) -> dict[str, tuple[list[str], np.ndarray, np.ndarray | None]]:
        """{column: (values, weights, bias or None for zero-shot)}, made once (concurrent first photos wait
        for one thread to make them)."""
        models = {}
        trained = trained_heads(self.embedder)
        scale = float(self.embedder.model.logit_scale.detach().exp())  # CLIP's trained temperature
        for column, templates in ATTRIBUTE_PROMPTS.items():
            if column in trained:
                models[column] = trained[column]
                continue
            values = sorted(set(self.catalog.articles[column].astype(str)) - UNLABELLED)
            prompts = [self.embedder.encode_text([t.format(v.lower()) for v in values]) for t in templates]
            models[column] = (values, scale * normalise(np.mean(prompts, axis=0)), None)
        return models


def trained_heads(embedder) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """The attribute heads saved in the model's checkpoint by train_clip (none for pretrained models),
    without their placeholder classes ("Unknown")."""
    import torch

    source = Path(embedder.pretrained or "")
    if source.suffix not in (".pt", ".pth") or not source.is_file():
        return {}
    try:
        heads = torch.load(source, map_location="cpu", weights_only=True, mmap=True).get("attribute_heads") or {}
    except Exception:  # an unreadable checkpoint cannot have loaded as the model: nothing to add
        return {}
    out = {}
    for column, head in heads.items():
        keep = [i for i, value in enumerate(head["classes"]) if value not in UNLABELLED and value != "nan"]
        if len(keep) >= 2:
            out[column] = ([head["classes"][i] for i in keep], head["weight"].float().numpy()[keep],
                           head["bias"].float().numpy()[keep])  # fmt: skip
    return out
