"""A file a shop edits while the engine serves (availability.csv, rules.toml): read again when its size or
modification time changes (a stat a use, no rebuild); when a new version cannot be used, the last good
reading stays in force and `problem` says why."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Generic, TypeVar

from .errors import DataError

T = TypeVar("T")


class WatchedFile(Generic[T]):
    def __init__(self, path: Path | None, read: Callable[[Path], T], absent: T):
        """``read(path)`` parses the file (DataError when it cannot be used); ``absent``: the value without one."""
        self.path = path
        self.problem: str | None = None
        self._read, self._absent = read, absent
        self._value = absent
        self._seen: tuple | None = None
        self._lock = threading.Lock()

    def value(self) -> T:
        try:
            stat = self.path.stat() if self.path is not None else None
            seen = None if stat is None else (stat.st_mtime_ns, stat.st_size)
        except OSError:  # no file (or gone)
            seen = None
        if seen != self._seen:
            with self._lock:
                if seen != self._seen:
                    self._reload(seen)
        return self._value

    def _reload(self, seen: tuple | None) -> None:
        self._seen = seen
        if seen is None:
            self._value, self.problem = self._absent, None
            return
        try:
            self._value, self.problem = self._read(self.path), None
        except DataError as exc:  # the last good reading stays in force
            self.problem = str(exc)
