"""Artifact directory: versioned folders, a manifest per artifact as the atomic commit point, a build lock.

Layout of ``root``::

    <name>.json                 manifest: {"name", "folder", "meta", "files", "built_at", "versions"}; written last
    <name>-<time>-<owner>-<token>/  a version: the artifact's files, complete (and fsynced) before the
                                manifest points at them; <time> (UTC, to the microsecond) sorts versions by age
    .tmp-<name>-<time>-<owner>-<token>/  an unfinished write; never read
    .readers/<folder>--<owner>  a reader lease: a serving engine holds that version
    scratch/<name>/             resumable partial work (e.g. embedding chunks), used under the build lock
    .build.lock, .build.owner   the cross-process build lock and who holds it (pid, host, since when)

``<owner>`` is ``<pid>@<host>`` of the writing process: a folder is removed as abandoned only when its
owner is a dead process on this host, so two processes (a CLI build beside the app, two app replicas)
never delete each other's work. A build killed at any point leaves the previous manifest, and so the
previous good folder, in place. A newer version replaces the older ones only once no live engine holds
a lease on them (a serving process leases what it loads, releases it when it switches to a newer build
or exits; a crashed reader's lease dies with its process): a long-lived engine never loses files under it.
Version folders of earlier releases (``<name>-<owner>-<token>``, without the time) are read as before.

The manifest records every file's size and blake2b checksum. Loading checks the sizes (a stat per
file) and compares the manifest's ``meta`` with what the caller expects (model fingerprint, data
fingerprint, parameters); `repair` (run by ``build``) also checks the checksums and drops damaged
artifacts so the build makes them again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

from .errors import ArtifactError
from .owners import (
    IN_FLIGHT,
    LEGACY,
    OWNED,
    OWNER_IN_NAME,
    BuildLock,
    ReaderLeases,
    is_abandoned,
    new_token,
    written_at,
)

REBUILD_HINT = "python -m recommender build"
@dataclass(frozen=True)
class Artifact:
    name: str
    path: Path
    meta: dict


# --- one atomic writer for every file the engine writes outside an artifact folder ------------------


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on a clean exit it is fsynced and renamed over ``path``.

    Readers see the old file or the new one, never half of one; on an exception the temp is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    tmp = path.with_name(f".{path.name}.{token}.tmp")
    IN_FLIGHT.add(token)
    try:
        with open(tmp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        IN_FLIGHT.discard(token)


def _write_json_atomic(path: Path, payload: Mapping) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=2, default=str, sort_keys=True)


def file_checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_records(folder: Path) -> dict[str, dict]:
    """Size and checksum of every file under ``folder``, each fsynced (the folder is about to be committed)."""
    records = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        records[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "blake2b": file_checksum(path)}
    return records


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


class ArtifactStore:
    def __init__(self, root: str | Path, rebuild_hint: str = REBUILD_HINT, *, reader: bool = False):
        self.root = Path(root)
        self.rebuild_hint = rebuild_hint
        self.holds_lock = False  # True inside `lock()`: scratch folders are then this process's alone
        self.reader = reader  # a serving engine's store: every version it loads is leased until `release`
        self.leases = ReaderLeases(self.root)

    def _manifest_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def manifest(self, name: str) -> dict | None:
        path = self._manifest_path(name)
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text())
            folder = manifest["folder"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            detail = "empty file" if path.exists() and path.stat().st_size == 0 else exc
            raise ArtifactError(
                f"artifact '{name}' has an unreadable manifest {path.name} in {self.root} ({detail}); "
                f"run `{self.rebuild_hint}`"
            ) from None
        if not (self.root / folder).is_dir():
            return None
        return manifest

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if self.manifest(p.stem))

    # --- writing --------------------------------------------------------------------------------

    @contextmanager
    def write(self, name: str, meta: Mapping[str, Any]) -> Iterator[Path]:
        """Yield an empty folder; on a clean exit it becomes the artifact ``name`` with ``meta``.

        On an exception (or a kill) the previous version stays the current one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_abandoned()
        token = new_token()
        tmp = self.root / f".tmp-{name}-{token}"
        tmp.mkdir()
        IN_FLIGHT.add(token)
        try:
            yield tmp
            files = _file_records(tmp)
            self._commit(name, token, tmp, meta, files)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            IN_FLIGHT.discard(token)

    def _commit(self, name: str, token: str, tmp: Path, meta: Mapping[str, Any], files: dict) -> None:
        folder = f"{name}-{token}"
        os.replace(tmp, self.root / folder)
        try:
            previous = self.manifest(name)
        except ArtifactError:  # an unreadable manifest is replaced below
            previous = None
        _write_json_atomic(
            self._manifest_path(name),
            {
                "name": name,
                "folder": folder,
                "meta": _canonical(dict(meta)),
                "files": files,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": _versions(),
            },
        )
        # Only now is the old version unreferenced.
        self.collect(name, previous["folder"] if previous else None)

    def collect(self, name: str, previous: str | None = None) -> list[str]:
        """Remove the versions of ``name`` that nothing needs: not the current one, none a live reader
        leases, and of the rest the one the current replaced (``previous``), older ones, and abandoned
        writes. Returns the folders removed."""
        manifest = self.manifest(name)
        current = manifest["folder"] if manifest else None
        removed = []
        for path in sorted(self.root.glob(f"{name}-*")):
            suffix = path.name[len(name) + 1 :]
            if not path.is_dir() or path.name == current or not OWNED.match(suffix) and not LEGACY.match(suffix):
                continue
            older = current is not None and written_at(suffix) < written_at(current[len(name) + 1 :])
            if (path.name == previous or older or is_abandoned(suffix)) and not self.leases.holders(path.name):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed

    # --- reader leases and the build id ----------------------------------------------------------

    def release(self) -> None:
        """Give up every lease this store took (the engine switched to a newer build, or closes)."""
        self.leases.release()

    def build_id(self) -> str:
        """Which versions are current, in one string: it changes when any artifact is rebuilt (a few small
        reads: cheap enough to poll). An unreadable manifest counts as "?"."""
        return ";".join(f"{name}:{manifest.get('folder', '?')}" for name, manifest in self._manifests())

    def built_at(self) -> str | None:
        """When the newest current artifact was built."""
        return max((manifest.get("built_at", "") for _, manifest in self._manifests()), default=None)

    def _manifests(self) -> list[tuple[str, dict]]:
        """(name, manifest as written) of every manifest file; {} where one cannot be read."""
        out = []
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError):
                manifest = {}
            out.append((path.stem, manifest if isinstance(manifest, dict) else {}))
        return out

    def relabel_data(self, old: str, new: str) -> list[str]:
        """Artifacts recorded as built from data ``old`` are recorded as built from ``new`` (the same data
        under a new fingerprint scheme); returns their names. The manifest is rewritten atomically."""
        relabelled = []
        for path in sorted(self.root.glob("*.json")) if old != new else []:
            try:
                manifest = self.manifest(path.stem)
            except ArtifactError:  # unreadable: `repair` deals with it
                continue
            if manifest and manifest.get("meta", {}).get("data") == old:
                name = path.stem
                manifest["meta"]["data"] = new
                _write_json_atomic(self._manifest_path(name), manifest)
                relabelled.append(name)
        return relabelled

    def remove_abandoned(self) -> list[str]:
        """Remove unfinished writes (temp folders and files) whose writer is a dead process on this host."""
        removed = []
        for path in list(self.root.glob(".tmp-*")) + list(self.root.glob(".*.tmp")):
            owned = OWNER_IN_NAME.search(path.name)
            legacy = path.name.startswith(".tmp-") and "@" not in path.name and LEGACY.match(path.name[-12:])
            if (owned and is_abandoned(owned["owner"])) or legacy:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    # --- checking -------------------------------------------------------------------------------

    def damage(self, name: str, *, checksums: bool = False) -> list[str]:
        """What is wrong with the stored files of ``name`` (sizes; with ``checksums`` also contents)."""
        manifest = self.manifest(name)
        if manifest is None:
            return []
        folder = self.root / manifest["folder"]
        problems = []
        for relative, record in manifest.get("files", {}).items():
            path = folder / relative
            if not path.is_file():
                problems.append(f"{relative} is missing")
            elif path.stat().st_size != record["size"]:
                problems.append(f"{relative} is {path.stat().st_size:,} bytes, {record['size']:,} when built")
            elif checksums and file_checksum(path) != record["blake2b"]:
                problems.append(f"{relative} has other contents than when built (checksum)")
        return problems

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
        return diffs + [f"damaged: {problem}" for problem in self.damage(name)]

    def is_current(self, name: str, expect: Mapping[str, Any]) -> bool:
        return not self.differences(name, expect)

    def load(self, name: str, expect: Mapping[str, Any] | None = None) -> Artifact:
        """The current artifact, refused with ArtifactError if missing, damaged or built from other inputs."""
        damage = self.damage(name)
        if damage:
            raise ArtifactError(
                f"artifact '{name}' in {self.root} is damaged: {'; '.join(damage)}. Rebuild it with `{self.rebuild_hint}`."
            )
        diffs = self.differences(name, expect or {})
        if diffs:
            raise ArtifactError(
                f"artifact '{name}' in {self.root} does not match: {'; '.join(diffs)}. "
                f"Rebuild with `{self.rebuild_hint}`."
            )
        manifest = self.manifest(name)
        if self.reader:
            self.leases.hold(manifest["folder"])
        return Artifact(name, self.root / manifest["folder"], manifest["meta"])

    def repair(self, log: Callable[[str], None] = print) -> list[str]:
        """Drop every artifact whose manifest is unreadable or whose files are damaged (sizes and
        checksums), so the build makes it again; returns their names. Call under the build lock."""
        dropped = []
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            name = path.stem
            try:
                problems = self.damage(name, checksums=True)
                folder = (self.manifest(name) or {}).get("folder")
            except ArtifactError:
                problems, folder = ["its manifest is unreadable"], None
            if problems:
                log(f"artifact '{name}' is damaged ({'; '.join(problems)}); rebuilding it")
                path.unlink(missing_ok=True)
                if folder:
                    shutil.rmtree(self.root / folder, ignore_errors=True)
                dropped.append(name)
        return dropped

    # --- the build lock and scratch ---------------------------------------------------------------

    @contextmanager
    def lock(self, *, wait: float | None = None, notify: Callable[[str], None] = print) -> Iterator[None]:
        """Hold the cross-process build lock of this folder (`owners.BuildLock`); inside it, scratch
        folders are this process's alone and abandoned writes are removed first."""
        with BuildLock(self.root).held(wait=wait, notify=notify):
            self.holds_lock = True
            try:
                self.remove_abandoned()
                yield
            finally:
                self.holds_lock = False

    def lock_holder(self) -> str:
        return BuildLock(self.root).holder()

    def build_running(self) -> bool:
        return BuildLock(self.root).running()

    def scratch(self, name: str) -> Path:
        path = self.root / "scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def clear_scratch(self, name: str) -> None:
        shutil.rmtree(self.root / "scratch" / name, ignore_errors=True)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
