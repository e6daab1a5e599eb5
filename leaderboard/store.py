"""Where requests and results live: a tiny key/value interface, and a local-folder implementation.

The host's two stores (requests, results) follow the Hugging Face leaderboard pattern, where each
is a dataset repo. Everything the leaderboard does goes through ``Store`` — read, atomic write,
list, and an exclusive ``lock()`` around read-modify-write — so a Hub-backed store (writes as
commits, the lock as a commit with ``parent_commit`` retried on conflict) can be dropped in later
without touching the rest.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from facebench.files import atomic_write, json_dumps_strict
from leaderboard.errors import StoreConflict, StoreError
from leaderboard.keys import check_key, listable

T = TypeVar("T")


def locked(store: Store, fn: Callable[[], T], attempts: int = 12, message: str = "") -> T:
    """Run ``fn`` (reads and writes of ``store``) as one atomic step: under the folder lock, or as one Hub commit
    retried with jittered back-off while others commit first."""
    for attempt in range(attempts):
        try:
            with store.lock(message=message):
                return fn()
        except StoreConflict:
            time.sleep(random.uniform(0.0, min(2.0, 0.05 * 2**attempt)))
    raise StoreError(f"the store kept changing; gave up after {attempts} attempts", store.location,
                     hint="retry later")


@runtime_checkable
class Store(Protocol):
    """Minimal storage a leaderboard needs. Writes are atomic: readers see old or new, never half."""

    location: str

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def lock(self, timeout_s: float = 60.0, message: str = "") -> Any:
        """Context manager for read-modify-write: exclusive (a folder), or optimistic (a Hub repo: the block's
        writes become one commit named ``message``, and StoreConflict if the repo moved meanwhile)."""
        ...


class LocalStore:
    """A folder. ``lock`` is ``flock`` on ``.lock`` (one open file per call, so threads exclude too).

    Submitters can write into the folder, so nothing in it is trusted: a key is opened one component at a
    time with ``O_NOFOLLOW`` and must end at a regular file; symbolic links and special files read as absent.
    """

    def __init__(self, root: str | Path, create: bool = False):
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise StoreError("store folder does not exist", self.root,
                             hint="check the path, or create the leaderboard with `facebench leaderboard init`")
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _open(self, key: str) -> int | None:
        """A read-only descriptor of the regular file at ``key``, never through a link; None if there is none."""
        parts = check_key(key).split("/")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nxt
            leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:  # missing, a link (ELOOP), not a directory
            return None
        finally:
            os.close(fd)
        if not stat.S_ISREG(os.fstat(leaf).st_mode):  # a FIFO, device or socket
            os.close(leaf)
            return None
        return leaf

    def read(self, key: str) -> bytes:
        fd = self._open(key)
        if fd is None:
            raise StoreError(f"no such key {key!r} (or not a regular file)", self.root)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def write(self, key: str, data: bytes) -> None:
        parent = self.root
        for part in check_key(key).split("/")[:-1]:  # never write through a planted directory link
            parent = parent / part
            if parent.is_symlink():
                raise StoreError(f"{part!r} in key {key!r} is a symbolic link", self.root)
        atomic_write(self._path(key), data)

    def exists(self, key: str) -> bool:
        fd = self._open(key)
        if fd is None:
            return False
        os.close(fd)
        return True

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                key = Path(dirpath, f).relative_to(self.root).as_posix()
                regular = stat.S_ISREG(os.lstat(Path(dirpath, f)).st_mode)
                if regular and listable(key):
                    keys.append(key)
        return sorted(keys)

    @contextmanager
    def lock(self, timeout_s: float = 60.0, message: str = "") -> Iterator[None]:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(f"could not lock the store within {timeout_s:.0f} s", self.root,
                                         hint="another host process holds it; retry later") from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"


def open_store(location: str | Path, create: bool = False) -> Store:
    """A store from its location: a local folder, or ``hf://datasets/ORG/NAME[@BRANCH]`` (``HubStore``).

    Only ``leaderboard init`` creates a store: a mistyped path elsewhere is an error, not a new empty store.
    """
    loc = str(location)
    if loc.startswith("hf://"):
        from leaderboard.hub_store import HubStore

        return HubStore(loc, create=create)
    return LocalStore(loc, create=create)


def read_json(store: Store, key: str) -> Any:
    try:
        return json.loads(store.read(key))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StoreError(f"{key} is not valid JSON", store.location) from None


def write_json(store: Store, key: str, obj: Any) -> None:
    store.write(key, (json_dumps_strict(obj, indent=1, sort_keys=True) + "\n").encode())  # NaN is written as null
