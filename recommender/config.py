"""One settings object for the engine, the CLI and the app.

Values come from (highest first) explicit arguments, environment variables, defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA_DIR = REPO_ROOT / "data" / "demo"
ARTIFACTS_ROOT = REPO_ROOT / "data" / "artifacts"

# The fashion CLIP with the best published text->image results among open models (ViT-B-16, 512-d).
DEFAULT_MODEL = "ViT-B-16"
DEFAULT_PRETRAINED = "hf-hub:Marqo/marqo-fashionCLIP"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Where the data lives, where artifacts go, which model embeds the catalogue."""

    data_dir: Path = field(default_factory=lambda: _env_path("LOOKBOOK_DATA") or DEMO_DATA_DIR)
    # None: data/artifacts/<data folder name>, so a read-only dataset folder is never written to.
    artifacts_dir: Path | None = field(default_factory=lambda: _env_path("LOOKBOOK_ARTIFACTS"))
    model: str = field(default_factory=lambda: os.environ.get("LOOKBOOK_MODEL", DEFAULT_MODEL))
    pretrained: str = field(
        default_factory=lambda: os.environ.get("LOOKBOOK_PRETRAINED", DEFAULT_PRETRAINED)
    )
    # Fall back to a model trained on the catalogue when the pretrained source cannot be loaded.
    fallback: bool = field(default_factory=lambda: not _env_bool("LOOKBOOK_NO_FALLBACK"))
    device: str | None = field(default_factory=lambda: os.environ.get("LOOKBOOK_DEVICE") or None)
    # Epochs for the catalogue-trained fallback model (None: train_clip's default); tests use 1-2.
    train_epochs: int | None = field(
        default_factory=lambda: int(os.environ["LOOKBOOK_TRAIN_EPOCHS"]) if os.environ.get("LOOKBOOK_TRAIN_EPOCHS") else None
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if self.artifacts_dir is None:
            object.__setattr__(self, "artifacts_dir", ARTIFACTS_ROOT / self.data_dir.name)
        object.__setattr__(self, "artifacts_dir", Path(self.artifacts_dir).expanduser().resolve())

    @property
    def is_demo(self) -> bool:
        return self.data_dir == DEMO_DATA_DIR.resolve()

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed; None values are ignored (convenient for CLI flags)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "data_dir" in changes and "artifacts_dir" not in changes and not os.environ.get(
            "LOOKBOOK_ARTIFACTS"
        ):
            changes["artifacts_dir"] = None
        return replace(self, **changes)


def resolve_device(requested: str | None = None) -> str:
    """CUDA when present, else CPU (an explicit request wins)."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
