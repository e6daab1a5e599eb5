"""Store keys: relative POSIX paths of plain names, the same rule for every store (folder or Hub repo)."""

from __future__ import annotations

import re

from leaderboard.errors import StoreError

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def listable(key: str) -> bool:
    """Names a key could have (no dotfiles such as .gitattributes or .lock)."""
    return all(_PART.fullmatch(p) for p in key.split("/"))


def check_key(key: str) -> str:
    """Keys are relative POSIX paths of plain names: no '..', no absolute paths, no dotfiles."""
    parts = key.split("/")
    if not key or any(not _PART.fullmatch(p) or p in (".", "..") for p in parts):
        raise StoreError(f"invalid store key {key!r}")
    return key
