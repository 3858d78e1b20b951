"""Who owns what in an artifacts folder: the process that wrote a version or a temp file (``<pid>@<host>``
in its name, so only a dead writer's leftovers are removed), the readers holding a version (leases), and
the build lock."""
from __future__ import annotations

import atexit
import json
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import BuildRunningError

READERS_DIR = ".readers"
LOCK_FILE = ".build.lock"
OWNER_FILE = ".build.owner"
# "[<time>-]<pid>@<host>-<12 hex>" after "<name>-" or ".tmp-<name>-"; a bare "<12 hex>" is the pre-owner layout.
OWNED = re.compile(r"^(?:\d{8}T\d{12}-)?(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]*)-[0-9a-f]{12}$")
LEGACY = re.compile(r"^[0-9a-f]{12}$")
# The same owner part inside a temp name: ".tmp-<name>-<owner>-<token>" or ".<file>.<owner>-<token>.tmp".
OWNER_IN_NAME = re.compile(r"[-.](?P<owner>(?:\d{8}T\d{12}-)?\d+@[A-Za-z0-9_-]*-[0-9a-f]{12})(\.tmp)?$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:63] or "host"


def owner_tag() -> str:
    """``<pid>@<host>`` of this process, as written into temp and artifact folder names."""
    return f"{os.getpid()}@{_host()}"


def new_token() -> str:
    """``<time>-<owner>-<12 hex>``: versions sort by when they were written."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return f"{stamp}-{owner_tag()}-{uuid.uuid4().hex[:12]}"


# Lease files this process holds (removed at exit; a killed process's leases are recognised as dead).
_LEASES: set[Path] = set()


@atexit.register
def _release_leases_at_exit() -> None:
    for path in list(_LEASES):
        path.unlink(missing_ok=True)


def written_at(suffix: str) -> str:
    """The time part of a version's suffix ("" for versions of earlier releases: older than any)."""
    return suffix[:21] if re.match(r"\d{8}T\d{12}-", suffix) else ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


# Tokens this process is writing right now (other threads of it must not remove them).
IN_FLIGHT: set[str] = set()


def is_abandoned(suffix: str) -> bool:
    """Whether a folder whose name ends in ``suffix`` (after ``<name>-``) belongs to no live writer.

    Owners on another host cannot be checked, so their folders are kept (shared network folders).
    """
    if LEGACY.match(suffix):
        return True
    owned = OWNED.match(suffix)
    if not owned or owned["host"] != _host():
        return False  # not a folder this store made, or a writer elsewhere
    if int(owned["pid"]) == os.getpid():
        return suffix not in IN_FLIGHT
    return not pid_alive(int(owned["pid"]))

class ReaderLeases:
    """Reader leases of one artifacts folder: ``.readers/<version folder>--<pid>@<host>``, one empty file
    per (version, reader process). A build keeps every version a live reader holds."""

    def __init__(self, root: Path):
        self.dir = Path(root) / READERS_DIR
        self._held: set[Path] = set()

    def hold(self, folder: str) -> None:
        """Hold version ``folder`` for this process until `release` (or its exit)."""
        path = self.dir / f"{folder}--{owner_tag()}"
        if path not in self._held:
            self.dir.mkdir(parents=True, exist_ok=True)
            path.touch()
            self._held.add(path)
            _LEASES.add(path)

    def release(self) -> None:
        for path in self._held:
            path.unlink(missing_ok=True)
            _LEASES.discard(path)
        self._held.clear()

    def holders(self, folder: str) -> list[str]:
        """The live processes (``<pid>@<host>``) holding ``folder``; dead ones' leases are dropped. A reader
        on another host cannot be checked, so it counts as live."""
        live = []
        for path in self.dir.glob(f"{folder}--*"):
            owner = path.name[len(folder) + 2 :]
            pid, _, host = owner.partition("@")
            if host == _host() and pid.isdigit() and not pid_alive(int(pid)):
                path.unlink(missing_ok=True)
            else:
                live.append(owner)
        return live


class BuildLock:
    """The cross-process build lock of an artifacts folder: an OS file lock (a killed holder releases it)
    and a note of who holds it."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @contextmanager
    def held(self, *, wait: float | None = None, notify: Callable[[str], None] = print) -> Iterator[None]:
        """When another process holds it: ``wait=None`` waits for it (saying so through ``notify``),
        ``wait=0`` raises BuildRunningError at once, ``wait=N`` waits up to N seconds, then raises."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.root / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait == 0:
                raise BuildRunningError(
                    f"a build is already running on {self.root} ({self.holder()}); try again when it has finished"
                ) from None
            notify(f"another build is running on {self.root} ({self.holder()}); waiting for it to finish")
            try:
                lock.acquire(timeout=-1 if wait is None else wait)
            except Timeout:
                raise BuildRunningError(
                    f"a build is still running on {self.root} ({self.holder()}) after waiting {wait:g} s; "
                    f"try again when it has finished"
                ) from None
        try:
            note = self.root / f".{OWNER_FILE}.{new_token()}.tmp"
            note.write_text(json.dumps({"pid": os.getpid(), "host": _host(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
            os.replace(note, self.root / OWNER_FILE)
            yield
        finally:
            (self.root / OWNER_FILE).unlink(missing_ok=True)
            lock.release()

    def running(self) -> bool:
        """Whether a build holds the lock, as far as its owner note says (read only: a reader that took the
        lock to find out could make a builder that must not wait fail). A killed builder's note counts as
        no build; on another host the note is trusted."""
        try:
            owner = json.loads((self.root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(owner, dict):
            return False
        if owner.get("host") == _host() and isinstance(owner.get("pid"), int):
            return pid_alive(owner["pid"])
        return True

    def holder(self) -> str:
        """Who holds the build lock, in words (pid, host, since when), as far as its owner file says."""
        try:
            owner = json.loads((self.root / OWNER_FILE).read_text())
            return f"pid {owner['pid']} on {owner['host']}, since {owner['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"
