"""train_clip: a from-scratch lookbook-tiny learns colour and product type from the demo catalogue's
rendered images, saves a checkpoint load_embedder rebuilds exactly, and resumes after an interruption."""
from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from recommender.embed import load_embedder
from recommender.errors import DataError
from recommender.train_clip import train_clip

EPOCHS = 16
BATCH = 32


def _split_by_product(articles, seed=0, test_share=0.25):
    rows = np.flatnonzero(articles["has_image"].to_numpy())
    codes = np.unique(articles["product_code"].to_numpy()[rows])
    test_codes = np.random.default_rng(seed).permutation(codes)[: int(test_share * len(codes))]
    held_out = np.isin(articles["product_code"].to_numpy()[rows], test_codes)
    return rows[~held_out], rows[held_out]


@pytest.fixture(scope="module")
def trained(demo_catalog, tmp_path_factory):
    train_rows, test_rows = _split_by_product(demo_catalog.articles)
    messages = []
    path = train_clip(
        demo_catalog,
        out=tmp_path_factory.mktemp("clip") / "model.pt",
        epochs=EPOCHS,
        batch_size=BATCH,
        article_rows=train_rows,
        progress=lambda fraction, message: messages.append((fraction, message)),
    )
    return path, test_rows, messages


def test_progress_is_reported_from_0_to_1(trained):
    _, _, messages = trained
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(f"epoch {EPOCHS}/{EPOCHS}" in m for _, m in messages)


def test_training_reduces_the_loss(trained):
    losses = torch.load(trained[0], weights_only=True)["trained"]["epoch_losses"]
    assert len(losses) == EPOCHS
    assert losses[-1] < 0.75 * losses[0], losses


def test_checkpoint_loads_back_exactly_whatever_the_model_name(trained):
    path = trained[0]
    embedder = load_embedder("ViT-B-16", str(path))  # the checkpoint carries its own config
    assert embedder.model_name == "lookbook-tiny" and embedder.dim == 256
    image_size = open_clip.get_model_config("lookbook-tiny")["vision_cfg"]["image_size"]
    assert list(embedder.preprocess.transforms[1].size) == image_size

    reference = open_clip.create_model("lookbook-tiny")
    reference.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    reference.eval()
    texts = ["red dress", "black trousers"]
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(reference.encode_text(embedder.tokenizer(texts)), dim=-1)
    np.testing.assert_allclose(embedder.encode_text(texts), expected.numpy(), atol=1e-5)


def test_learns_colour_and_type_of_unseen_products(trained, demo_catalog):
    """Text "<colour> <type>" ranks the held-out articles of that colour and type far above chance."""
    path, test_rows, _ = trained
    embedder = load_embedder("lookbook-tiny", str(path))
    test = demo_catalog.articles.iloc[test_rows]
    from recommender.images import load_image

    vectors = embedder.encode_images([load_image(demo_catalog.image_path(a)) for a in test["article_id"]])
    colour, ptype = test["colour_group_name"].to_numpy(), test["product_type_name"].to_numpy()
    aucs = []
    for c, p in sorted(set(zip(colour, ptype))):
        relevant = (colour == c) & (ptype == p)
        scores = vectors @ embedder.encode_text([f"{c} {p}"])[0]
        # ROC AUC: the chance that a relevant article outscores an irrelevant one (0.5 = chance).
        aucs.append((scores[relevant][:, None] > scores[~relevant][None, :]).mean())
    assert len(aucs) >= 20
    assert np.mean(aucs) > 0.85, np.mean(aucs)  # 0.5 is chance; 0.91 measured

    red_or_dress = (colour == "Red") | (ptype == "Dress")
    top = np.argsort(-(vectors @ embedder.encode_text(["red dress"])[0]))[:10]
    assert red_or_dress[top].mean() >= 2 * red_or_dress.mean()  # red things and dresses first


def test_fine_tuning_starts_from_the_pretrained_weights(trained, demo_catalog, tmp_path):
    path, test_rows, _ = trained
    scratch_losses = torch.load(path, weights_only=True)["trained"]["epoch_losses"]
    train_rows = np.setdiff1d(np.flatnonzero(demo_catalog.articles["has_image"]), test_rows)
    tuned = train_clip(demo_catalog, out=tmp_path / "tuned.pt", pretrained=str(path), epochs=1,
                       batch_size=BATCH, article_rows=train_rows)  # fmt: skip
    tuned_losses = torch.load(tuned, weights_only=True)["trained"]["epoch_losses"]
    assert tuned_losses[0] < 0.8 * scratch_losses[0]
    assert load_embedder("lookbook-tiny", str(tuned)).model_name == "lookbook-tiny"


class _Interrupted(Exception):
    pass


def test_resumes_after_an_interruption(demo_catalog, tmp_path):
    rows = np.flatnonzero(demo_catalog.articles["has_image"].to_numpy())[:96]
    options = dict(epochs=2, batch_size=32, article_rows=rows, seed=3)
    reference = train_clip(demo_catalog, out=tmp_path / "straight.pt", **options)

    def stop_in_second_epoch(fraction, message):
        if message.startswith("epoch 2/2"):
            raise _Interrupted

    out = tmp_path / "resumed.pt"
    with pytest.raises(_Interrupted):
        train_clip(demo_catalog, out=out, progress=stop_in_second_epoch, **options)
    assert not out.exists() and (tmp_path / "resumed.pt.partial").is_file()
    messages = []
    train_clip(demo_catalog, out=out, progress=lambda f, m: messages.append(m), **options)
    assert "resuming after epoch 1 of 2" in messages
    assert not (tmp_path / "resumed.pt.partial").exists()

    expected = torch.load(reference, weights_only=True)["state_dict"]
    resumed = torch.load(out, weights_only=True)["state_dict"]
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_a_catalogue_without_images_is_refused(demo_catalog):
    no_images = np.flatnonzero(~demo_catalog.articles["has_image"].to_numpy())
    with pytest.raises(DataError, match="needs at least 2 articles with images, found 0"):
        train_clip(demo_catalog, out=demo_catalog.root / "unused.pt", article_rows=no_images[:3])


def test_attribute_heads_leave_missing_labels_out():
    import pandas as pd

    from recommender.train_clip import AttributeHeads

    unknown = [None, None, None, None]
    articles = pd.DataFrame({"product_type_name": ["Dress", None, "Dress", "Skirt"], "colour_group_name": unknown,
                             "graphical_appearance_name": unknown, "index_group_name": unknown})  # fmt: skip
    heads = AttributeHeads(articles, dim=8)
    assert heads.heads["product_type_name"].out_features == 2
    exported = heads.export()  # what the checkpoint keeps for content.predict_attributes
    assert exported["product_type_name"]["classes"] == ["Dress", "Skirt"]
    assert exported["product_type_name"]["weight"].shape == (2, 8) and exported["colour_group_name"]["classes"] == []
    embeddings = torch.randn(4, 8)
    only_known = torch.nn.functional.cross_entropy(heads.heads["product_type_name"](embeddings[[0, 2, 3]]),
                                                   torch.tensor([0, 0, 1]))  # fmt: skip
    torch.testing.assert_close(heads.loss(embeddings, torch.arange(4)), only_known)
    assert heads.loss(embeddings, torch.tensor([1])).item() == 0.0  # no label known: nothing to learn
