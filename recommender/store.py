"""Artifact directory: versioned folders, a manifest per artifact as the atomic commit point.

Layout of ``root``::

    <name>.json          manifest: {"name", "folder", "meta", "built_at", "versions"}; written last (temp + rename)
    <name>-<token>/      the artifact's files, complete before the manifest points at them
    .tmp-<name>-<token>/ an unfinished write; never read, removed by the next write of that name
    scratch/<name>/      resumable partial work (e.g. embedding chunks)

A build killed at any point leaves the previous manifest, and so the previous good folder, in place.
Loading compares the manifest's ``meta`` with what the caller expects (model fingerprint, data
fingerprint, parameters) and refuses a mismatch with a message that says what differs.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ArtifactError

REBUILD_HINT = "python -m recommender build"


@dataclass(frozen=True)
class Artifact:
    name: str
    path: Path
    meta: dict


def _versions() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in ("open_clip_torch", "torch", "faiss-cpu", "implicit", "hnswlib", "numpy", "pandas"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return versions


def _canonical(value: Any) -> Any:
    """JSON round-trip so tuples/Paths compare equal to what a manifest holds."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _write_json_atomic(path: Path, payload: Mapping) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=str, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ArtifactStore:
    def __init__(self, root: str | Path, rebuild_hint: str = REBUILD_HINT):
        self.root = Path(root)
        self.rebuild_hint = rebuild_hint

    def _manifest_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def manifest(self, name: str) -> dict | None:
        path = self._manifest_path(name)
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(
                f"artifact '{name}' has an unreadable manifest {path} ({exc}); run `{self.rebuild_hint}`"
            ) from exc
        if not (self.root / manifest.get("folder", "")).is_dir():
            return None
        return manifest

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if self.manifest(p.stem))

    @contextmanager
    def write(self, name: str, meta: Mapping[str, Any]) -> Iterator[Path]:
        """Yield an empty folder; on a clean exit it becomes the artifact ``name`` with ``meta``.

        On an exception (or a kill) the previous version stays the current one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        token = uuid.uuid4().hex[:12]
        tmp = self.root / f".tmp-{name}-{token}"
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        folder = f"{name}-{token}"
        os.replace(tmp, self.root / folder)
        previous = self.manifest(name)
        _write_json_atomic(
            self._manifest_path(name),
            {
                "name": name,
                "folder": folder,
                "meta": _canonical(dict(meta)),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": _versions(),
            },
        )
        # Only now is the old version unreferenced.
        if previous and previous["folder"] != folder:
            shutil.rmtree(self.root / previous["folder"], ignore_errors=True)
        for orphan in self.root.glob(f"{name}-*"):
            if orphan.is_dir() and orphan.name != folder:
                shutil.rmtree(orphan, ignore_errors=True)

    def differences(self, name: str, expect: Mapping[str, Any]) -> list[str]:
        """What differs between the stored artifact and ``expect`` (empty: it is current)."""
        manifest = self.manifest(name)
        if manifest is None:
            return [f"artifact '{name}' has not been built in {self.root}"]
        stored = manifest["meta"]
        diffs = []
        for key, wanted in _canonical(dict(expect)).items():
            have = stored.get(key)
            if have != wanted:
                diffs.append(f"{key}: built with {_short(have)}, now {_short(wanted)}")
        return diffs

    def is_current(self, name: str, expect: Mapping[str, Any]) -> bool:
        return not self.differences(name, expect)

    def load(self, name: str, expect: Mapping[str, Any] | None = None) -> Artifact:
        """The current artifact, refused with ArtifactError if missing or built from other inputs."""
        diffs = self.differences(name, expect or {})
        if diffs:
            raise ArtifactError(
                f"artifact '{name}' in {self.root} does not match: {'; '.join(diffs)}. "
                f"Rebuild with `{self.rebuild_hint}`."
            )
        manifest = self.manifest(name)
        return Artifact(name, self.root / manifest["folder"], manifest["meta"])

    def scratch(self, name: str) -> Path:
        path = self.root / "scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def clear_scratch(self, name: str) -> None:
        shutil.rmtree(self.root / "scratch" / name, ignore_errors=True)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
