"""Content digests of a dataset's files, so artifacts depend on what the files hold, not when they were saved.

A `touch` or a copy changes a file's mtime but not its digest, so nothing is rebuilt. Reading a 3 GB
transactions file or 100k photos on every start would be slow, so digests are cached by
(size, mtime, inode) in ``<artifacts>/.digests``: a file is read again only when its stat changed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .store import atomic_write, file_checksum

CACHE_FILE = ".digests"  # not *.json: those are manifests


class DigestCache:
    """Digests of the files under ``root``, remembered in ``cache_dir`` (None: not remembered)."""

    def __init__(self, root: Path, cache_dir: Path | None):
        self.root = root
        self.path = Path(cache_dir) / CACHE_FILE if cache_dir else None
        self.entries: dict[str, list] = {}
        self.changed = False
        if self.path and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                if loaded.get("root") == str(root):
                    self.entries = loaded["files"]
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass  # a damaged cache is only a slower start

    def digest(self, relative: str, stat: os.stat_result | None = None) -> str:
        stat = stat or (self.root / relative).stat()
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = self.entries.get(relative)
        if entry and entry[:3] == key:
            return entry[3]
        value = file_checksum(self.root / relative)
        self.entries[relative] = [*key, value]
        self.changed = True
        return value

    def save(self) -> None:
        if not (self.path and self.changed):
            return
        try:
            with atomic_write(self.path, "w") as handle:
                json.dump({"root": str(self.root), "files": self.entries}, handle)
        except OSError:
            pass  # a read-only artifacts folder: the digests are computed again next time
        self.changed = False


def column_hashes(frame: pd.DataFrame, columns) -> np.ndarray:
    """A 64-bit hash per row of ``columns`` (those present), e.g. of everything an article's caption uses."""
    present = [c for c in columns if c in frame.columns]
    if not present:
        return np.zeros(len(frame), dtype=np.uint64)
    return pd.util.hash_pandas_object(frame[present].astype(str), index=False).to_numpy(dtype=np.uint64)
