"""embed.py: loading from every kind of source (fast, clear failures offline), and exact trimmed text encoding."""
from __future__ import annotations

import json
import socket
import time

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from recommender.embed import MAX_TEXT_CHARS, load_embedder, random_embedder
from recommender.errors import InputError, ModelError

TEXTS = [
    "black dress",
    "a",
    "",
    "Dark Blue Trousers, Solid, Slim fit, Ladieswear. Trousers in woven fabric with a zip fly.",
    "long " * 100,  # beyond every context: cut by the tokenizer, end-of-text token kept
]


@pytest.fixture(scope="module")
def tiny():
    return random_embedder("lookbook-tiny", seed=1)


@pytest.fixture
def hub_unreachable(monkeypatch, tmp_path):
    """The hub at a closed port on this machine (connection refused), and an empty local cache."""
    from huggingface_hub import constants

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    return tmp_path / "hub"


# --- trimmed text encoding ---


def _untrimmed(embedder, texts):
    with torch.inference_mode():
        return F.normalize(embedder.model.encode_text(embedder.tokenizer(texts)), dim=-1).numpy()


@pytest.mark.parametrize("model_name", ["lookbook-tiny", "ViT-B-16"])
def test_trimmed_text_encoding_equals_open_clip(model_name):
    embedder = random_embedder(model_name)
    lengths = []
    hook = embedder.model.transformer.register_forward_pre_hook(lambda m, args, kw: lengths.append(args[0].shape[1]),
                                                                with_kwargs=True)  # fmt: skip
    trimmed = embedder.encode_text(TEXTS[:2])  # short texts only: the transformer sees a short sequence
    hook.remove()
    assert lengths == [4]  # start, "black", "dress", end -- not the full context
    np.testing.assert_allclose(trimmed, _untrimmed(embedder, TEXTS[:2]), atol=1e-4, rtol=0)
    everything = embedder.encode_text(TEXTS, batch_size=2)
    assert np.abs(everything - _untrimmed(embedder, TEXTS)).max() <= 1e-4


def test_embeddings_are_normalised_float32(tiny):
    vectors = tiny.encode_text(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), tiny.dim) == (5, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert tiny.encode_text([]).shape == (0, 256)
    from PIL import Image

    images = tiny.encode_images([Image.new("RGB", (171, 256), c) for c in ("red", "navy")])
    assert images.shape == (2, 256) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    batch = torch.stack([tiny.preprocess(Image.new("RGB", (171, 256), "red"))])
    np.testing.assert_allclose(tiny.encode_image_tensors(batch)[0], images[0], atol=1e-5)


def test_images_in_half_precision_match_float32(tiny):
    """Photos can be encoded by a bfloat16 copy of the vision tower (the default on CPUs with native
    bf16); the model itself stays float32 for training, and the vectors are the float32 ones up to
    rounding."""
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (256, 171, 3), dtype=np.uint8)) for _ in range(4)]
    images += [Image.new("RGB", (171, 256), c) for c in ("red", "navy")]
    assert tiny.image_precision in (None, torch.bfloat16, torch.float16)
    half = load_embedder("lookbook-tiny", None)
    half.image_precision = torch.bfloat16
    vectors = half.encode_images(images)
    assert next(half._image_tower.parameters()).dtype == torch.bfloat16
    assert next(half.model.parameters()).dtype == torch.float32
    half.image_precision = None  # back to the model itself
    exact = half.encode_images(images)
    assert half._image_tower is half.model.visual
    assert (vectors * exact).sum(1).min() > 0.999
    assert np.abs(vectors - exact).max() > 0  # it really ran in another precision


def test_linear_self_attention_equals_open_clips_attention():
    """quantize.int8_copy first swaps nn.MultiheadAttention for nn.Linear layers that quantization
    reaches; in float32 the swap must not change a single output (causal text mask included)."""
    from open_clip.transformer import Transformer

    from recommender.quantize import LinearSelfAttention, _with_linear_attention

    torch.manual_seed(0)
    transformer = Transformer(width=64, layers=2, heads=4).eval()
    x = torch.randn(3, 7, 64)
    causal = torch.full((7, 7), float("-inf")).triu(1)
    with torch.no_grad():
        before = transformer(x, attn_mask=causal), transformer(x)
        _with_linear_attention(transformer)
        after = transformer(x, attn_mask=causal), transformer(x)
    assert all(isinstance(block.attn, LinearSelfAttention) for block in transformer.resblocks)
    for expected, got in zip(before, after):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_int8_towers_agree_with_float32_and_leave_the_model_alone():
    from open_clip.transformer import VisionTransformer
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from recommender.quantize import INT8, int8_copy

    embedder = load_embedder("lookbook-tiny", None)
    exact = embedder.encode_text(TEXTS)
    embedder.text_precision = INT8
    quantized = embedder.encode_text(TEXTS)
    assert any(isinstance(m, Int8Linear) for m in embedder._text_transformer.modules())
    assert not any(isinstance(m, Int8Linear) for m in embedder.model.modules())  # the model stays float32
    assert (quantized * exact).sum(1).min() > 0.99 and np.abs(quantized - exact).max() > 0
    embedder.text_precision = None
    np.testing.assert_array_equal(embedder.encode_text(TEXTS), exact)

    torch.manual_seed(0)  # a small ViT: its attention and MLP matrices all become int8
    vit = VisionTransformer(image_size=32, patch_size=8, width=64, layers=2, heads=4, mlp_ratio=4.0, output_dim=32).eval()
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = torch.nn.functional.normalize(vit(pixels), dim=-1), torch.nn.functional.normalize(int8_copy(vit)(pixels), dim=-1)
    assert sum(isinstance(m, Int8Linear) for m in int8_copy(vit).modules()) == 2 * 4  # qkv, out, fc, proj per block
    assert (a * b).sum(1).min() > 0.99


def test_validate_text(tiny):
    assert tiny.validate_text("  black dress \n") == "black dress"
    for empty in ("", "   \n\t"):
        with pytest.raises(InputError, match="search text is empty"):
            tiny.validate_text(empty)
    with pytest.raises(InputError, match=f"10,000 characters long; the limit is {MAX_TEXT_CHARS:,}"):
        tiny.validate_text("x" * 10_000)
    with pytest.raises(InputError, match="must be a string"):
        tiny.validate_text(None)


# --- hub sources ---


@pytest.mark.parametrize(
    "model_name, source, label",
    [
        ("ViT-B-16", "hf-hub:Marqo/marqo-fashionCLIP", "hf-hub:Marqo/marqo-fashionCLIP"),
        ("ViT-B-32", "openai", "ViT-B-32 pretrained 'openai'"),
    ],
)
def test_unreachable_hub_fails_fast_with_the_reason(hub_unreachable, model_name, source, label):
    started = time.perf_counter()
    with pytest.raises(ModelError) as failure:
        load_embedder(model_name, source)
    assert time.perf_counter() - started < 10
    message = str(failure.value)
    assert message.startswith(f"cannot load {label}: 127.0.0.1 is unreachable")
    assert "not in the local Hugging Face cache" in message and "--pretrained FILE" in message


def test_hf_hub_offline_variable_is_honoured(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set and the model is not in the local"):
        load_embedder("ViT-B-16", "hf-hub:Marqo/marqo-fashionCLIP")
    assert time.perf_counter() - started < 10


def test_model_in_the_local_hub_cache_loads_offline(hub_unreachable, tiny):
    # The layout huggingface_hub keeps: models--org--name/{refs/main, snapshots/<commit>/<files>}.
    commit = "0" * 40
    repo = hub_unreachable / "models--lookbook--tiny-test"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    config = {"model_cfg": open_clip.get_model_config("lookbook-tiny"), "preprocess_cfg": {}}
    (snapshot / "open_clip_config.json").write_text(json.dumps(config))
    torch.save(tiny.model.state_dict(), snapshot / "open_clip_pytorch_model.bin")

    started = time.perf_counter()
    cached = load_embedder("lookbook-tiny", "hf-hub:lookbook/tiny-test")
    assert time.perf_counter() - started < 10
    np.testing.assert_allclose(cached.encode_text(TEXTS), tiny.encode_text(TEXTS), atol=1e-6)


# --- tags, names and checkpoint files ---


def test_unknown_tag_lists_the_known_ones():
    expected = r"'nope' is neither a checkpoint file nor a pretrained tag of ViT-B-32 \(its tags: openai"
    with pytest.raises(ModelError, match=expected):
        load_embedder("ViT-B-32", "nope")


def test_unknown_architecture():
    with pytest.raises(ModelError, match="unknown model architecture 'ViT-Z-99'"):
        load_embedder("ViT-Z-99", "")


def test_missing_and_unreadable_checkpoints(tmp_path):
    with pytest.raises(ModelError, match="checkpoint file .*gone.pt does not exist"):
        load_embedder("lookbook-tiny", str(tmp_path / "gone.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"these are not weights")
    with pytest.raises(ModelError, match="junk.pt is not a readable PyTorch checkpoint"):
        load_embedder("lookbook-tiny", str(junk))


def test_plain_open_clip_checkpoint_loads_into_the_named_architecture(tmp_path, tiny):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": tiny.model.state_dict()}, path)
    loaded = load_embedder("lookbook-tiny", str(path))
    np.testing.assert_allclose(loaded.encode_text(TEXTS), tiny.encode_text(TEXTS), atol=1e-6)
    assert loaded.fingerprint == load_embedder("lookbook-tiny", str(path)).fingerprint
    assert loaded.fingerprint.startswith("lookbook-tiny|file:plain.pt|")
    assert loaded.fingerprint != random_embedder("lookbook-tiny", seed=2).fingerprint


def test_checkpoint_of_another_architecture(tmp_path, tiny):
    path = tmp_path / "tiny-weights.pt"
    torch.save(tiny.model.state_dict(), path)
    with pytest.raises(ModelError, match=r"tiny-weights.pt holds weights of another architecture than ViT-B-32"):
        load_embedder("ViT-B-32", str(path))
