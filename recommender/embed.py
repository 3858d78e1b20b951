"""open_clip models: loading from any source, and encoding text and images into one vector space.

A model is named by (model name, pretrained source); the source is one of
  - an open_clip pretrained tag, e.g. ("ViT-B-32", "openai")            weights from the Hugging Face hub
  - an `hf-hub:` id, e.g. "hf-hub:Marqo/marqo-fashionCLIP"            config and weights from the hub
  - a local checkpoint file (one written by `train-clip` carries its own model config, so the
    architecture is rebuilt from the file whatever model name is given)
  - "" / None: random weights (benchmarks and tests, where only the architecture matters).

Hub sources never hang without a network: the hub's host is probed with a short timeout first, and
when it cannot be reached the load runs in the hub library's offline mode, so a model already in the
local Hugging Face cache still loads and a missing one fails at once with a `ModelError` that says why.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import json
import shutil
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import TextTransformer
from PIL import Image

from .config import resolve_device
from .errors import InputError, ModelError
from .quantize import INT8, int8_copy

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
open_clip.add_model_config(MODEL_CONFIG_DIR)  # makes the repo's configs (e.g. lookbook-tiny) known by name

MAX_TEXT_CHARS = 1000
HUB_PROBE_TIMEOUT_S = 3.0
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def validate_text(text) -> str:
    """The query text, stripped; InputError when it is empty or longer than MAX_TEXT_CHARS.

    Text within the limit that is longer than the model's context (77 tokens for ViT-B-16, about
    300 characters) is cut by the tokenizer, as in CLIP itself: the start of a query carries it.
    """
    if not isinstance(text, str):
        raise InputError(f"the search text must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise InputError("the search text is empty: describe what you are looking for, e.g. 'black dress'")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"the search text is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,} "
            "(describe the item in a few words)"
        )
    return text


class Embedder:
    """An open_clip model ready to embed queries and catalogue items (L2-normalised float32 rows)."""

    def __init__(
        self, model, tokenizer, preprocess, *, model_name: str, model_cfg: dict, pretrained: str, device: str
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess  # open_clip's eval transform for this model
        self.model_name = model_name
        self.model_cfg = model_cfg  # the open_clip config it was built from (saved with fine-tuned weights)
        self.pretrained = pretrained
        self.device = device
        self.dim = int(model_cfg["embed_dim"])
        self.image_precision = _fast_precision(device)  # settable: e.g. None for float32
        self.text_precision = None

    validate_text = staticmethod(validate_text)

    @property
    def image_precision(self) -> torch.dtype | str | None:
        """What photos are encoded in: None for float32 (as the model), a torch dtype, or INT8."""
        return self._image_precision

    @image_precision.setter
    def image_precision(self, precision: torch.dtype | str | None) -> None:
        self._image_precision = precision
        self.__dict__.pop("_image_tower", None)  # made again in the new precision at next use

    @property
    def text_precision(self) -> str | None:
        """What texts are encoded in: None for float32 (as the model) or INT8 (precision.choose_query_precision)."""
        return self._text_precision

    @text_precision.setter
    def text_precision(self, precision: str | None) -> None:
        self._text_precision = precision
        self.__dict__.pop("_text_transformer", None)

    @cached_property
    def fingerprint(self) -> str:
        """Stable id of (architecture, source, weights) for artifact manifests.

        A local checkpoint is named by its file name only, so moving it keeps artifacts valid; the
        weights hash catches any change of the weights themselves.
        """
        digest = hashlib.blake2b(digest_size=12)
        for name, tensor in self.model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        source = self.pretrained or "random"
        if Path(source).suffix in CHECKPOINT_SUFFIXES:
            source = f"file:{Path(source).name}"
        return f"{self.model_name}|{source}|{digest.hexdigest()}"

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """(n, dim) float32, L2-normalised. Texts are not validated here (captions may be long)."""
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            out.append(_normalised(encode_text_tokens(self.model, tokens, self._text_transformer)))
        return np.concatenate(out)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32, L2-normalised, for decoded RGB images (see images.load_image)."""
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), batch_size):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + batch_size]])
            out.append(self.encode_image_tensors(batch))
        return np.concatenate(out)

    @torch.inference_mode()
    def encode_image_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Embeddings of an already-preprocessed batch (n, 3, H, W), e.g. from a DataLoader."""
        tower = self._image_tower
        dtype = self.image_precision if isinstance(self.image_precision, torch.dtype) else torch.float32
        return _normalised(tower(batch.to(self.device, dtype)))

    @cached_property
    def _image_tower(self) -> torch.nn.Module:
        """The vision tower for inference: a copy in `image_precision` where the device computes that
        fast (bench/bench_content.py compares them). A copy rather than autocast, which turns off
        PyTorch's fused attention and, for batches, copies the attention weights once per token.
        Made at first use: Embedder is for inference."""
        if self.image_precision is None:
            return self.model.visual
        if self.image_precision == INT8:
            return int8_copy(self.model.visual)
        return copy.deepcopy(self.model.visual).to(self.image_precision).eval()

    @cached_property
    def _text_transformer(self) -> torch.nn.Module | None:
        """The text tower's transformer for inference: None for the model's own, or an int8 copy."""
        tower = _text_parts(self.model)
        if self.text_precision != INT8 or tower is None:
            return None
        return int8_copy(tower.transformer)


def _fast_precision(device: str) -> torch.dtype | None:
    """The half-precision type `device` computes fast (None: stay in float32): float16 on CUDA,
    bfloat16 on CPUs with native bf16 instructions (oneDNN), none on other CPUs, where emulated
    bf16 is slower than float32."""
    if torch.device(device).type == "cuda":
        return torch.float16
    try:  # no public API for this; a torch without it just keeps float32
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    except (AttributeError, RuntimeError):
        return None


def _normalised(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()


# --- trimmed text encoding ---------------------------------------------------------------------------
# CLIP's text transformer is causal and pools one position (the end-of-text token, found by argmax), so
# the positions after the longest text in a batch cannot change the result. Running the transformer
# on the trimmed sequence gives the same features for a fraction of the work (a query is ~5 of 77
# tokens). tests/test_embed.py proves the equality against open_clip's own encode_text.


def encode_text_tokens(model, tokens: torch.Tensor, transformer: torch.nn.Module | None = None) -> torch.Tensor:
    """What `model.encode_text(tokens)` returns (unnormalised), computed on the tokens trimmed after
    the batch's last end-of-text token when the text tower allows it. Used for training too.
    `transformer`: a stand-in for the tower's own (an int8 copy), used only where trimming is."""
    tower = _text_parts(model)
    return model.encode_text(tokens) if tower is None else _encode_trimmed(tower, tokens, transformer)


def _text_parts(model):
    """The module holding the causal text tower's parts (the CLIP itself, or its TextTransformer),
    or None when the tower is of a kind where trimming could change the result."""
    tower = model.text if isinstance(getattr(model, "text", None), TextTransformer) else model
    if not all(
        hasattr(tower, part)
        for part in ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    ):
        return None
    pool_type = getattr(tower, "pool_type", getattr(tower, "text_pool_type", None))
    if tower.attn_mask is None or getattr(tower, "cls_emb", None) is not None or pool_type != "argmax":
        return None
    return tower


def _encode_trimmed(tower, tokens: torch.Tensor, transformer: torch.nn.Module | None = None) -> torch.Tensor:
    """open_clip's CLIP.encode_text (argmax pooling) on tokens cut after the last end-of-text token."""
    eot = tokens.argmax(dim=-1)  # the end-of-text token has the highest id, as open_clip pools it
    n = int(eot.max()) + 1
    transformer = tower.transformer if transformer is None else transformer
    cast_dtype = transformer.get_cast_dtype()
    x = tower.token_embedding(tokens[:, :n]).to(cast_dtype)
    x = x + tower.positional_embedding[:n].to(cast_dtype)
    x = transformer(x, attn_mask=tower.attn_mask[:n, :n])
    x = tower.ln_final(x)[torch.arange(x.shape[0], device=x.device), eot]
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


# --- loading -----------------------------------------------------------------------------------------


def load_embedder(model_name: str, pretrained: str | None, device: str | None = None) -> Embedder:
    """Load `model_name` with weights from `pretrained` (see the module doc); ModelError if it fails."""
    device = resolve_device(device)
    pretrained = (pretrained or "").strip()
    if pretrained.startswith(open_clip.factory.HF_HUB_PREFIX):
        parts = _load_from_hub(pretrained, model_name, pretrained, None, device)
    elif _looks_like_file(pretrained):
        parts = _load_from_file(model_name, Path(pretrained), device)
    else:
        _check_known_architecture(model_name)
        if pretrained and not open_clip.get_pretrained_cfg(model_name, pretrained):
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            raise ModelError(
                f"'{pretrained}' is neither a checkpoint file nor a pretrained tag of {model_name} "
                f"(its tags: {tags}; or use an hf-hub: id)"
            )
        if pretrained:
            label = f"{model_name} pretrained '{pretrained}'"
            parts = _load_from_hub(label, model_name, model_name, pretrained, device)
        else:
            return random_embedder(model_name, device=device)
    return Embedder(**parts, pretrained=pretrained, device=device)


def random_embedder(model_name: str, seed: int = 0, device: str | None = None) -> Embedder:
    """`model_name` with random weights drawn from `seed` (training from scratch, benchmarks)."""
    _check_known_architecture(model_name)
    device = resolve_device(device)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        parts = _create(model_name, model_name, None, device)
    return Embedder(**parts, pretrained="", device=device)


def _create(
    model_name: str, source: str, weights: str | None, device: str, preprocess_cfg: dict | None = None
) -> dict:
    """Embedder's parts from open_clip: `source` is a registered config name or an hf-hub: id,
    `weights` a tag or file; `preprocess_cfg` restores the preprocessing saved with a checkpoint."""
    cfg = preprocess_cfg or {}
    model, _, preprocess = open_clip.create_model_and_transforms(
        source,
        pretrained=weights,
        device=device,
        image_mean=cfg.get("mean"),
        image_std=cfg.get("std"),
        image_interpolation=cfg.get("interpolation"),
        image_resize_mode=cfg.get("resize_mode"),
    )
    return {
        "model": model,
        "preprocess": preprocess,
        "tokenizer": open_clip.get_tokenizer(source),
        "model_name": model_name,
        "model_cfg": open_clip.get_model_config(source),
    }


def _check_known_architecture(model_name: str) -> None:
    if open_clip.get_model_config(model_name) is None:
        raise ModelError(
            f"unknown model architecture '{model_name}' (known: lookbook-tiny, ViT-B-16, ViT-B-32, ... "
            f"{len(open_clip.list_models())} in all; see open_clip.list_models())"
        )


def _looks_like_file(source: str) -> bool:
    return bool(source) and (
        Path(source).suffix in CHECKPOINT_SUFFIXES or "/" in source or "\\" in source or Path(source).exists()
    )


# --- hub sources ---


def _hub_unreachable_reason(timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be reached now, or None when it answers a TCP connect.

    The probe runs in a thread so a hanging DNS lookup is bounded too.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    target = urllib.parse.urlsplit(proxy if "://" in (proxy or "") else f"http://{proxy}") if proxy else endpoint
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    error: list[OSError] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            error.append(exc)

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    if probe.is_alive():
        return f"{host} did not answer within {timeout:.0f} s"
    if error:
        return f"{host} is unreachable ({error[0]})"
    return None


@contextlib.contextmanager
def _hub_offline(offline: bool):
    """Run the hub library in offline mode: cached files load, missing ones fail at once (instead of
    ~25 s of connection retries). Its documented switch is the HF_HUB_OFFLINE variable, read once
    at import, so the constant it sets is what is flipped here."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = before or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _load_from_hub(label: str, model_name: str, source: str, tag: str | None, device: str) -> dict:
    """`source`: an hf-hub: id, or a model name with a pretrained `tag`."""
    from huggingface_hub import constants

    unreachable = _hub_unreachable_reason()
    try:
        with _hub_offline(unreachable is not None):
            return _create(model_name, source, tag, device)
    except Exception as exc:  # open_clip wraps every download problem in RuntimeError/FileNotFoundError
        if unreachable:
            raise ModelError(
                f"cannot load {label}: {unreachable} and the model is not in the local Hugging Face "
                f"cache ({constants.HF_HUB_CACHE}). Download it once with a network connection, or use "
                "a local checkpoint (--pretrained FILE, e.g. one made by `python -m recommender train-clip`)"
            ) from None
        raise ModelError(f"cannot load {label}: {_first_line(exc)}") from None


# --- local checkpoints ---


def _load_from_file(model_name: str, path: Path, device: str) -> dict:
    """Embedder's parts from a checkpoint file.

    A checkpoint written by train_clip carries its model config and preprocessing, which are used
    whatever `model_name` says; any other open_clip checkpoint is loaded into `model_name`.
    """
    if not path.is_file():
        raise ModelError(f"checkpoint file {path} does not exist")
    header = _read_checkpoint_header(path)
    preprocess_cfg = None
    if "model_cfg" in header:
        model_name = register_model_config(header.get("model_name", model_name), header["model_cfg"])
        preprocess_cfg = header.get("preprocess_cfg")
    else:
        _check_known_architecture(model_name)
    try:
        return _create(model_name, model_name, str(path), device, preprocess_cfg)
    except (RuntimeError, AssertionError, KeyError, ValueError) as exc:
        # The file was read as a checkpoint, so what fails is fitting its tensors into the model:
        # torch's "Error(s) in loading state_dict", open_clip's asserts on positional embeddings.
        raise ModelError(
            f"checkpoint {path} holds weights of another architecture than {model_name}: "
            f"{_first_line(exc)} (pass the model name it was trained with)"
        ) from None


def _read_checkpoint_header(path: Path) -> dict:
    """The checkpoint's small entries (model name and config when it has them), without its weights."""
    if path.suffix == ".safetensors":
        return {}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle, zip and format errors all mean the same to the user
        raise ModelError(f"{path} is not a readable PyTorch checkpoint: {_first_line(exc)}") from None
    if not isinstance(checkpoint, dict):
        return {}
    return {k: v for k, v in checkpoint.items() if k in ("model_name", "model_cfg", "preprocess_cfg")}


def register_model_config(model_name: str, model_cfg: dict) -> str:
    """Make `model_cfg` known to open_clip; the name it is known by (model_name, or
    model_name-<hash> when that name already stands for a different config)."""
    if open_clip.get_model_config(model_name) == model_cfg:
        return model_name
    text = json.dumps(model_cfg, sort_keys=True)
    name = model_name
    if open_clip.get_model_config(model_name) is not None:
        name = f"{model_name}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    from .store import atomic_write

    path = _private_config_dir() / f"{name}.json"
    with atomic_write(path, "w") as handle:  # a concurrent reader never sees half a file
        handle.write(text)
    open_clip.add_model_config(path)
    return name


_CONFIG_DIR: Path | None = None


def _private_config_dir() -> Path:
    """A folder of this process's own (mode 0700, unpredictable name), not a shared path in /tmp
    that another user could create first or fill with their own configs."""
    global _CONFIG_DIR
    if _CONFIG_DIR is None or not _CONFIG_DIR.is_dir():
        _CONFIG_DIR = Path(tempfile.mkdtemp(prefix="lookbook-model-configs-"))
        atexit.register(shutil.rmtree, _CONFIG_DIR, ignore_errors=True)
    return _CONFIG_DIR


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
