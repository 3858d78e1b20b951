"""One settings object for the engine, the CLI and the app.

Values come from (highest first) explicit arguments, environment variables, defaults.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA_DIR = REPO_ROOT / "data" / "demo"
ARTIFACTS_ROOT = REPO_ROOT / "data" / "artifacts"

# The fashion CLIP with the best published text->image results among open models (ViT-B-16, 512-d).
DEFAULT_MODEL = "ViT-B-16"
DEFAULT_PRETRAINED = "hf-hub:Marqo/marqo-fashionCLIP"


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
MAX_EPOCHS = 10_000


def env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ConfigError(f"{name}={value!r} is not allowed: use 1/true/yes/on or 0/false/no/off")
    return word in TRUE_WORDS


def _env_text(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else default


def _env_epochs() -> int | None:
    value = os.environ.get("LOOKBOOK_TRAIN_EPOCHS", "").strip()
    return _epochs(value, "LOOKBOOK_TRAIN_EPOCHS") if value else None


DEFAULT_BACKTEST_WEEKS = 8
MAX_BACKTEST_WEEKS = 104


def _env_backtest_weeks() -> int:
    value = os.environ.get("LOOKBOOK_BACKTEST_WEEKS", "").strip()
    return _backtest_weeks(value, "LOOKBOOK_BACKTEST_WEEKS") if value else DEFAULT_BACKTEST_WEEKS


def _backtest_weeks(value, name: str) -> int:
    try:
        weeks = int(str(value).strip())
    except ValueError:
        weeks = -1
    if not 0 <= weeks <= MAX_BACKTEST_WEEKS:
        raise ConfigError(f"{name}={value!r} is not allowed: a whole number of weeks from 0 (no backtest) "
                          f"to {MAX_BACKTEST_WEEKS}")
    return weeks


def _epochs(value, name: str) -> int:
    try:
        epochs = int(str(value).strip())
    except ValueError:
        epochs = 0
    if not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"{name}={value!r} is not allowed: a whole number of epochs from 1 to {MAX_EPOCHS:,}")
    return epochs


def default_artifacts_dir(data_dir: Path) -> Path:
    """data/artifacts/<folder name>-<8 hex of its resolved path>: readable, and two datasets that share
    a folder name (two copies called `hm`) never share or invalidate each other's artifacts."""
    key = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]
    return ARTIFACTS_ROOT / f"{Path(data_dir).name}-{key}"


@dataclass(frozen=True)
class Settings:
    """Where the data lives, where artifacts go, which model embeds the catalogue."""

    data_dir: Path = field(default_factory=lambda: env_path("LOOKBOOK_DATA") or DEMO_DATA_DIR)
    # None: data/artifacts/<data folder name>-<path hash>, so a read-only dataset folder is never written to.
    artifacts_dir: Path | None = field(default_factory=lambda: env_path("LOOKBOOK_ARTIFACTS"))
    model: str = field(default_factory=lambda: _env_text("LOOKBOOK_MODEL", DEFAULT_MODEL))
    pretrained: str = field(default_factory=lambda: _env_text("LOOKBOOK_PRETRAINED", DEFAULT_PRETRAINED))
    # Fall back to a model trained on the catalogue when the pretrained source cannot be loaded.
    fallback: bool = field(default_factory=lambda: not _env_bool("LOOKBOOK_NO_FALLBACK"))
    device: str | None = field(default_factory=lambda: _env_text("LOOKBOOK_DEVICE", None))
    # Epochs for the catalogue-trained fallback model (None: train_clip's default); tests use 1-2.
    train_epochs: int | None = field(default_factory=_env_epochs)
    # Weeks the build backtests to choose the recommendation method (0: none, the ranker ships).
    backtest_weeks: int = field(default_factory=lambda: _env_backtest_weeks())

    def __post_init__(self) -> None:
        """Every value checked here, so a bad one is one message naming the setting and what is allowed."""
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigError(f"LOOKBOOK_DATA / --data: {self.data_dir} is a file, not a dataset folder")
        if not self.data_dir.exists() and not self.is_demo:
            raise ConfigError(
                f"LOOKBOOK_DATA / --data: the dataset folder {self.data_dir} does not exist "
                f"(a folder in the H&M format, with at least articles.csv)"
            )
        if self.artifacts_dir is None:
            object.__setattr__(self, "artifacts_dir", default_artifacts_dir(self.data_dir))
        object.__setattr__(self, "artifacts_dir", Path(self.artifacts_dir).expanduser().resolve())
        if self.artifacts_dir.exists() and not self.artifacts_dir.is_dir():
            raise ConfigError(f"LOOKBOOK_ARTIFACTS / --artifacts: {self.artifacts_dir} is a file, not a folder")
        for name, value in (("LOOKBOOK_MODEL / --model", self.model), ("LOOKBOOK_PRETRAINED / --pretrained", self.pretrained)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} is empty: name an open_clip model / weights source")
        if self.device is not None and not DEVICE.match(self.device):
            raise ConfigError(f"LOOKBOOK_DEVICE={self.device!r} is not allowed: use cpu, cuda, cuda:N or mps")
        if self.train_epochs is not None:
            object.__setattr__(self, "train_epochs", _epochs(self.train_epochs, "LOOKBOOK_TRAIN_EPOCHS / --epochs"))
        object.__setattr__(self, "backtest_weeks", _backtest_weeks(self.backtest_weeks, "LOOKBOOK_BACKTEST_WEEKS / --backtest-weeks"))

    @property
    def is_demo(self) -> bool:
        return self.data_dir == DEMO_DATA_DIR.resolve()

    def environment(self) -> dict[str, str]:
        """The environment variables that make another process (a server, a worker) read these settings."""
        env = {
            "LOOKBOOK_DATA": str(self.data_dir),
            "LOOKBOOK_ARTIFACTS": str(self.artifacts_dir),
            "LOOKBOOK_MODEL": self.model,
            "LOOKBOOK_PRETRAINED": self.pretrained,
            "LOOKBOOK_NO_FALLBACK": "" if self.fallback else "1",
        }
        if self.train_epochs is not None:
            env["LOOKBOOK_TRAIN_EPOCHS"] = str(self.train_epochs)
        env["LOOKBOOK_BACKTEST_WEEKS"] = str(self.backtest_weeks)
        if self.device:
            env["LOOKBOOK_DEVICE"] = self.device
        return env

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
